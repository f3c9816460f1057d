"""Validator: blessing decisions on real models, a real baseline in a bucket directory, and
construction-time validation."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from tfx.types import channel_utils, standard_artifacts
from tfx.utils import proto_utils

from support.training import train
from tfrelay.components import properties
from tfrelay.components.validator import evaluation
from tfrelay.components.validator.component import Validator
from tfrelay.components.validator.executor import Executor


def _validate(examples, model, tmp_path, base_path=None, check_contract=True, **thresholds):
    evaluation_artifact = standard_artifacts.ModelEvaluation()
    evaluation_artifact.uri = str(tmp_path / "evaluation")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    config = evaluation.build_eval_config("species", "classification", **thresholds)
    Executor().Do(
        {"examples": [examples], "model": [model]},
        {"evaluation": [evaluation_artifact], "blessing": [blessing]},
        {
            "eval_config": proto_utils.proto_to_json(config),
            "baseline_base_path": str(base_path) if base_path else "",
            "example_splits": None,
            "check_serving_contract": int(check_contract),
        },
    )
    return blessing, evaluation_artifact


def _failed(blessing) -> list[str]:
    return json.loads(blessing.get_string_custom_property(properties.FAILED_CHECKS))


def _publish(model, base_path, version: int) -> None:
    shutil.copytree(os.path.join(model.uri, "Format-Serving"), base_path / str(version))


def test_first_push_is_blessed_on_value_thresholds_alone(penguin_examples, penguin_model, tmp_path):
    bucket = tmp_path / "bucket" / "penguins"
    bucket.mkdir(parents=True)
    blessing, evaluation_artifact = _validate(
        penguin_examples, penguin_model, tmp_path, bucket, lower_bound=0.8, max_degradation=0.0
    )
    assert blessing.get_int_custom_property(properties.BLESSED) == 1
    assert os.path.exists(os.path.join(blessing.uri, "BLESSED"))
    metrics = json.loads(blessing.get_string_custom_property(properties.METRICS))
    assert metrics["sparse_categorical_accuracy"] >= 0.8
    assert blessing.get_int_custom_property(properties.BASELINE_VERSION) == -1
    # The evaluation is TFMA's own output, readable with TFMA's tools.
    import tensorflow_model_analysis as tfma

    assert tfma.load_validation_result(evaluation_artifact.uri).validation_ok


def test_candidate_is_compared_with_the_newest_complete_version_in_the_bucket(
    penguin_examples, penguin_model, tmp_path
):
    bucket = tmp_path / "bucket" / "penguins"
    _publish(penguin_model, bucket, 3)
    (bucket / "4").mkdir()  # an upload in progress (no saved_model.pb): not the baseline
    blessing, _ = _validate(
        penguin_examples, penguin_model, tmp_path, bucket, lower_bound=0.8, max_degradation=0.0
    )
    assert blessing.get_int_custom_property(properties.BLESSED) == 1
    assert blessing.get_int_custom_property(properties.BASELINE_VERSION) == 3
    assert blessing.get_string_custom_property(properties.BASELINE_URI).endswith("penguins/3")
    metrics = json.loads(blessing.get_string_custom_property(properties.METRICS))
    assert metrics["sparse_categorical_accuracy_diff"] == pytest.approx(0.0)


def test_candidate_below_threshold_is_not_blessed_and_the_margin_is_named(
    penguin_examples, penguin_model, tmp_path
):
    blessing, _ = _validate(penguin_examples, penguin_model, tmp_path, lower_bound=1.5)
    assert blessing.get_int_custom_property(properties.BLESSED) == 0
    assert os.path.exists(os.path.join(blessing.uri, "NOT_BLESSED"))
    (failure,) = _failed(blessing)
    assert (
        "sparse_categorical_accuracy" in failure
        and "required >= 1.5000" in failure
        and "short by" in failure
    )


def test_candidate_that_changes_serving_inputs_is_not_blessed(
    penguin_examples, penguin_model, tmp_path
):
    bucket = tmp_path / "bucket" / "penguins"
    _publish(penguin_model, bucket, 1)
    fewer_inputs = train(
        penguin_examples,
        tmp_path / "candidate",
        feature_keys=json.dumps(["bill_length_mm", "flipper_length_mm", "island"]),
        epochs=5,
    )
    blessing, _ = _validate(penguin_examples, fewer_inputs, tmp_path, bucket, lower_bound=0.5)
    assert blessing.get_int_custom_property(properties.BLESSED) == 0
    failed = _failed(blessing)
    assert any("serving_default input 'sex'" in f and "was removed" in f for f in failed)


def test_candidate_whose_warmup_fails_is_not_blessed(penguin_examples, penguin_model, tmp_path):
    broken = standard_artifacts.Model()
    broken.uri = str(tmp_path / "broken")
    shutil.copytree(
        os.path.join(penguin_model.uri, "Format-Serving"),
        os.path.join(broken.uri, "Format-Serving"),
    )
    with open(
        os.path.join(broken.uri, "Format-Serving", "assets.extra", "tf_serving_warmup_requests"),
        "wb",
    ) as f:
        f.write(b"not a tfrecord")
    blessing, _ = _validate(penguin_examples, broken, tmp_path, lower_bound=0.5)
    assert blessing.get_int_custom_property(properties.BLESSED) == 0
    assert any("warmup" in f for f in _failed(blessing))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Pass label_key"),
        ({"label_key": "species"}, "No metric threshold is configured"),
        ({"label_key": "species", "lower_bound": 0.5, "task": "ranking"}, "task must be one of"),
        ({"label_key": "species", "max_degradation": -1}, "max_degradation must be >= 0"),
        ({"label_key": "species", "lower_bound": 0.9, "upper_bound": 0.1}, "is above upper_bound"),
        (
            {"label_key": "species", "lower_bound": 0.5, "baseline_base_path": "ftp://x/y"},
            "use a local path",
        ),
    ],
)
def test_component_rejects_configurations_that_could_never_bless(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Validator(
            examples=channel_utils.as_channel([standard_artifacts.Examples()]),
            model=channel_utils.as_channel([standard_artifacts.Model()]),
            **kwargs,
        )


def test_serving_version_with_other_classes_is_compared_on_value_thresholds_only(
    penguin_examples, penguin_model, tmp_path, caplog
):
    from support.examples import write_examples
    from tfrelay.pipelines.datasets import penguins

    rows = [r for r in penguins.read_rows() if r["species"] != "Chinstrap"]
    two_species = write_examples(tmp_path / "two-species", {"train": rows[::2], "eval": rows[1::2]})
    baseline = train(two_species, tmp_path / "baseline", epochs=3)  # predicts 2 classes, not 3
    bucket = tmp_path / "bucket" / "penguins"
    _publish(baseline, bucket, 1)
    blessing, _ = _validate(
        penguin_examples, penguin_model, tmp_path, bucket, lower_bound=0.8, max_degradation=0.0
    )
    assert blessing.get_int_custom_property(properties.BLESSED) == 1
    assert blessing.get_int_custom_property(properties.BASELINE_VERSION) == 1
    metrics = json.loads(blessing.get_string_custom_property(properties.METRICS))
    assert "sparse_categorical_accuracy_diff" not in metrics  # no comparison was possible
    assert any("change thresholds are skipped" in r.getMessage() for r in caplog.records)
