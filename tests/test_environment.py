"""The two environments `make setup` builds are the ones the locks pin (issue 14, README "Two
stacks"): the pipeline in `.venv`, the model server in `.venv-serving`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from support.paths import REPO_ROOT

SERVING_PYTHON = REPO_ROOT / ".venv-serving" / "bin" / "python"
PIPELINE_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"

_STACK_PROBE = """
import importlib.util, json, sys
import tensorflow as tf
from google.protobuf.internal import api_implementation
import tensorflow_serving
from importlib.metadata import version
print(json.dumps({
    "python": list(sys.version_info[:2]),
    "tensorflow": tf.__version__,
    "tensorflow_serving_api": version("tensorflow-serving-api"),
    "protobuf": version("protobuf"),
    "protobuf_backend": api_implementation.Type(),
    "litert": importlib.util.find_spec("ai_edge_litert") is not None,
    "pipeline_packages": [m for m in ("tfx", "apache_beam", "kfp", "tensorflow_model_analysis")
                          if importlib.util.find_spec(m) is not None],
}))
"""


def _probe(python) -> dict:
    if not python.exists():
        pytest.fail(f"{python} is missing: run `make setup` (it builds both environments)")
    out = subprocess.run(
        [str(python), "-c", _STACK_PROBE],
        capture_output=True,
        text=True,
        cwd="/",  # not the checkout: `python -c` there would import the in-tree folders
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_serving_stack_is_python_3_12_plus_with_tensorflow_2_21_upb_and_no_tfx():
    stack = _probe(SERVING_PYTHON)
    assert tuple(stack["python"]) >= (3, 12)
    assert stack["tensorflow"].startswith("2.21.")
    assert stack["tensorflow_serving_api"].startswith("2.21.")
    assert stack["protobuf_backend"] == "upb"
    assert stack["litert"], "TFLite is served through LiteRT (ai-edge-litert) on this stack"
    assert stack["pipeline_packages"] == [], "the server's environment must not carry TFX"


def test_pipeline_stack_is_the_pinned_one():
    stack = _probe(PIPELINE_PYTHON)
    assert tuple(stack["python"]) == (3, 10)
    assert stack["tensorflow"].startswith("2.16.")
    assert stack["protobuf"].startswith("3.20.")
    assert sorted(stack["pipeline_packages"]) == sorted(
        ["tfx", "apache_beam", "kfp", "tensorflow_model_analysis"]
    )


@pytest.mark.skipif(sys.version_info[:2] != (3, 10), reason="imports the pipeline stack itself")
def test_pipeline_stack_versions_and_keras_2():
    import apache_beam
    import kfp
    import tensorflow as tf
    import tensorflow_model_analysis
    import tensorflow_model_optimization
    import tf_keras
    import tfx
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    assert tfx.__version__ == "1.16.0"
    assert tf.__version__.startswith("2.16.")
    assert tf.keras.Model is tf_keras.Model, "tf.keras must be Keras 2 (tf_keras)"
    assert tensorflow_model_analysis.__version__.startswith("0.47.")
    assert tensorflow_model_optimization.__version__ == "0.8.1"
    assert kfp.__version__.startswith("2.5.")
    assert apache_beam.__version__
    assert predict_pb2.PredictRequest and prediction_service_pb2_grpc.PredictionServiceStub


def test_importing_tfrelay_selects_keras_2_before_tensorflow_loads():
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    probe = (
        "import tfrelay.serving, tensorflow as tf, tf_keras;print(tf.keras.Model is tf_keras.Model)"
    )
    out = subprocess.run(
        [str(PIPELINE_PYTHON), "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize("python", [PIPELINE_PYTHON, SERVING_PYTHON], ids=["pipeline", "serving"])
def test_pip_check_reports_no_broken_requirements(python):
    out = subprocess.run(
        [str(python), "-m", "pip", "check"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("python", [PIPELINE_PYTHON, SERVING_PYTHON], ids=["pipeline", "serving"])
def test_tfrelay_cli_reports_its_version(python):
    from tfrelay.version import __version__

    out = subprocess.run(
        [str(python), "-m", "tfrelay.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.strip() == f"tfrelay {__version__}"


def test_pipeline_command_on_the_servers_python_says_which_environment_to_use():
    out = subprocess.run(
        [str(SERVING_PYTHON), "-m", "tfrelay.cli", "pipeline", "run"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert out.returncode == 2
    assert "the pipeline runs on Python 3.10 (TFX 1.16)" in out.stderr
    assert ".venv/bin/tfrelay" in out.stderr
