"""Optimizer executor on real penguin artifacts: the optimized model's serving layout, the
blessing and the report; what happens to settings that cost too much accuracy (not blessed, and
the BucketPusher falls back to the original); and errors that name the layer and the technique."""

from __future__ import annotations

import json
import logging
import os
import pathlib

import numpy as np
import pytest
import tf_keras as keras
from tfx.types import standard_artifacts

from support.optimizing import optimize, read_report
from tfrelay.components import properties
from tfrelay.components.optimizer import Cluster, Prune, Quantize
from tfrelay.components.optimizer.techniques import TechniqueError, select_layers
from tfrelay.components.pusher import component as pusher_component
from tfrelay.components.pusher import executor as pusher_executor
from tfrelay.components.trainer.export import export_model, load_tabular_model
from tfrelay.serving.servables.saved_model import SavedModelServable
from tfrelay.serving.servables.tflite import TfLiteServable
from tfrelay.serving.storage.model_storage import ModelStorage
from tfrelay.serving.warmup import read_warmup_records, replay, warmup_file


def _serving(model) -> pathlib.Path:
    return pathlib.Path(model.uri) / "Format-Serving"


def _signature(servable, name="serving_default") -> tuple[dict, set]:
    signature = servable.signatures[name]
    return (
        {alias: info.dtype for alias, info in signature.inputs.items()},
        set(signature.outputs),
    )


def _failed(blessing) -> list[str]:
    return json.loads(blessing.get_string_custom_property(properties.FAILED_CHECKS))


def test_prune_then_int8_writes_the_serving_layout_a_blessing_and_a_report(
    penguin_examples, penguin_model, tmp_path
):
    optimized, blessing, report = optimize(
        penguin_model,
        penguin_examples,
        tmp_path,
        [Prune(target_sparsity=0.5, epochs=3), Quantize("int8")],
        max_accuracy_drop=0.05,
    )

    serving = _serving(optimized)
    assert {p.name for p in serving.iterdir()} >= {
        "saved_model.pb",
        "variables",
        "model.tflite",
        "assets.extra",
    }
    assert (pathlib.Path(optimized.uri) / "Format-TFRelay" / "tabular.json").exists()
    # The SavedModel keeps every signature of the input, around the pruned core.
    original = SavedModelServable("penguins", 1, str(_serving(penguin_model)))
    candidate = SavedModelServable("penguins", 2, str(serving))
    original.load()
    candidate.load()
    try:
        assert (
            set(candidate.signatures)
            == set(original.signatures)
            == {
                "serving_default",
                "classify",
            }
        )
        assert _signature(candidate) == _signature(original)
        assert replay(candidate)[0] == 1
    finally:
        original.unload()
        candidate.unload()
    core, _ = load_tabular_model(optimized.uri)
    kernels = [w.numpy() for w in core.weights if len(w.shape) == 2]
    assert np.mean([np.mean(k == 0) for k in kernels]) == pytest.approx(0.5, abs=0.02)
    # The TFLite model: serving_default on the same raw features, the same output names; the
    # warmup file keeps the request it can answer.
    tflite = TfLiteServable("penguins", 2, str(serving))
    tflite.load()
    try:
        assert set(tflite.signatures) == {"serving_default"}
        inputs, outputs = _signature(tflite)
        assert inputs == _signature(original)[0]
        assert outputs == {"class_ids", "classes", "probabilities"}
        assert replay(tflite)[0] == 1
    finally:
        tflite.unload()
    kinds = [log.WhichOneof("log_type") for log in read_warmup_records(warmup_file(str(serving)))]
    assert kinds == ["predict_log"]

    # Blessed, with the Validator's conventions.
    assert blessing.get_int_custom_property(properties.BLESSED) == 1
    assert os.path.exists(os.path.join(blessing.uri, "BLESSED"))
    assert _failed(blessing) == []
    metrics = json.loads(blessing.get_string_custom_property(properties.METRICS))
    assert metrics["accuracy_drop"] <= 0.05
    assert metrics["gzipped_bytes"] < metrics["gzipped_bytes_before"]
    assert optimized.get_string_custom_property(properties.ORIGINAL_MODEL_URI) == penguin_model.uri

    # The report: every model, before and after, as JSON and as a chart.
    content = read_report(report)
    assert [m["name"] for m in content["models"]] == ["original", "prune 50%", "prune 50% -> int8"]
    assert [m["format"] for m in content["models"]] == ["saved_model", "saved_model", "tflite"]
    for row in content["models"]:
        assert row["size_bytes"] > row["gzipped_bytes"] > 0
        assert row["latency_single_ms"] > 0 and row["latency_batch_ms"] > 0
        assert 0.8 < row["accuracy"] <= 1.0
        assert row["eval_examples"] == content["models"][0]["eval_examples"] > 100
    assert content["models"][1]["details"]["achieved_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert content["models"][2]["details"]["mode"] == "int8"
    assert content["blessed"] is True
    assert content["result"]["gzipped_size_ratio"] > 1
    png = (pathlib.Path(report.uri) / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_cluster_then_float16_keeps_a_few_distinct_weights_per_layer(
    penguin_examples, penguin_model, tmp_path
):
    optimized, blessing, report = optimize(
        penguin_model,
        penguin_examples,
        tmp_path,
        [Cluster(number_of_clusters=4, epochs=1, layers=("hidden_0",)), Quantize("float16")],
        max_accuracy_drop=0.1,
    )

    core, _ = load_tabular_model(optimized.uri)
    by_name = {layer.name: layer for layer in core.layers}
    assert len(np.unique(by_name["hidden_0"].kernel.numpy())) <= 4
    assert len(np.unique(by_name["hidden_1"].kernel.numpy())) > 4  # not listed: not clustered
    content = read_report(report)
    assert content["models"][1]["details"]["layers"] == ["hidden_0"]
    assert content["models"][2]["details"]["mode"] == "float16"
    assert (_serving(optimized) / "model.tflite").stat().st_size > 0
    assert blessing.get_int_custom_property(properties.BLESSED) == 1


def _run_pusher(model, blessing, fallback_model, base: pathlib.Path, root: pathlib.Path):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(root / "pushed_model")
    pusher_executor.Executor().Do(
        {
            pusher_component.MODEL_KEY: [model],
            pusher_component.MODEL_BLESSING_KEY: [blessing],
            pusher_component.FALLBACK_MODEL_KEY: [fallback_model],
        },
        {pusher_component.PUSHED_MODEL_KEY: [pushed]},
        {pusher_component.BASE_PATH_KEY: str(base), pusher_component.FALLBACK_KEY: 1},
    )
    return pushed


def test_a_setting_that_costs_too_much_accuracy_is_not_blessed_and_the_original_is_pushed(
    penguin_examples, penguin_model, tmp_path, caplog
):
    # 97% of the weights of a 16-8 MLP cannot keep its accuracy.
    optimized, blessing, report = optimize(
        penguin_model,
        penguin_examples,
        tmp_path / "optimizer",
        [Prune(target_sparsity=0.97, schedule="constant", epochs=1)],
        max_accuracy_drop=0.0,
    )

    assert blessing.get_int_custom_property(properties.BLESSED) == 0
    assert os.path.exists(os.path.join(blessing.uri, "NOT_BLESSED"))
    (failed,) = _failed(blessing)
    assert "accuracy dropped by" in failed and "more than max_accuracy_drop 0.00 points" in failed
    assert read_report(report)["blessed"] is False

    base = tmp_path / "bucket" / "penguins"
    with caplog.at_level(logging.INFO):
        pushed = _run_pusher(optimized, blessing, penguin_model, base, tmp_path)

    assert pushed.get_int_custom_property(properties.PUSHED) == 1
    assert pushed.get_string_custom_property(properties.PUSHED_INPUT) == "fallback_model"
    assert pushed.get_string_custom_property(properties.PUSHED_MODEL_URI) == penguin_model.uri
    reason = pushed.get_string_custom_property(properties.PUSH_REASON)
    assert reason.startswith("pushed: penguins version 1")
    assert f"instead of model {optimized.uri}, which was not blessed" in reason
    assert "accuracy dropped by" in reason
    record = json.loads((base / "1" / "assets.extra" / "tfrelay_push.json").read_text())
    assert record["selected_input"] == "fallback_model"
    assert record["source_model_uri"] == penguin_model.uri
    assert "accuracy dropped by" in record["selection_reason"]
    # The version is the original, complete, SavedModel.
    assert not (base / "1" / "model.tflite").exists()
    assert ModelStorage(str(base)).check_complete("1")[0].complete
    # The log says why.
    assert any(
        "pushed instead of model" in r.getMessage() and "accuracy dropped by" in r.getMessage()
        for r in caplog.records
    )


def test_a_model_the_validator_refused_is_not_optimized(penguin_examples, penguin_model, tmp_path):
    refused = standard_artifacts.ModelBlessing()
    refused.uri = str(tmp_path / "validator_blessing")
    refused.set_int_custom_property(properties.BLESSED, 0)
    refused.set_string_custom_property(
        properties.FAILED_CHECKS, json.dumps(["accuracy 0.61 is below 0.80"])
    )

    optimized, blessing, report = optimize(
        penguin_model, penguin_examples, tmp_path, [Quantize("dynamic")], model_blessing=refused
    )

    assert blessing.get_int_custom_property(properties.BLESSED) == 0
    (failed,) = _failed(blessing)
    assert "the input model was not blessed" in failed and "accuracy 0.61 is below 0.80" in failed
    assert read_report(report)["skipped"] == failed
    assert not _serving(optimized).exists()


@keras.saving.register_keras_serializable(package="tfrelay_tests")
class Scale(keras.layers.Layer):
    """A custom layer with weights, which TFMOT has no pruning or clustering rule for."""

    def build(self, input_shape):
        self.factors = self.add_weight(name="factors", shape=(input_shape[-1],), initializer="ones")

    def call(self, inputs):
        return inputs * self.factors


def _custom_core_model(penguin_model, root: pathlib.Path) -> standard_artifacts.Model:
    core, spec = load_tabular_model(penguin_model.uri)
    inputs = keras.Input(shape=core.input_shape[1:], name="features")
    x = Scale(name="scale")(inputs)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="output")(x)
    model = standard_artifacts.Model()
    model.uri = str(root / "custom_model")
    export_model(keras.Model(inputs, outputs), spec, model.uri)
    return model


def test_an_unsupported_layer_fails_naming_the_layer_the_technique_and_what_to_do(
    penguin_examples, penguin_model, tmp_path
):
    model = _custom_core_model(penguin_model, tmp_path)

    with pytest.raises(TechniqueError) as raised:
        optimize(model, penguin_examples, tmp_path, [Prune(target_sparsity=0.5)])

    message = str(raised.value)
    assert message.startswith("prune does not support layer 'scale' (")
    assert """{"technique": "prune", "layers": ['hidden', 'output']}""" in message
    assert "tfmot.sparsity.keras.PrunableLayer" in message
    # And clustering only the supported layers works.
    core, _ = load_tabular_model(model.uri)
    assert select_layers(core, "cluster", ["hidden", "output"]) == ["hidden", "output"]


def test_a_subclassed_core_is_refused_with_what_to_build_instead():
    class Core(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed")
            self.dense = keras.layers.Dense(3)

        def call(self, inputs):
            return self.dense(inputs)

    core = Core()
    core(np.zeros((1, 4), np.float32))

    with pytest.raises(TechniqueError, match="not a Sequential or functional tf_keras model"):
        select_layers(core, "prune")


def test_a_missing_split_is_named_with_the_splits_there_are(
    penguin_examples, penguin_model, tmp_path
):
    with pytest.raises(ValueError, match=r"have no 'validation' split \(splits: train, eval\)"):
        optimize(
            penguin_model,
            penguin_examples,
            tmp_path,
            [Quantize("dynamic")],
            eval_split="validation",
        )
