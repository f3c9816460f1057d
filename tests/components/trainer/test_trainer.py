"""Trainer: construction-time validation and training/export on real penguin Examples."""

from __future__ import annotations

import json
import os
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import channel_utils, standard_artifacts

from support.training import train
from tfrelay.components.trainer.component import Trainer
from tfrelay.components.trainer.export import TFRELAY_DIR, load_tabular_model
from tfrelay.serving.servables.saved_model import SavedModelServable
from tfrelay.serving.warmup import read_warmup_records, replay, warmup_file

GENTOO = {
    "bill_length_mm": 46.5,
    "bill_depth_mm": 15.0,
    "flipper_length_mm": 220.0,
    "body_mass_g": 5000.0,
    "island": "Biscoe",
    "sex": "female",
}
ADELIE = {
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181.0,
    "body_mass_g": 3750.0,
    "island": "Torgersen",
    "sex": "male",
}


def _examples_channel():
    return channel_utils.as_channel([standard_artifacts.Examples()])


def test_component_builds_with_the_builtin_model():
    trainer = Trainer(examples=_examples_channel(), label_key="species", epochs=3)
    assert trainer.outputs["model"].type is standard_artifacts.Model
    assert trainer.exec_properties["label_key"] == "species"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs label_key"),
        ({"label_key": "y", "task": "ranking"}, "task must be one of classification, regression"),
        ({"label_key": "y", "hidden_units": [8, 0]}, "hidden_units must be positive integers"),
        ({"label_key": "y", "epochs": 0}, "epochs must be positive"),
        ({"label_key": "y", "warmup_examples": 1001}, "TF Serving reads at most 1000"),
        ({"label_key": "y", "feature_keys": ["a", "y"]}, "must not contain the label"),
        ({"module_file": "m.py", "run_fn": "a.b"}, "either module_file or run_fn"),
    ],
)
def test_component_rejects_settings_that_cannot_train(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Trainer(examples=_examples_channel(), **kwargs)


def _servable(model: standard_artifacts.Model) -> SavedModelServable:
    servable = SavedModelServable("penguins", 1, os.path.join(model.uri, "Format-Serving"))
    servable.load()
    return servable


def test_builtin_model_serves_raw_features_and_tf_examples(penguin_model):
    servable = _servable(penguin_model)
    try:
        signature = servable.signatures["serving_default"]
        assert set(signature.inputs) == set(GENTOO)
        inputs = {
            name: np.array(
                [GENTOO[name], ADELIE[name]],
                dtype=object if isinstance(GENTOO[name], str) else np.float32,
            )
            for name in GENTOO
        }
        outputs = servable.run(signature, inputs, ["classes", "class_ids", "probabilities"])
        assert outputs["classes"].tolist() == [b"Gentoo", b"Adelie"]
        assert outputs["probabilities"].shape == (2, 3)
        np.testing.assert_allclose(outputs["probabilities"].sum(axis=1), 1.0, rtol=1e-5)

        classify = servable.signatures["classify"]
        example = tf.train.Example()
        for name, value in ADELIE.items():
            feature = example.features.feature[name]
            if isinstance(value, str):
                feature.bytes_list.value.append(value.encode())
            else:
                feature.float_list.value.append(value)
        del example.features.feature["sex"]  # a missing value is imputed, not an error
        # Clients cannot know how columns were stored: an int for a float column (and floats for
        # the int column body_mass_g, above) both decode.
        example.features.feature["bill_length_mm"].Clear()
        example.features.feature["bill_length_mm"].int64_list.value.append(39)
        result = servable.run(
            classify,
            {"inputs": np.array([example.SerializeToString()], dtype=object)},
            ["classes", "scores"],
        )
        assert result["classes"].tolist() == [[b"Adelie", b"Chinstrap", b"Gentoo"]]
        assert result["scores"][0].argmax() == 0
    finally:
        servable.unload()


def test_export_carries_warmup_requests_that_replay(penguin_model):
    servable = _servable(penguin_model)
    try:
        kinds = [
            log.WhichOneof("log_type") for log in read_warmup_records(warmup_file(servable.path))
        ]
        assert kinds == ["predict_log", "classify_log"]
        assert replay(servable)[0] == 2
    finally:
        servable.unload()


def test_export_keeps_what_the_optimizer_needs(penguin_model):
    core, spec = load_tabular_model(penguin_model.uri)
    assert spec.label_vocabulary == ["Adelie", "Chinstrap", "Gentoo"]
    assert [f.name for f in spec.features] == [
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "island",
        "sex",
    ]
    assert core.output_shape == (None, 3)
    assert os.path.isdir(os.path.join(penguin_model.uri, TFRELAY_DIR, "core"))


def test_regression_task_exports_a_regress_signature(penguin_examples, tmp_path):
    model = train(
        penguin_examples,
        tmp_path,
        label_key="body_mass_g",
        feature_keys=json.dumps(["flipper_length_mm", "species"]),
        task="regression",
        epochs=3,
    )
    servable = _servable(model)
    try:
        assert set(servable.signatures) == {"serving_default", "regress"}
        assert set(servable.signatures["serving_default"].outputs) == {"predictions"}
        assert replay(servable)[0] == 2
    finally:
        servable.unload()


def test_unknown_label_is_reported_with_the_features_available(penguin_examples, tmp_path):
    with pytest.raises(
        ValueError, match="label_key 'weight' is not a feature of the examples.*bill_depth_mm"
    ):
        train(penguin_examples, tmp_path, label_key="weight", feature_keys=None)


def test_user_run_fn_module_trains_instead(penguin_examples, tmp_path):
    module = tmp_path / "user_module.py"
    module.write_text(
        textwrap.dedent(
            """
            import tensorflow as tf

            class Constant(tf.Module):
                @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
                def serve(self, x):
                    return {"y": x * 0.0 + 7.0}

            def run_fn(fn_args):
                assert fn_args.custom_config == {"answer": 7}
                assert fn_args.train_files and fn_args.eval_files
                m = Constant()
                tf.saved_model.save(m, fn_args.serving_model_dir, signatures={"serving_default": m.serve})
            """
        )
    )
    model = train(
        penguin_examples, tmp_path, module_file=str(module), custom_config=json.dumps({"answer": 7})
    )
    servable = _servable(model)
    try:
        out = servable.run(
            servable.signatures["serving_default"], {"x": np.array([1.0], np.float32)}, ["y"]
        )
        assert out["y"].tolist() == [7.0]
    finally:
        servable.unload()
