"""Penguins on TFX's LocalDagRunner: CsvExampleGen -> Trainer -> Optimizer (prune -> int8) ->
BucketPusher (with the original as fallback) into a local bucket; tfrelay's model server,
preferring TFLite, serves the pushed version from the bucket, and it predicts what the original
SavedModel predicts."""

from __future__ import annotations

import json
import pathlib

import httpx
import numpy as np
import pytest
from tfx import v1 as tfx
from tfx.orchestration import metadata
from tfx.types import standard_artifacts

from support.servers import InProcessModelServer, wait_for_version
from tfrelay.components import properties
from tfrelay.components.optimizer import (
    OptimizationReport,
    Optimizer,
    Prune,
    Quantize,
    data,
    measure,
)
from tfrelay.components.pusher import BucketPusher
from tfrelay.components.trainer.component import Trainer
from tfrelay.components.trainer.export import load_tabular_model
from tfrelay.pipelines.datasets import penguins
from tfrelay.serving.options import ServerOptions

pytestmark = pytest.mark.slow

MODEL_NAME = "penguins"


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    """Runs the pipeline once; returns (bucket base path, ML Metadata connection config)."""
    root = tmp_path_factory.mktemp("optimizer-pipeline")
    penguins.write_all(root / "data")
    base = root / "bucket" / MODEL_NAME
    example_gen = tfx.components.CsvExampleGen(input_base=str(root / "data"))
    trainer = Trainer(
        examples=example_gen.outputs["examples"],
        label_key=penguins.LABEL_KEY,
        feature_keys=penguins.FEATURE_KEYS,
        epochs=10,
    )
    optimizer = Optimizer(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        techniques=[Prune(target_sparsity=0.5, epochs=10), Quantize("int8")],
        max_accuracy_drop=0.02,
    )
    pusher = BucketPusher(
        model=optimizer.outputs["optimized_model"],
        model_blessing=optimizer.outputs["blessing"],
        fallback_model=trainer.outputs["model"],
        fallback=True,
        base_path=str(base),
    )
    connection = metadata.sqlite_metadata_connection_config(str(root / "metadata.sqlite"))
    tfx.orchestration.LocalDagRunner().run(
        tfx.dsl.Pipeline(
            pipeline_name="optimizer-penguins",
            pipeline_root=str(root / "pipeline"),
            components=[example_gen, trainer, optimizer, pusher],
            metadata_connection_config=connection,
        )
    )
    return base, connection


def _artifacts(connection, artifact_type) -> list:
    with metadata.Metadata(connection) as store:
        return store.store.get_artifacts_by_type(artifact_type.TYPE_NAME)


def _models(connection) -> tuple[str, str]:
    """(the Trainer's model URI, the Optimizer's model URI)."""
    models = _artifacts(connection, standard_artifacts.Model)
    optimized = [m for m in models if properties.ORIGINAL_MODEL_URI in m.custom_properties]
    (original,) = [m for m in models if m not in optimized]
    (optimized,) = optimized
    return original.uri, optimized.uri


def test_the_report_is_written_and_the_optimized_model_is_pushed(pipeline_run):
    base, connection = pipeline_run
    (report,) = _artifacts(connection, OptimizationReport)
    content = json.loads((pathlib.Path(report.uri) / "report.json").read_text())
    assert [m["name"] for m in content["models"]] == ["original", "prune 50%", "prune 50% -> int8"]
    assert content["blessed"] is True
    assert (pathlib.Path(report.uri) / "report.png").stat().st_size > 20_000

    (pushed,) = _artifacts(connection, standard_artifacts.PushedModel)
    assert pushed.custom_properties[properties.PUSHED].int_value == 1
    assert pushed.custom_properties[properties.PUSHED_INPUT].string_value == "model"
    original_uri, optimized_uri = _models(connection)
    assert pushed.custom_properties[properties.PUSHED_MODEL_URI].string_value == optimized_uri
    version = base / "1"
    assert (version / "model.tflite").exists() and (version / "saved_model.pb").exists()
    record = json.loads((version / "assets.extra" / "tfrelay_push.json").read_text())
    assert record["selected_input"] == "model"
    assert record["metrics"]["accuracy_drop"] <= 0.02


def _rest_inputs(split: data.Split) -> dict:
    return {
        name: [v.decode() if isinstance(v, bytes) else float(v) for v in values.tolist()]
        for name, values in split.raw.items()
    }


def test_the_served_tflite_model_predicts_as_the_original_savedmodel(pipeline_run):
    base, connection = pipeline_run
    original_uri, _ = _models(connection)
    _, spec = load_tabular_model(original_uri)
    (examples,) = _artifacts(connection, standard_artifacts.Examples)
    evaluation = data.load_split(
        data.split_files(str(pathlib.Path(examples.uri) / "Split-eval")), spec
    )
    original = measure.predicted_classes(
        measure.saved_model_predictor(str(pathlib.Path(original_uri) / "Format-Serving")),
        evaluation,
    )

    options = ServerOptions(
        model_name=MODEL_NAME,
        model_base_path=str(base),
        prefer_tflite_model=True,
        file_system_poll_wait_seconds=1,
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, MODEL_NAME, 1)
        model_url = f"{server.url}/v1/models/{MODEL_NAME}"
        signatures = httpx.get(f"{model_url}/metadata", timeout=10).json()["metadata"][
            "signature_def"
        ]["signature_def"]
        # The TFLite model serves (the version's SavedModel would also have `classify`).
        assert set(signatures) == {"serving_default"}
        body = json.dumps({"inputs": _rest_inputs(evaluation)}, allow_nan=True)
        response = httpx.post(f"{model_url}:predict", content=body, timeout=30)
    assert response.status_code == 200, response.text
    served = np.array(response.json()["outputs"]["class_ids"])

    assert len(served) == len(evaluation) > 100
    agreement = float(np.mean(served == original))
    assert agreement >= 0.99, f"{agreement:.4f} of {len(served)} eval examples agree"
