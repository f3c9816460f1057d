"""BucketPusher fallback: push the model when it is blessed, else the fallback model (e.g. the
original of an optimized model) when `fallback` is on and the fallback is blessed; the push
record and the PushedModel say which was pushed and why."""

from __future__ import annotations

import json
import pathlib

import pytest
from tfx import types
from tfx.orchestration import data_types
from tfx.types import standard_artifacts

from tfrelay.components import properties
from tfrelay.components.pusher import BucketPusher, component, executor

BASE = "s3://my-bucket/models/penguins"


def _channel(artifact_type) -> types.Channel:
    return types.Channel(type=artifact_type)


def test_a_pusher_with_a_fallback_wires_it_and_records_the_switch():
    pusher = BucketPusher(
        model=_channel(standard_artifacts.Model),
        model_blessing=_channel(standard_artifacts.ModelBlessing),
        fallback_model=_channel(standard_artifacts.Model),
        fallback_model_blessing=_channel(standard_artifacts.ModelBlessing),
        fallback=True,
        base_path=BASE,
    )

    assert pusher.exec_properties[component.FALLBACK_KEY] == 1
    assert set(pusher.inputs) == {
        component.MODEL_KEY,
        component.MODEL_BLESSING_KEY,
        component.FALLBACK_MODEL_KEY,
        component.FALLBACK_MODEL_BLESSING_KEY,
    }


def test_the_fallback_switch_may_be_a_runtime_parameter():
    switch = data_types.RuntimeParameter(name="fallback", ptype=int, default=1)

    pusher = BucketPusher(
        model=_channel(standard_artifacts.Model),
        model_blessing=_channel(standard_artifacts.ModelBlessing),
        fallback_model=_channel(standard_artifacts.Model),
        fallback=switch,
        base_path=BASE,
    )

    assert pusher.exec_properties[component.FALLBACK_KEY] is switch


@pytest.mark.parametrize(
    ("channels", "fallback", "message"),
    [
        ({"model_blessing"}, True, "fallback=True needs fallback_model"),
        (
            {"model_blessing", "fallback_model_blessing"},
            False,
            "fallback_model_blessing is set but fallback_model is not",
        ),
        ({"fallback_model"}, True, "no model_blessing is wired .so `model` would always be pushed"),
        (
            {"model_blessing", "fallback_model"},
            False,
            "fallback_model is wired but fallback=False, so it would never be pushed",
        ),
        ({"model_blessing", "fallback_model"}, "yes", "fallback must be True or False"),
    ],
)
def test_fallback_settings_that_cannot_work_fail_at_construction(channels, fallback, message):
    kinds = {
        "model_blessing": standard_artifacts.ModelBlessing,
        "fallback_model": standard_artifacts.Model,
        "fallback_model_blessing": standard_artifacts.ModelBlessing,
    }
    with pytest.raises(ValueError, match=message):
        BucketPusher(
            model=_channel(standard_artifacts.Model),
            base_path=BASE,
            fallback=fallback,
            **{name: _channel(kinds[name]) for name in channels},
        )


def _blessing(root: pathlib.Path, name: str, blessed: bool, failed: list[str] | None = None):
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(root / name)
    pathlib.Path(blessing.uri).mkdir(parents=True, exist_ok=True)
    blessing.set_int_custom_property(properties.BLESSED, int(blessed))
    blessing.set_string_custom_property(properties.METRICS, json.dumps({"accuracy": 0.9}))
    blessing.set_string_custom_property(properties.FAILED_CHECKS, json.dumps(failed or []))
    return blessing


def _push(tmp_path, base, model, blessing, fallback_model, fallback_blessing=None, on=1):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed_model")
    inputs = {
        component.MODEL_KEY: [model],
        component.MODEL_BLESSING_KEY: [blessing],
        component.FALLBACK_MODEL_KEY: [fallback_model],
    }
    if fallback_blessing is not None:
        inputs[component.FALLBACK_MODEL_BLESSING_KEY] = [fallback_blessing]
    executor.Executor().Do(
        inputs,
        {component.PUSHED_MODEL_KEY: [pushed]},
        {component.BASE_PATH_KEY: str(base), component.FALLBACK_KEY: on},
    )
    return pushed


def _record(base: pathlib.Path) -> dict:
    return json.loads((base / "1" / "assets.extra" / "tfrelay_push.json").read_text())


def test_a_blessed_model_is_pushed_and_the_fallback_ignored(tmp_path, make_model):
    optimized, original = make_model(variant="optimized"), make_model()
    base = tmp_path / "bucket" / "penguins"

    pushed = _push(tmp_path, base, optimized, _blessing(tmp_path, "optimizer", True), original)

    assert pushed.get_string_custom_property(properties.PUSHED_INPUT) == "model"
    assert pushed.get_string_custom_property(properties.PUSHED_MODEL_URI) == optimized.uri
    record = _record(base)
    assert record["selected_input"] == "model"
    assert record["source_model_uri"] == optimized.uri
    assert record["selection_reason"].startswith("model pushed: it was blessed (ModelBlessing ")


def test_a_model_that_is_not_blessed_falls_back_to_the_fallback_model(tmp_path, make_model):
    optimized, original = make_model(variant="optimized"), make_model()
    base = tmp_path / "bucket" / "penguins"
    refused = _blessing(tmp_path, "optimizer", False, ["accuracy dropped by 3.00 points"])

    pushed = _push(
        tmp_path, base, optimized, refused, original, _blessing(tmp_path, "validator", True)
    )

    assert pushed.get_int_custom_property(properties.PUSHED) == 1
    assert pushed.get_string_custom_property(properties.PUSHED_INPUT) == "fallback_model"
    assert pushed.get_string_custom_property(properties.PUSHED_MODEL_URI) == original.uri
    reason = pushed.get_string_custom_property(properties.PUSH_REASON)
    assert reason.startswith("pushed: penguins version 1 published at ")
    assert (
        f"Fallback_model {original.uri} pushed instead of model {optimized.uri}, which was not "
        f"blessed (ModelBlessing {refused.uri}); failed checks: accuracy dropped by 3.00 points."
    ) in reason
    record = _record(base)
    assert record["selected_input"] == "fallback_model"
    assert record["source_model_uri"] == original.uri
    assert record["metrics"] == {"accuracy": 0.9}  # the fallback's own blessing
    assert "accuracy dropped by 3.00 points" in record["selection_reason"]
    assert not (base / "1" / "assets.extra" / "variant.txt").exists()  # the original's files


def test_no_push_when_the_fallback_is_not_blessed_either(tmp_path, make_model):
    base = tmp_path / "bucket" / "penguins"

    pushed = _push(
        tmp_path,
        base,
        make_model(variant="optimized"),
        _blessing(tmp_path, "optimizer", False, ["accuracy dropped by 3.00 points"]),
        make_model(),
        _blessing(tmp_path, "validator", False, ["accuracy 0.61 is below 0.80"]),
    )

    assert pushed.get_int_custom_property(properties.PUSHED) == 0
    assert pushed.get_string_custom_property(properties.PUSHED_INPUT) == ""
    reason = pushed.get_string_custom_property(properties.PUSH_REASON)
    assert reason.startswith("not pushed: the model was not blessed")
    assert "the fallback model was not blessed either" in reason
    assert "accuracy 0.61 is below 0.80" in reason
    assert not base.exists()


def test_no_fallback_when_the_switch_is_off_at_run_time(tmp_path, make_model):
    base = tmp_path / "bucket" / "penguins"

    pushed = _push(
        tmp_path,
        base,
        make_model(variant="optimized"),
        _blessing(tmp_path, "optimizer", False, ["accuracy dropped by 3.00 points"]),
        make_model(),
        on=0,
    )

    assert pushed.get_int_custom_property(properties.PUSHED) == 0
    reason = pushed.get_string_custom_property(properties.PUSH_REASON)
    assert reason.startswith("not pushed: the model was not blessed")
    assert "fallback model" not in reason
    assert not base.exists()
