"""Distillation on real penguin artifacts: a student the Validator blesses, the BucketPusher
pushes and the model server serves like any other candidate; distill chained with prune and
int8; the fallback to the teacher when the student misses the accuracy bound; and the errors
for students that cannot stand in for the teacher."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import shutil

import httpx
import numpy as np
import pytest
import tf_keras as keras
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from support.optimizing import optimize, read_report
from support.servers import InProcessModelServer, wait_for_version
from tfrelay.components import properties
from tfrelay.components.optimizer import Distill, Prune, Quantize, data, measure
from tfrelay.components.optimizer.distill import build_student, narrow
from tfrelay.components.optimizer.techniques import TechniqueError
from tfrelay.components.pusher import component as pusher_component
from tfrelay.components.pusher import executor as pusher_executor
from tfrelay.components.trainer.export import load_tabular_model
from tfrelay.components.validator import evaluation
from tfrelay.components.validator.executor import Executor as ValidatorExecutor
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.servables.saved_model import SavedModelServable
from tfrelay.serving.storage.model_storage import ModelStorage
from tfrelay.serving.warmup import replay

MODEL_NAME = "penguins"


def _serving(model) -> pathlib.Path:
    return pathlib.Path(model.uri) / "Format-Serving"


def _failed(blessing) -> list[str]:
    return json.loads(blessing.get_string_custom_property(properties.FAILED_CHECKS))


def _validate(examples, model, root: pathlib.Path, base_path: pathlib.Path):
    """The Validator executor on a candidate, against the newest version under `base_path`."""
    evaluation_artifact = standard_artifacts.ModelEvaluation()
    evaluation_artifact.uri = str(root / "evaluation")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(root / "validator_blessing")
    config = evaluation.build_eval_config(
        "species", "classification", lower_bound=0.8, max_degradation=0.05
    )
    ValidatorExecutor().Do(
        {"examples": [examples], "model": [model]},
        {"evaluation": [evaluation_artifact], "blessing": [blessing]},
        {
            "eval_config": proto_utils.proto_to_json(config),
            "baseline_base_path": str(base_path),
            "example_splits": None,
            "check_serving_contract": 1,
        },
    )
    return blessing


def _push(model, blessing, fallback_model, base: pathlib.Path, root: pathlib.Path):
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


def _rest_inputs(split: data.Split) -> dict:
    return {
        name: [v.decode() if isinstance(v, bytes) else float(v) for v in values.tolist()]
        for name, values in split.raw.items()
    }


def test_a_distilled_student_is_blessed_by_the_validator_pushed_and_served(
    penguin_examples, penguin_model, tmp_path
):
    optimized, blessing, report = optimize(
        penguin_model,
        penguin_examples,
        tmp_path / "optimizer",
        [Distill(width=0.5, epochs=20, learning_rate=0.01)],
        max_accuracy_drop=0.05,
    )

    # A smaller core: the teacher's 16-8 MLP at half width, the output still one unit a class.
    teacher, spec = load_tabular_model(penguin_model.uri)
    student, _ = load_tabular_model(optimized.uri)
    assert [layer.units for layer in student.layers if hasattr(layer, "units")] == [8, 4, 3]
    assert student.count_params() < teacher.count_params() / 2
    content = read_report(report)
    assert [m["name"] for m in content["models"]] == ["original", "distill width 0.5"]
    row = content["models"][1]
    assert row["format"] == "saved_model" and row["parameters"] == student.count_params()
    assert row["details"]["narrowed_layers"] == {"hidden_0": [16, 8], "hidden_1": [8, 4]}
    assert row["details"]["teacher_parameters"] == teacher.count_params()
    assert row["details"]["train_steps"] > 0
    assert content["blessed"] is True and blessing.get_int_custom_property("blessed") == 1
    # The teacher's signatures, inputs and warmup requests, around the student.
    original = SavedModelServable(MODEL_NAME, 1, str(_serving(penguin_model)))
    candidate = SavedModelServable(MODEL_NAME, 2, str(_serving(optimized)))
    original.load()
    candidate.load()
    try:
        assert (
            set(candidate.signatures) == set(original.signatures) == {"serving_default", "classify"}
        )
        for name in candidate.signatures:
            assert set(candidate.signatures[name].inputs) == set(original.signatures[name].inputs)
            assert set(candidate.signatures[name].outputs) == set(original.signatures[name].outputs)
        assert replay(candidate)[0] == 2  # one Predict, one Classify
    finally:
        original.unload()
        candidate.unload()

    # The Validator blesses the student against the teacher serving as version 1.
    base = tmp_path / "bucket" / MODEL_NAME
    shutil.copytree(_serving(penguin_model), base / "1")
    validated = _validate(penguin_examples, optimized, tmp_path, base)
    assert validated.get_int_custom_property(properties.BLESSED) == 1, _failed(validated)
    assert validated.get_int_custom_property(properties.BASELINE_VERSION) == 1

    # The BucketPusher pushes it as version 2, with the Optimizer's figures in the push record.
    pushed = _push(optimized, blessing, penguin_model, base, tmp_path)
    assert pushed.get_string_custom_property(properties.PUSHED_INPUT) == "model"
    record = json.loads((base / "2" / "assets.extra" / "tfrelay_push.json").read_text())
    assert record["selected_input"] == "model"
    assert record["source_model_uri"] == optimized.uri
    assert record["metrics"]["accuracy_drop"] <= 0.05

    # The server loads version 2 (replaying its warmup) and answers as the student does.
    evaluation_split = data.load_split(
        data.split_files(str(pathlib.Path(penguin_examples.uri) / "Split-eval")), spec
    )
    expected = measure.predicted_classes(
        measure.saved_model_predictor(str(_serving(optimized))), evaluation_split
    )
    options = ServerOptions(
        model_name=MODEL_NAME, model_base_path=str(base), file_system_poll_wait_seconds=1
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, MODEL_NAME, 2)
        model_url = f"{server.url}/v1/models/{MODEL_NAME}"
        body = json.dumps({"inputs": _rest_inputs(evaluation_split)}, allow_nan=True)
        predicted = httpx.post(f"{model_url}/versions/2:predict", content=body, timeout=30)
        examples = [
            {
                "island": "Biscoe",
                "bill_length_mm": 48.6,
                "bill_depth_mm": 16.0,
                "flipper_length_mm": 230,
                "body_mass_g": 5800,
                "sex": "male",
            },
        ]
        classified = httpx.post(
            f"{model_url}/versions/2:classify",
            json={"signature_name": "classify", "examples": examples},
            timeout=30,
        )
    assert predicted.status_code == 200, predicted.text
    served = np.array(predicted.json()["outputs"]["class_ids"])
    assert len(served) == len(evaluation_split) > 100
    np.testing.assert_array_equal(served, expected)
    assert classified.status_code == 200, classified.text
    ((first, *_),) = classified.json()["results"]
    assert first[0] in spec.label_vocabulary


def test_a_user_student_distilled_then_pruned_then_int8_is_measured_at_every_step(
    penguin_examples, penguin_model, tmp_path
):
    optimized, blessing, report = optimize(
        penguin_model,
        penguin_examples,
        tmp_path,
        [
            Distill(student="support.optimizing:penguin_student", epochs=20, learning_rate=0.01),
            Prune(target_sparsity=0.5, epochs=3),
            Quantize("int8"),
        ],
        max_accuracy_drop=0.1,
    )

    content = read_report(report)
    names = [m["name"] for m in content["models"]]
    assert names == [
        "original",
        "distill penguin_student",
        "distill penguin_student -> prune 50%",
        "distill penguin_student -> prune 50% -> int8",
    ]
    original, student, pruned, quantized = content["models"]
    assert student["details"]["student"] == "support.optimizing:penguin_student"
    assert student["parameters"] == pruned["parameters"] == quantized["parameters"]
    assert student["parameters"] < original["parameters"]
    # Pruning and int8 worked on the student, not on the teacher.
    assert pruned["details"]["layers"] == ["hidden", "output"]
    assert pruned["details"]["achieved_sparsity"] == pytest.approx(0.5, abs=0.05)
    assert quantized["format"] == "tflite" and quantized["details"]["mode"] == "int8"
    for row in content["models"]:
        assert row["size_bytes"] > row["gzipped_bytes"] > 0
        assert row["latency_single_ms"] > 0 and row["latency_batch_ms"] > 0
    assert quantized["gzipped_bytes"] < student["gzipped_bytes"] < original["gzipped_bytes"]
    core, _ = load_tabular_model(optimized.uri)
    assert core.name == "penguin_student"
    assert (_serving(optimized) / "model.tflite").stat().st_size > 0
    # The blessing judges the last model, the int8 student, against the teacher.
    blessed = original["accuracy"] - quantized["accuracy"] <= 0.1
    assert content["blessed"] is blessed
    assert blessing.get_int_custom_property(properties.BLESSED) == int(blessed)


def test_a_student_that_misses_the_accuracy_bound_is_not_blessed_and_the_teacher_is_pushed(
    penguin_examples, penguin_model, tmp_path, caplog
):
    # Two and one hidden units trained for one batch cannot match the teacher.
    optimized, blessing, report = optimize(
        penguin_model,
        penguin_examples,
        tmp_path / "optimizer",
        [Distill(width=0.1, steps=1)],
        max_accuracy_drop=0.0,
    )

    assert blessing.get_int_custom_property(properties.BLESSED) == 0
    assert os.path.exists(os.path.join(blessing.uri, "NOT_BLESSED"))
    (failed,) = _failed(blessing)
    assert "accuracy dropped by" in failed and "more than max_accuracy_drop 0.00 points" in failed
    assert "a wider student, more distillation epochs" in failed
    content = read_report(report)
    assert content["blessed"] is False
    assert content["models"][1]["details"]["narrowed_layers"] == {
        "hidden_0": [16, 2],
        "hidden_1": [8, 1],
    }

    base = tmp_path / "bucket" / MODEL_NAME
    with caplog.at_level(logging.INFO):
        pushed = _push(optimized, blessing, penguin_model, base, tmp_path)

    assert pushed.get_string_custom_property(properties.PUSHED_INPUT) == "fallback_model"
    assert pushed.get_string_custom_property(properties.PUSHED_MODEL_URI) == penguin_model.uri
    record = json.loads((base / "1" / "assets.extra" / "tfrelay_push.json").read_text())
    assert record["selected_input"] == "fallback_model"
    assert "a wider student" in record["selection_reason"]
    # Version 1 is the teacher, complete: it predicts as the teacher, not as the student.
    assert ModelStorage(str(base)).check_complete("1")[0].complete
    _, spec = load_tabular_model(penguin_model.uri)
    split = data.load_split(
        data.split_files(str(pathlib.Path(penguin_examples.uri) / "Split-eval")), spec
    )
    np.testing.assert_array_equal(
        measure.predicted_classes(measure.saved_model_predictor(str(base / "1")), split),
        measure.predicted_classes(
            measure.saved_model_predictor(str(_serving(penguin_model))), split
        ),
    )
    assert any(
        "pushed instead of model" in r.getMessage() and "a wider student" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize(
    ("student", "message"),
    [
        (
            "support.optimizing:logits_student",
            r"the student 'logits_student' must end in a softmax over the 3 classes \(the serving "
            r"signature reads its output as probabilities\); .* that does not sum to 1",
        ),
        (
            "support.optimizing:wrong_input_student",
            r"the student 'penguin_student' cannot read the preprocessed features \(a "
            r"\[batch, \d+\] float vector\)",
        ),
        (
            "support.optimizing:no_such_student",
            r"the student function 'support.optimizing:no_such_student' failed: ValueError: "
            "core_model_fn .* is not an importable function",
        ),
    ],
)
def test_a_student_that_cannot_stand_in_for_the_teacher_is_refused_with_why(
    penguin_model, student, message
):
    teacher, spec = load_tabular_model(penguin_model.uri)

    with pytest.raises(TechniqueError, match=message):
        build_student(teacher, Distill(student=student), spec)


def test_width_cannot_narrow_a_teacher_without_hidden_layers():
    inputs = keras.Input(shape=(4,), name="features")
    teacher = keras.Model(
        inputs, keras.layers.Dense(3, activation="softmax", name="output")(inputs)
    )

    with pytest.raises(
        TechniqueError, match=r"no layer with units or filters besides its output layer 'output'"
    ):
        narrow(teacher, 0.25)


def test_width_keeps_the_classes_when_the_softmax_is_a_layer_of_its_own():
    inputs = keras.Input(shape=(4,), name="features")
    x = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    x = keras.layers.Dense(3, name="logits")(x)
    teacher = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(x))

    student, narrowed = narrow(teacher, 0.25)

    assert narrowed == {"hidden": [32, 8]}
    assert student.output_shape == (None, 3)


def test_the_narrowed_student_has_fresh_weights_and_leaves_the_teacher_alone(penguin_model):
    teacher, spec = load_tabular_model(penguin_model.uri)
    before = [w.copy() for w in teacher.get_weights()]

    student, details = build_student(teacher, Distill(width=0.5), spec)

    assert details["student_parameters"] == student.count_params() < teacher.count_params()
    assert all(
        not any(s is t for t in teacher.weights) for s in student.weights
    )  # no shared variable
    for kept, now in zip(before, teacher.get_weights(), strict=True):
        np.testing.assert_array_equal(kept, now)
