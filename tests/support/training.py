"""Running the Trainer executor on real artifacts, as TFX does, for the component tests."""

from __future__ import annotations

import json
import pathlib

from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from tfrelay.pipelines.datasets import penguins


def trainer_properties(**overrides) -> dict:
    """Exec properties as TFX hands them to the Trainer executor (protos and lists as JSON)."""
    properties = {
        "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs()),
        "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs()),
        "label_key": penguins.LABEL_KEY,
        "feature_keys": json.dumps(penguins.FEATURE_KEYS),
        "task": "classification",
        "hidden_units": "[16, 8]",
        "epochs": 10,
        "batch_size": 32,
        "learning_rate": 0.01,
        "warmup_examples": 4,
    }
    properties.update(overrides)
    return properties


def train(examples, root: pathlib.Path, **overrides) -> standard_artifacts.Model:
    """Runs the Trainer executor; returns its Model artifact."""
    from tfrelay.components.trainer.executor import Executor

    model = standard_artifacts.Model()
    model.uri = str(root / "model")
    model_run = standard_artifacts.ModelRun()
    model_run.uri = str(root / "model_run")
    Executor().Do(
        {"examples": [examples]},
        {"model": [model], "model_run": [model_run]},
        trainer_properties(**overrides),
    )
    return model
