"""The installed environment is the one DESIGN.md pins."""

from __future__ import annotations

import os
import subprocess
import sys

from support.paths import REPO_ROOT


def test_pipeline_stack_is_the_pinned_one():
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
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_pip_check_reports_no_broken_requirements():
    out = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, cwd=REPO_ROOT
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_tfrelay_cli_reports_its_version():
    from tfrelay.version import __version__

    out = subprocess.run(
        [sys.executable, "-m", "tfrelay.cli", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.strip() == f"tfrelay {__version__}"
