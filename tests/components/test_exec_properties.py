"""One decoding of list and dict execution parameters for every executor (issue 15): TFX hands
them over JSON-encoded, direct callers as Python values; str parameters are never decoded."""

from __future__ import annotations

import json
import os

import pytest
from tfx.components.trainer import fn_args_utils
from tfx.types import standard_artifacts

from tfrelay.components import properties
from tfrelay.components.deployer import executor as deployer_executor
from tfrelay.components.deployer import keys as deployer_keys
from tfrelay.components.deployer.artifacts import ServingEndpoint
from tfrelay.components.exec_properties import decoded
from tfrelay.components.trainer import executor as trainer_executor
from tfrelay.components.trainer import keys as trainer_keys
from tfrelay.components.trainer import tabular


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('["a", "b"]', ["a", "b"]),
        ("[16, 8]", [16, 8]),
        ('{"answer": 7}', {"answer": 7}),
        (["already", "decoded"], ["already", "decoded"]),
        ({"already": 1}, {"already": 1}),
        (None, None),
        ("", ""),
        ("plain", "plain"),
        (3, 3),
    ],
)
def test_json_arrays_and_objects_are_decoded_anything_else_is_returned_as_is(value, expected):
    assert decoded(value) == expected


def test_a_string_that_only_looks_like_json_is_an_error():
    with pytest.raises(json.JSONDecodeError):
        decoded("{not json")


def test_the_trainer_decodes_its_list_and_dict_parameters_but_not_its_str_ones(
    tmp_path, monkeypatch
):
    seen = {}

    def run_fn(fn_args):
        seen["custom_config"] = fn_args.custom_config
        os.makedirs(fn_args.serving_model_dir)

    monkeypatch.setattr(tabular, "run_fn", run_fn)
    # The train/eval file lookup needs real Examples; what is decoded does not.
    monkeypatch.setattr(
        fn_args_utils,
        "get_common_fn_args",
        lambda input_dict, exec_properties: fn_args_utils.FnArgs(),
    )
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = str(tmp_path / "model"), str(tmp_path / "model_run")
    trainer_executor.Executor().Do(
        {},
        {trainer_keys.MODEL_KEY: [model], trainer_keys.MODEL_RUN_KEY: [model_run]},
        {
            trainer_keys.LABEL_KEY: "{label}",  # a str parameter: a column may be named so
            trainer_keys.FEATURE_KEYS_KEY: json.dumps(["a", "b"]),
            trainer_keys.HIDDEN_UNITS_KEY: [4],  # a direct caller's Python value
            trainer_keys.TASK_KEY: "classification",
            trainer_keys.EPOCHS_KEY: 1,
            trainer_keys.CORE_MODEL_FN_KEY: "",  # unset
            trainer_keys.CUSTOM_CONFIG_KEY: json.dumps({"answer": 7}),
        },
    )
    assert seen["custom_config"] == {
        "answer": 7,
        tabular.TABULAR_CONFIG_KEY: {
            "label_key": "{label}",
            "feature_keys": ["a", "b"],
            "hidden_units": [4],
            "task": "classification",
            "epochs": 1,
        },
    }


@pytest.mark.parametrize("kubernetes_config", [{"replicas": 3}, json.dumps({"replicas": 3})])
def test_the_deployer_decodes_its_kubernetes_config(kubernetes_config, tmp_path, monkeypatch):
    applied = []
    monkeypatch.setattr(deployer_executor.kubernetes_apply, "apply_once", applied.extend)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    pushed.set_int_custom_property(properties.PUSHED, 0)  # nothing to wait for
    endpoint = ServingEndpoint()
    endpoint.uri = str(tmp_path / "endpoint")
    deployer_executor.Executor().Do(
        {deployer_keys.PUSHED_MODEL_KEY: [pushed]},
        {deployer_keys.ENDPOINT_KEY: [endpoint]},
        {
            deployer_keys.MODEL_NAME_KEY: "penguins",
            deployer_keys.BASE_PATH_KEY: "s3://models-bucket/models/penguins",
            deployer_keys.TARGET_KEY: deployer_keys.KUBERNETES,
            deployer_keys.ENDPOINT_URL_KEY: "http://127.0.0.1:9",  # nothing answers: fast
            deployer_keys.TIMEOUT_KEY: 1,
            deployer_keys.POLL_SECONDS_KEY: 1,
            deployer_keys.KUBERNETES_CONFIG_KEY: kubernetes_config,
        },
    )
    deployment = next(m for m in applied if m["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 3
