"""tensorflow_model_server's command line: flag syntax, defaults and errors."""

from __future__ import annotations

import pytest

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
    assert "tfrelay ModelServer:" in out and "TensorFlow Library: 2.16" in out
