"""BucketPusher construction: the spec it builds and the actionable errors for bad parameters."""

from __future__ import annotations

import pytest
from tfx import types
from tfx.orchestration import data_types
from tfx.types import standard_artifacts

from tfrelay.components.pusher import BucketPusher, component, executor


def _model() -> types.Channel:
    return types.Channel(type=standard_artifacts.Model)


def test_component_construction_with_valid_parameters_builds_the_spec():
    pusher = BucketPusher(
        model=_model(),
        model_blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        base_path="s3://my-bucket/models/penguins",
        model_name="penguins",
        keep_last=3,
        versioning="unix_timestamp",
    )

    assert pusher.exec_properties == {
        component.BASE_PATH_KEY: "s3://my-bucket/models/penguins",
        component.MODEL_NAME_KEY: "penguins",
        component.KEEP_LAST_KEY: 3,
        component.VERSIONING_KEY: "unix_timestamp",
    }
    assert pusher.outputs[component.PUSHED_MODEL_KEY].type == standard_artifacts.PushedModel
    assert set(pusher.inputs) == {component.MODEL_KEY, component.MODEL_BLESSING_KEY}
    assert pusher.executor_spec.executor_class is executor.Executor


@pytest.mark.parametrize(
    "base_path",
    ["/srv/models/penguins", "file:///srv/models/penguins", "gs://bucket/models/penguins"],
)
def test_component_construction_accepts_local_file_and_gcs_base_paths(base_path):
    pusher = BucketPusher(model=_model(), base_path=base_path)

    assert pusher.exec_properties[component.KEEP_LAST_KEY] == 0
    assert pusher.exec_properties[component.VERSIONING_KEY] == "next_integer"
    assert pusher.exec_properties[component.MODEL_NAME_KEY] is None


def test_component_construction_defers_runtime_parameters_to_the_executor():
    base_path = data_types.RuntimeParameter(name="base_path", ptype=str, default="")

    pusher = BucketPusher(model=_model(), base_path=base_path)

    assert pusher.exec_properties[component.BASE_PATH_KEY] is base_path


@pytest.mark.parametrize(
    ("parameters", "message_parts"),
    [
        (
            {"base_path": None},
            ["base_path is required", "--model_base_path", "s3://my-bucket/models/penguins"],
        ),
        ({"base_path": "  "}, ["base_path is required"]),
        (
            {"base_path": "hdfs://namenode/models/penguins"},
            ["unsupported scheme 'hdfs'", "s3://", "gs://", "file://"],
        ),
        ({"base_path": "s3://"}, ["names no bucket", "s3://<bucket>/<prefix>"]),
        (
            {"base_path": "s3://AKIA:secret@bucket/models"},
            ["carries credentials", "AWS_ACCESS_KEY_ID", "environment"],
        ),
        (
            {"base_path": "s3://bucket/models/penguins/3"},
            ["ends in what looks like a version directory", "'s3://bucket/models/penguins'"],
        ),
        ({"keep_last": -1}, ["keep_last must be a whole number >= 0", "0 keeps every version"]),
        ({"keep_last": 1.5}, ["keep_last must be a whole number >= 0"]),
        ({"keep_last": True}, ["keep_last must be a whole number >= 0"]),
        ({"versioning": "semver"}, ["'next_integer'", "'unix_timestamp'", "got 'semver'"]),
        ({"model_name": ""}, ["model_name must be a non-empty string", "leave it unset"]),
    ],
)
def test_component_construction_rejects_invalid_parameter_with_actionable_message(
    parameters, message_parts
):
    arguments = {"base_path": "s3://bucket/models/penguins", **parameters}

    with pytest.raises(ValueError) as raised:
        BucketPusher(model=_model(), **arguments)

    for part in message_parts:
        assert part in str(raised.value)


def test_component_construction_without_model_channel_says_what_to_pass():
    with pytest.raises(ValueError, match=r"model=trainer.outputs\['model'\]"):
        BucketPusher(base_path="s3://bucket/models/penguins")
