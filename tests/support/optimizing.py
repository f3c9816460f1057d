"""Running the Optimizer executor on real artifacts, as TFX does, for the component tests and the
digits benchmark."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

from tfx.types import standard_artifacts

from tfrelay.components.optimizer import settings
from tfrelay.components.optimizer.artifacts import OptimizationReport


def optimizer_properties(
    techniques: Sequence, max_accuracy_drop: float = 0.01, **overrides
) -> dict:
    """Exec properties as TFX hands them to the Optimizer executor (the list as JSON)."""
    properties = {
        "techniques": json.dumps(
            [settings.to_dict(t) for t in settings.parse_techniques(techniques)]
        ),
        "max_accuracy_drop": max_accuracy_drop,
        "train_split": "train",
        "eval_split": "eval",
    }
    properties.update(overrides)
    return properties


def optimize(
    model: standard_artifacts.Model,
    examples: standard_artifacts.Examples,
    root: pathlib.Path,
    techniques: Sequence,
    max_accuracy_drop: float = 0.01,
    model_blessing: standard_artifacts.ModelBlessing | None = None,
    **overrides,
) -> tuple[standard_artifacts.Model, standard_artifacts.ModelBlessing, OptimizationReport]:
    """Runs the Optimizer executor; returns (optimized Model, ModelBlessing, report)."""
    from tfrelay.components.optimizer.executor import Executor

    optimized = standard_artifacts.Model()
    optimized.uri = str(root / "optimized_model")
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(root / "blessing")
    report = OptimizationReport()
    report.uri = str(root / "report")
    for artifact in (optimized, blessing, report):
        pathlib.Path(artifact.uri).mkdir(parents=True, exist_ok=True)
    inputs = {"model": [model], "examples": [examples]}
    if model_blessing is not None:
        inputs["model_blessing"] = [model_blessing]
    Executor().Do(
        inputs,
        {"optimized_model": [optimized], "blessing": [blessing], "report": [report]},
        optimizer_properties(techniques, max_accuracy_drop, **overrides),
    )
    return optimized, blessing, report


def read_report(report: OptimizationReport) -> dict:
    return json.loads((pathlib.Path(report.uri) / "report.json").read_text())


# -- student functions for Distill(student=...), in the Trainer's core_model_fn form -------------


def penguin_student(input_width: int, num_outputs: int, config: object = None):
    """A one-hidden-layer student (6 units) for the penguin MLP (16-8)."""
    import tf_keras as keras

    inputs = keras.Input(shape=(input_width,), name="features")
    hidden = keras.layers.Dense(6, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(num_outputs, activation="softmax", name="output")(hidden)
    return keras.Model(inputs, outputs, name="penguin_student")


def logits_student(input_width: int, num_outputs: int, config: object = None):
    """A student without a softmax: the serving signature would read logits as probabilities."""
    import tf_keras as keras

    inputs = keras.Input(shape=(input_width,), name="features")
    outputs = keras.layers.Dense(num_outputs, name="logits")(inputs)
    return keras.Model(inputs, outputs, name="logits_student")


def wrong_input_student(input_width: int, num_outputs: int, config: object = None):
    """A student built for another input width than the one it is given."""
    return penguin_student(input_width + 5, num_outputs, config)
