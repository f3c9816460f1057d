"""`--model_config_file`: several models, version policies, labels, reloads and bad configs."""

from __future__ import annotations

import pathlib
import subprocess

import httpx
import pytest

from support.models import copy_version
from support.paths import TF_SERVING_TESTDATA
from support.servers import (
    InProcessModelServer,
    ModelServerProcess,
    model_server_executable,
    wait_for_version,
    wait_until,
)
from tfrelay.serving.config.model_config import (
    ConfigError,
    PolicyKind,
    parse_model_config_text,
)
from tfrelay.serving.options import ServerOptions

# The pipeline relies on this code (the Validator and the pusher run it on the pipeline stack), so
# `make test` runs these tests on both stacks (issue 14).
pytestmark = pytest.mark.both_stacks


def _predict(url: str, model: str, x: float, suffix: str = "") -> httpx.Response:
    return httpx.post(
        f"{url}/v1/models/{model}{suffix}:predict", json={"instances": [x]}, timeout=10
    )


def _good_model_config(half_plus_two: pathlib.Path, half_plus_three: pathlib.Path) -> str:
    # TF Serving's own good_model_config.txt, with its placeholders filled in.
    template_path = TF_SERVING_TESTDATA / "good_model_config.txt"
    template = (
        template_path.read_text()
        if template_path.exists()
        else """model_config_list: {
  config: { name: "half_plus_two", base_path: "${TEST_HALF_PLUS_TWO_DIR}", model_platform: "tensorflow" },
  config: { name: "half_plus_three", base_path: "${TEST_HALF_PLUS_THREE_DIR}", model_platform: "tensorflow" }
}"""
    )
    return template.replace("${TEST_HALF_PLUS_TWO_DIR}", str(half_plus_two)).replace(
        "${TEST_HALF_PLUS_THREE_DIR}", str(half_plus_three)
    )


@pytest.mark.parametrize("source", ["fixture", "tf_serving_testdata"])
def test_good_model_config_serves_half_plus_two_and_half_plus_three(source, model_root, tmp_path):
    if source == "fixture":
        two, three = model_root / "half_plus_two", model_root / "half_plus_three"
    else:
        two = TF_SERVING_TESTDATA / "saved_model_half_plus_two_cpu"
        three = TF_SERVING_TESTDATA / "saved_model_half_plus_three"
        if not two.is_dir():
            pytest.skip(f"TF Serving test models not present at {TF_SERVING_TESTDATA}")
    config = tmp_path / "models.config"
    config.write_text(_good_model_config(two, three))
    with ModelServerProcess(
        [f"--model_config_file={config}"], log_path=tmp_path / "server.log"
    ) as server:
        wait_for_version(server.url, "half_plus_two", 123)
        wait_for_version(server.url, "half_plus_three", 123)
        assert _predict(server.url, "half_plus_two", 2.0).json() == {"predictions": [3.0]}
        assert _predict(server.url, "half_plus_three", 2.0).json() == {"predictions": [4.0]}
        models = httpx.get(f"{server.url}/v1/models").json()["models"]
        assert sorted(m["name"] for m in models) == ["half_plus_three", "half_plus_two"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("improperly formatted file", "is not a valid ModelServerConfig text proto"),
        ("model_config_list { config { name: 'm' } }", "base_path is empty"),
        (
            "model_config_list { config { name: 'm' base_path: '/a' } config { name: 'm' base_path: '/b' } }",
            "model name 'm' is used twice",
        ),
        (
            "model_config_list { config { name: 'm' base_path: '/a' model_platform: 'pytorch' } }",
            "model_platform 'pytorch' is not supported",
        ),
        (
            "model_config_list { config { name: 'm' base_path: '/a' version_labels { key: 'a-b' value: 1 } } }",
            "version label 'a-b' must match [a-zA-Z0-9_]+",
        ),
    ],
)
def test_invalid_configs_are_rejected_with_the_problem_named(text, message):
    with pytest.raises(
        ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")
    ):
        parse_model_config_text(text, source="models.config")


def test_version_policies_and_labels_are_parsed():
    models = parse_model_config_text(
        """model_config_list {
             config { name: 'a' base_path: '/a' model_version_policy { all {} } }
             config { name: 'b' base_path: '/b' model_version_policy { specific { versions: 1 versions: 3 } }
                      version_labels { key: 'stable' value: 1 } version_labels { key: 'canary' value: 3 } }
             config { name: 'c' base_path: '/c' model_version_policy { latest { num_versions: 2 } } }
           }"""
    )
    a, b, c = models
    assert a.policy.kind is PolicyKind.ALL and a.policy.choose([1, 3, 2]) == [3, 2, 1]
    assert b.policy.kind is PolicyKind.SPECIFIC and b.policy.choose([1, 2, 3, 4]) == [3, 1]
    assert b.labels == {"stable": 1, "canary": 3}
    assert c.policy.kind is PolicyKind.LATEST and c.policy.choose([1, 2, 3]) == [3, 2]


def test_malformed_config_file_at_start_exits_nonzero_naming_the_problem(tmp_path):
    bad = TF_SERVING_TESTDATA / "bad_model_config.txt"
    config = tmp_path / "bad.config"
    config.write_text(bad.read_text() if bad.exists() else "improperly formatted file")
    result = subprocess.run(
        [
            model_server_executable(),
            f"--model_config_file={config}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert str(config) in result.stderr
    assert "is not a valid ModelServerConfig text proto" in result.stderr


def _write_config(path: pathlib.Path, entries: str) -> None:
    path.write_text(f"model_config_list {{ {entries} }}")


def test_config_reload_adds_and_removes_models_and_rejects_bad_files(model_root, tmp_path):
    config = tmp_path / "models.config"
    two = f"config {{ name: 'half_plus_two' base_path: '{model_root / 'half_plus_two'}' }}"
    three = f"config {{ name: 'half_plus_three' base_path: '{model_root / 'half_plus_three'}' }}"
    _write_config(config, two)
    options = ServerOptions(model_config_file=str(config), model_config_file_poll_wait_seconds=0.2)
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "half_plus_two", 123)
        assert _predict(server.url, "half_plus_three", 1.0).status_code == 404

        _write_config(config, f"{two} {three}")
        wait_for_version(server.url, "half_plus_three", 123, timeout=30)
        assert _predict(server.url, "half_plus_three", 2.0).json() == {"predictions": [4.0]}

        config.write_text("this is not a config")
        # A malformed file is rejected at reload: the running config keeps serving.
        wait_until(lambda: server.server.source.poll_count > 3, 10)
        assert _predict(server.url, "half_plus_three", 2.0).json() == {"predictions": [4.0]}

        _write_config(config, three)
        wait_until(lambda: _predict(server.url, "half_plus_two", 1.0).status_code == 404, 30)
        assert _predict(server.url, "half_plus_three", 2.0).json() == {"predictions": [4.0]}


def test_labels_follow_tf_servings_rules(model_root, tmp_path):
    base = tmp_path / "half_plus"
    copy_version(model_root / "half_plus_two" / "123", base, 1)
    copy_version(model_root / "half_plus_three" / "123", base, 2)
    config = tmp_path / "models.config"
    policy = "model_version_policy { specific { versions: 1 versions: 2 } }"
    _write_config(config, f"config {{ name: 'm' base_path: '{base}' {policy} }}")
    options = ServerOptions(model_config_file=str(config), model_config_file_poll_wait_seconds=0.2)
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 1)
        wait_for_version(server.url, "m", 2)
        labels = (
            "version_labels { key: 'stable' value: 1 } version_labels { key: 'canary' value: 2 }"
        )
        _write_config(config, f"config {{ name: 'm' base_path: '{base}' {policy} {labels} }}")
        wait_until(lambda: _predict(server.url, "m", 2.0, "/labels/stable").status_code == 200, 10)
        assert _predict(server.url, "m", 2.0, "/labels/stable").json() == {"predictions": [3.0]}
        assert _predict(server.url, "m", 2.0, "/labels/canary").json() == {"predictions": [4.0]}
        assert _predict(server.url, "m", 2.0).json() == {"predictions": [4.0]}  # latest

        # A label may only point at an AVAILABLE version: this reload is rejected as a whole.
        bad = "version_labels { key: 'stable' value: 7 }"
        _write_config(config, f"config {{ name: 'm' base_path: '{base}' {policy} {bad} }}")
        polls = server.server.source.poll_count
        wait_until(lambda: server.server.source.poll_count > polls + 3, 10)
        assert _predict(server.url, "m", 2.0, "/labels/stable").json() == {"predictions": [3.0]}
        with pytest.raises(Exception, match="not currently available for inference"):
            server.manager.set_models({"m": {"stable": 7}})
