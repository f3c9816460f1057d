"""tensorflow_model_server's command line: flag syntax, defaults and errors."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow as tf

from tfrelay.serving.cli import options_from_args


def test_flags_take_both_equals_and_space_forms_and_gflags_booleans():
    options = options_from_args(
        [
            "--model_name=m",
            "--model_base_path",
            "s3://bucket/m",
            "--rest_api_port=8501",
            "--allow_version_labels_for_unavailable_models",
            "--file_system_poll_wait_seconds",
            "30",
        ]
    )
    assert options.model_name == "m"
    assert options.model_base_path == "s3://bucket/m"
    assert options.rest_api_port == 8501
    assert options.port == 8500  # TF Serving's default
    assert options.allow_version_labels_for_unavailable_models is True
    assert options.file_system_poll_wait_seconds == 30
    options = options_from_args(
        ["--model_base_path=/m", "--allow_version_labels_for_unavailable_models=false"]
    )
    assert options.allow_version_labels_for_unavailable_models is False
    options = options_from_args(
        ["--model_base_path=/m", "--noallow_version_labels_for_unavailable_models"]
    )
    assert options.allow_version_labels_for_unavailable_models is False


def test_tf_serving_defaults():
    options = options_from_args(["--model_base_path=/m"])
    assert (options.model_name, options.port, options.rest_api_port) == ("default", 8500, 0)
    assert options.file_system_poll_wait_seconds == 1
    assert options.max_num_load_retries == 5
    assert options.load_retry_interval_micros == 60_000_000
    assert options.saved_model_tags == "serve"
    assert options.rest_api_timeout_in_ms == 30_000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model_base_path=/m", "--bogus_flag=1"], "unrecognized arguments: --bogus_flag=1"),
        (["--model_base_path=/m", "--port=abc"], "argument --port: invalid int value: 'abc'"),
        (
            ["--model_base_path=/m", "--rest_api_port=70000"],
            "argument --rest_api_port: 70000 is not a valid port",
        ),
        (
            ["--model_base_path=/m", "--allow_version_labels_for_unavailable_models=maybe"],
            "invalid boolean value: 'maybe'",
        ),
        ([], "model_base_path are empty"),
        (["--model_base_path=/m", "--model_na=x"], "unrecognized arguments: --model_na=x"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        options_from_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_version_flag_prints_versions(capsys):
    with pytest.raises(SystemExit) as exit_info:
        options_from_args(["--version"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    # The stack running the tests: 2.21 on the serving stack, 2.16 on the pipeline's (issue 14).
    assert "tfrelay ModelServer:" in out and f"TensorFlow Library: {tf.__version__}" in out


def test_new_tf_serving_flags_and_defaults():
    options = options_from_args(["--model_base_path=/m"])
    # Not given: on (tfrelay's default), with TF Serving's parameters.
    assert options.enable_batching is None and options.batching_parameters_file == ""
    assert options.enable_model_warmup is True and options.num_request_iterations_for_warmup == 0
    assert options.prefer_tflite_model is False and options.ssl_config_file == ""
    assert options.enable_serialization_as_tensor_content is False
    options = options_from_args(
        [
            "--model_base_path=/m",
            "--enable_batching",
            "--batching_parameters_file=/b.config",
            "--noenable_model_warmup",
            "--num_request_iterations_for_warmup",
            "3",
            "--monitoring_config_file=/mon.config",
            "--ssl_config_file=/ssl.config",
            "--prefer_tflite_model=true",
            "--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb",
            "--grpc_max_threads=64",
            "--enable_serialization_as_tensor_content",
        ]
    )
    assert options.enable_batching and options.batching_parameters_file == "/b.config"
    assert options.enable_model_warmup is False and options.num_request_iterations_for_warmup == 3
    assert options.prefer_tflite_model and options.grpc_max_threads == 64


def test_flags_without_effect_are_accepted_with_a_warning(caplog):
    from tfrelay.serving.cli import warn_about_ignored_flags

    options = options_from_args(
        [
            "--model_base_path=/m",
            "--enable_profiler=false",
            "--noflush_filesystem_caches",
            "--per_process_gpu_memory_fraction=0.5",
            "--xla_cpu_compilation_enabled=true",
            "--remove_unused_fields_from_bundle_metagraph=false",
            "--tensorflow_session_parallelism=2",
        ]
    )
    with caplog.at_level("WARNING"):
        ignored = warn_about_ignored_flags(options)
    assert ignored == [
        "enable_profiler",
        "flush_filesystem_caches",
        "per_process_gpu_memory_fraction",
        "xla_cpu_compilation_enabled",
        "remove_unused_fields_from_bundle_metagraph",
    ]
    assert "--per_process_gpu_memory_fraction=0.5 is accepted" in caplog.text
    assert "has no effect" in caplog.text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--use_alts_credentials=true"], "argument --use_alts_credentials: not supported"),
        (["--platform_config_file=/p.config"], "argument --platform_config_file: not supported"),
        (["--enable_grpc_healthcheck_service"], "probe GET /healthz"),
        (
            ["--enable_batching=false", "--batching_parameters_file=/b"],
            "requires --enable_batching",
        ),
        (["--grpc_channel_arguments=novalue"], "--grpc_channel_arguments: 'novalue' is not"),
        (["--grpc_max_threads=-1"], "argument --grpc_max_threads: must not be negative"),
    ],
)
def test_unsupported_flags_exit_2_with_a_clear_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        options_from_args(["--model_base_path=/m", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_config_files_stop_the_server_with_exit_1(tmp_path, capsys):
    from tfrelay.serving.cli import main

    bad = tmp_path / "batching.config"
    bad.write_text("max_batch_size: 5")  # a wrapper message, not a scalar
    assert (
        main(["--model_base_path=/m", "--enable_batching", f"--batching_parameters_file={bad}"])
        == 1
    )
    assert (
        "is not a valid tensorflow.serving.BatchingParameters text proto" in capsys.readouterr().err
    )
    ssl_config = tmp_path / "ssl.config"
    ssl_config.write_text('server_key: "not a key"')
    assert main(["--model_base_path=/m", f"--ssl_config_file={ssl_config}"]) == 1
    assert "server_key must hold a PEM private key" in capsys.readouterr().err


def test_tfrelay_serve_is_the_model_server_of_this_environment():
    # `tfrelay serve` and `tfrelay-model-server` are one command; on the serving stack both come
    # from .venv-serving (issue 14).
    tfrelay = pathlib.Path(sys.executable).parent / "tfrelay"
    out = subprocess.run(
        [str(tfrelay), "serve", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"TensorFlow Library: {tf.__version__}" in out.stdout
