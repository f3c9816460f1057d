"""The Optimizer's techniques and their settings: what a user writes, how it travels as a TFX
parameter, and every check that can be made before a pipeline runs.

A pipeline lists techniques in the order they apply, as these dataclasses or as plain dicts:

```python
techniques = [Prune(target_sparsity=0.8, epochs=2), Quantize("int8")]
techniques = [{"technique": "prune", "target_sparsity": 0.8}, {"technique": "quantize", "mode": "int8"}]
techniques = [Distill(width=0.25, epochs=30), Quantize("int8")]
```

The component parameter is the dict form as a JSON string, which ML Metadata, the local runners
and the Kubeflow V2 compiler all carry unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

DISTILL = "distill"
PRUNE = "prune"
CLUSTER = "cluster"
QUANTIZE = "quantize"
TECHNIQUES = (DISTILL, PRUNE, CLUSTER, QUANTIZE)

# The built-in student keeps this share of the teacher's units and filters (Distill.width).
DEFAULT_WIDTH = 0.25
# "package.module:function" (or "package.module.function"), as the Trainer's core_model_fn.
_FUNCTION_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*[:.][A-Za-z_]\w*$")

# Pruning schedules (tfmot.sparsity.keras): sparsity ramps up during fine-tuning, or is applied
# at its target from the first step.
POLYNOMIAL = "polynomial"
CONSTANT = "constant"
SCHEDULES = (POLYNOMIAL, CONSTANT)

# tfmot.clustering.keras.CentroidInitialization values, lower-cased.
CENTROID_INITS = ("kmeans_plus_plus", "density_based", "linear", "random")

# Post-training quantization with the TFLite converter.
DYNAMIC = "dynamic"  # int8 weights, float activations; no data needed
FLOAT16 = "float16"  # float16 weights
INT8 = "int8"  # int8 weights and activations, calibrated on a representative dataset
QUANTIZE_MODES = (DYNAMIC, FLOAT16, INT8)

TECHNIQUE_KEY = "technique"


class SettingsError(ValueError):
    """A technique list or setting that cannot work; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class Distill:
    """Knowledge distillation: a smaller student learns the trained model's (the teacher's)
    predictions, then replaces it, with the same serving signatures, preprocessing and warmup.

    The student trains from scratch on the train split with `alpha * hard + (1 - alpha) * soft`:
    `hard` is the cross-entropy with the labels, `soft` the KL divergence between the teacher's
    and the student's probabilities softened by `temperature`, times temperature squared (so
    its gradients keep their scale as the temperature changes; Hinton et al., 2015).

    Attributes:
      student: "package.module:function" building the student as the Trainer's core_model_fn
        does ((input width, number of classes, config) -> a tf_keras model ending in a softmax);
        empty: the teacher's own architecture with `width` times its units and filters.
      width: the share of the teacher's units (Dense) and filters (Conv) the built-in student
        keeps, in (0, 1); the output layer keeps one unit per class. Default 0.25 (about 16x
        fewer weights in the layers between two narrowed ones). Not with `student`.
      temperature: softens the probabilities the student learns from, in [1, 100]; higher shows
        more of how the teacher ranks the wrong classes.
      alpha: the weight of the hard labels in [0, 1] (0: the teacher's predictions alone).
      epochs: training passes over the train split.
      steps: if > 0, train exactly this many batches instead of `epochs` passes.
      batch_size: examples per training step.
      learning_rate: Adam's learning rate.
    """

    technique: ClassVar[str] = DISTILL

    student: str = ""
    width: float | None = None
    temperature: float = 4.0
    alpha: float = 0.1
    epochs: int = 30
    steps: int = 0
    batch_size: int = 32
    learning_rate: float = 3e-3

    @property
    def student_width(self) -> float | None:
        """The built-in student's width (None when `student` names a function)."""
        if self.student:
            return None
        return DEFAULT_WIDTH if self.width is None else self.width

    @property
    def label(self) -> str:
        if self.student:
            return f"distill {self.student.replace(':', '.').rpartition('.')[2]}"
        return f"distill width {self.student_width:g}"


@dataclasses.dataclass(frozen=True)
class Prune:
    """Magnitude pruning (tfmot.sparsity.keras.prune_low_magnitude), fine-tuned, then stripped.

    Attributes:
      target_sparsity: the fraction of each pruned weight tensor set to zero, in (0, 1).
      schedule: "polynomial" (sparsity ramps from `initial_sparsity` to the target over the first
        70% of fine-tuning; the rest recovers accuracy) or "constant" (the target from step 0).
      initial_sparsity: where the polynomial schedule starts, in [0, target_sparsity).
      epochs: fine-tuning passes over the train split (pruning happens while training).
      steps: if > 0, fine-tune exactly this many batches instead of `epochs` passes.
      batch_size: examples per fine-tuning step.
      learning_rate: Adam's learning rate for fine-tuning.
      layers: names of the layers to prune; empty prunes every layer with weights.
    """

    technique: ClassVar[str] = PRUNE

    target_sparsity: float = 0.8
    schedule: str = POLYNOMIAL
    initial_sparsity: float = 0.0
    epochs: int = 2
    steps: int = 0
    batch_size: int = 32
    learning_rate: float = 1e-3
    layers: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"prune {self.target_sparsity:.0%}"


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Weight clustering (tfmot.clustering.keras.cluster_weights), fine-tuned, then stripped.

    After a `Prune`, clustering preserves the zeros (TFMOT's sparsity-preserving clustering).

    Attributes:
      number_of_clusters: distinct values left in each clustered weight tensor, 2 to 256.
      centroid_init: "kmeans_plus_plus", "density_based", "linear" or "random".
      epochs: fine-tuning passes over the train split (0: cluster without fine-tuning).
      steps: if > 0, fine-tune exactly this many batches instead of `epochs` passes.
      batch_size: examples per fine-tuning step.
      learning_rate: Adam's learning rate for fine-tuning (TFMOT's guide uses a small one).
      layers: names of the layers to cluster; empty clusters every layer with weights.
    """

    technique: ClassVar[str] = CLUSTER

    number_of_clusters: int = 16
    centroid_init: str = "kmeans_plus_plus"
    epochs: int = 1
    steps: int = 0
    batch_size: int = 32
    learning_rate: float = 1e-4
    layers: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"cluster {self.number_of_clusters}"


@dataclasses.dataclass(frozen=True)
class Quantize:
    """Post-training quantization to TFLite (`model.tflite`).

    Attributes:
      mode: "dynamic" (int8 weights), "float16" (float16 weights) or "int8" (int8 weights and
        activations, calibrated on `representative_examples` train examples; ops without an int8
        kernel stay float).
      representative_examples: train examples, drawn at random, fed to the converter for "int8"
        calibration.
    """

    technique: ClassVar[str] = QUANTIZE

    mode: str = INT8
    representative_examples: int = 200

    @property
    def label(self) -> str:
        return self.mode


Technique = Distill | Prune | Cluster | Quantize
_CLASSES: dict[str, type] = {DISTILL: Distill, PRUNE: Prune, CLUSTER: Cluster, QUANTIZE: Quantize}


def to_dict(technique: Technique) -> dict[str, Any]:
    """The parameter form of a technique: {"technique": name, every setting}."""
    data = dataclasses.asdict(technique)
    if "layers" in data:
        data["layers"] = list(data["layers"])
    return {TECHNIQUE_KEY: technique.technique, **data}


def _where(index: int, name: str) -> str:
    return f"techniques[{index}] ({name})"


def _number(where: str, key: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise SettingsError(
            f"{where}: {key} must be {'a number' if kind is float else 'a whole number'}, "
            f"got {value!r}."
        )
    return float(value) if kind is float else value


def _from_dict(index: int, data: Mapping[str, Any]) -> Technique:
    name = data.get(TECHNIQUE_KEY)
    if name not in _CLASSES:
        raise SettingsError(
            f"techniques[{index}]: unknown technique {name!r}; use one of "
            f"{', '.join(repr(t) for t in TECHNIQUES)}, e.g. "
            '{"technique": "prune", "target_sparsity": 0.8}.'
        )
    cls = _CLASSES[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields) - {TECHNIQUE_KEY})
    if unknown:
        raise SettingsError(
            f"{_where(index, name)}: unknown setting(s) {', '.join(unknown)}; {name} takes "
            f"{', '.join(fields)}."
        )
    values: dict[str, Any] = {}
    where = _where(index, name)
    for key, value in data.items():
        if key == TECHNIQUE_KEY:
            continue
        default = fields[key].default
        if key == "width" and value is None:
            values[key] = None  # the parameter form of "not set"
        elif key == "width":
            values[key] = _number(where, key, value, float)
        elif key == "layers":
            if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
                raise SettingsError(
                    f"{where}: layers must be a list of layer names, got {value!r}."
                )
            values[key] = tuple(value)
        elif isinstance(default, bool) or isinstance(default, str):
            if not isinstance(value, str):
                raise SettingsError(f"{where}: {key} must be a string, got {value!r}.")
            values[key] = value
        else:
            values[key] = _number(where, key, value, type(default))
    return cls(**values)


def _check(index: int, technique: Technique) -> None:
    where = _where(index, technique.technique)
    if isinstance(technique, Quantize):
        if technique.mode not in QUANTIZE_MODES:
            raise SettingsError(
                f"{where}: mode must be one of {', '.join(repr(m) for m in QUANTIZE_MODES)}, got "
                f"{technique.mode!r} (dynamic: int8 weights; float16: float16 weights; int8: "
                "int8 weights and activations, calibrated on train examples)."
            )
        if not 1 <= technique.representative_examples <= 10_000:
            raise SettingsError(
                f"{where}: representative_examples must be in [1, 10000], got "
                f"{technique.representative_examples} (TFLite's guide suggests about 100-500)."
            )
        return
    if isinstance(technique, Distill):
        _check_distill(where, technique)
    if technique.epochs < 0 or technique.steps < 0:
        raise SettingsError(f"{where}: epochs and steps must be >= 0.")
    if technique.batch_size <= 0:
        raise SettingsError(f"{where}: batch_size must be positive, got {technique.batch_size}.")
    if not 0 < technique.learning_rate < 1:
        raise SettingsError(
            f"{where}: learning_rate must be in (0, 1), got {technique.learning_rate}; "
            "training wants a small one, e.g. 3e-3 (distill), 1e-3 (prune) or 1e-4 (cluster)."
        )
    if isinstance(technique, Distill) and technique.epochs == 0 and technique.steps == 0:
        raise SettingsError(
            f"{where}: the student learns from scratch, so it needs epochs >= 1 or steps >= 1 "
            "(e.g. epochs=30)."
        )
    if isinstance(technique, Prune):
        if not 0 < technique.target_sparsity < 1:
            raise SettingsError(
                f"{where}: target_sparsity must be in (0, 1), got {technique.target_sparsity}: "
                "it is the fraction of each pruned weight tensor set to zero, e.g. 0.8."
            )
        if technique.schedule not in SCHEDULES:
            raise SettingsError(
                f"{where}: schedule must be {POLYNOMIAL!r} (ramp up while fine-tuning) or "
                f"{CONSTANT!r} (the target from the first step), got {technique.schedule!r}."
            )
        if not 0 <= technique.initial_sparsity < technique.target_sparsity:
            raise SettingsError(
                f"{where}: initial_sparsity must be in [0, target_sparsity "
                f"{technique.target_sparsity}), got {technique.initial_sparsity}."
            )
        if technique.epochs == 0 and technique.steps == 0:
            raise SettingsError(
                f"{where}: pruning happens while fine-tuning, so it needs epochs >= 1 or "
                "steps >= 1."
            )
    if isinstance(technique, Cluster):
        if not 2 <= technique.number_of_clusters <= 256:
            raise SettingsError(
                f"{where}: number_of_clusters must be in [2, 256], got "
                f"{technique.number_of_clusters} (TFMOT's guide uses 8 to 32)."
            )
        if technique.centroid_init not in CENTROID_INITS:
            raise SettingsError(
                f"{where}: centroid_init must be one of "
                f"{', '.join(repr(c) for c in CENTROID_INITS)}, got {technique.centroid_init!r}."
            )


def _check_distill(where: str, technique: Distill) -> None:
    if not isinstance(technique.student, str):
        raise SettingsError(f"{where}: student must be a string, got {technique.student!r}.")
    if technique.student and not _FUNCTION_PATH.match(technique.student):
        raise SettingsError(
            f"{where}: student must be 'package.module:function' (a core_model_fn: (input "
            "width, number of classes, config) -> a tf_keras model ending in a softmax), got "
            f"{technique.student!r}; or leave it empty for the teacher's architecture narrowed "
            "by width."
        )
    if technique.student and technique.width is not None:
        raise SettingsError(
            f"{where}: give student or width, not both: width narrows the teacher's own "
            f"architecture, and {technique.student!r} builds its own."
        )
    if technique.width is not None and not 0 < technique.width < 1:
        raise SettingsError(
            f"{where}: width must be in (0, 1), got {technique.width}: it is the share of the "
            "teacher's units and filters the student keeps, e.g. 0.25 (a width of 1 or more "
            "would not be smaller)."
        )
    if not 1 <= technique.temperature <= 100:
        raise SettingsError(
            f"{where}: temperature must be in [1, 100], got {technique.temperature}: it softens "
            "the teacher's probabilities (1: as they are; Hinton et al. use 2 to 20)."
        )
    if not 0 <= technique.alpha <= 1:
        raise SettingsError(
            f"{where}: alpha must be in [0, 1], got {technique.alpha}: it is the weight of the "
            "hard labels, the teacher's softened predictions having 1 - alpha (e.g. 0.1)."
        )


def _check_order(techniques: Sequence[Technique]) -> None:
    names = [t.technique for t in techniques]
    for name in TECHNIQUES:
        if names.count(name) > 1:
            positions = [i for i, n in enumerate(names) if n == name]
            raise SettingsError(
                f"techniques {positions} all {name}: list each technique at most once "
                f"(got {' -> '.join(names)})."
            )
    if DISTILL in names and names[0] != DISTILL:
        raise SettingsError(
            f"distill must be the first technique (got {' -> '.join(names)}): the student is a "
            "new model trained from the teacher's predictions, so pruning, clustering or "
            "quantizing before it would be lost; distill first, then prune or quantize the "
            "student."
        )
    if QUANTIZE in names and names[-1] != QUANTIZE:
        raise SettingsError(
            f"quantize must be the last technique (got {' -> '.join(names)}): it converts the "
            "model to TFLite, which cannot be pruned, clustered or fine-tuned any more."
        )
    if PRUNE in names and CLUSTER in names and names.index(CLUSTER) < names.index(PRUNE):
        raise SettingsError(
            f"cluster before prune ({' -> '.join(names)}) would undo the clustering (pruning "
            "zeroes weights one by one); put prune first: clustering after it keeps the zeros."
        )


def parse_techniques(value: Any) -> list[Technique]:
    """Reads and validates a technique list.

    Args:
      value: a list of Distill/Prune/Cluster/Quantize objects or their dict form, or that list
        as a JSON string (the component's parameter).

    Returns:
      The techniques, in order.

    Raises:
      SettingsError: an unknown technique or setting, a value out of range, or an order that
        cannot work (a technique twice, distill not first, quantize not last, cluster before
        prune).
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as err:
            raise SettingsError(f"techniques is not valid JSON: {err}") from err
    if isinstance(value, (*_CLASSES.values(), Mapping)) or not isinstance(value, Sequence):
        raise SettingsError(
            f"techniques must be a list, e.g. [Prune(target_sparsity=0.8), Quantize('int8')], "
            f"got {value!r}."
        )
    if not value:
        raise SettingsError(
            "techniques is empty: list at least one of distill, prune, cluster, quantize, e.g. "
            "[Prune(target_sparsity=0.8), Quantize('int8')]."
        )
    techniques: list[Technique] = []
    for index, item in enumerate(value):
        if isinstance(item, tuple(_CLASSES.values())):
            technique = item
        elif isinstance(item, Mapping):
            technique = _from_dict(index, item)
        else:
            raise SettingsError(
                f"techniques[{index}] must be Distill(...), Prune(...), Cluster(...), Quantize(...) "
                "or a dict "
                f"with a 'technique' key, got {item!r}."
            )
        _check(index, technique)
        techniques.append(technique)
    _check_order(techniques)
    return techniques


def describe(techniques: Sequence[Technique]) -> str:
    """e.g. "prune 80% -> int8"."""
    return " -> ".join(t.label for t in techniques)


__all__ = [
    "CLUSTER",
    "DISTILL",
    "PRUNE",
    "QUANTIZE",
    "Cluster",
    "Distill",
    "Prune",
    "Quantize",
    "SettingsError",
    "Technique",
    "describe",
    "parse_techniques",
    "to_dict",
]
