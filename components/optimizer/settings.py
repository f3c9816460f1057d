"""The Optimizer's techniques and their settings: what a user writes, how it travels as a TFX
parameter, and every check that can be made before a pipeline runs.

A pipeline lists techniques in the order they apply, as these dataclasses or as plain dicts:

```python
techniques = [Prune(target_sparsity=0.8, epochs=2), Quantize("int8")]
techniques = [{"technique": "prune", "target_sparsity": 0.8}, {"technique": "quantize", "mode": "int8"}]
```

The component parameter is the dict form as a JSON string, which ML Metadata, the local runners
and the Kubeflow V2 compiler all carry unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

PRUNE = "prune"
CLUSTER = "cluster"
QUANTIZE = "quantize"
TECHNIQUES = (PRUNE, CLUSTER, QUANTIZE)

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


Technique = Prune | Cluster | Quantize
_CLASSES: dict[str, type] = {PRUNE: Prune, CLUSTER: Cluster, QUANTIZE: Quantize}


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
        if key == "layers":
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
    if technique.epochs < 0 or technique.steps < 0:
        raise SettingsError(f"{where}: epochs and steps must be >= 0.")
    if technique.batch_size <= 0:
        raise SettingsError(f"{where}: batch_size must be positive, got {technique.batch_size}.")
    if not 0 < technique.learning_rate < 1:
        raise SettingsError(
            f"{where}: learning_rate must be in (0, 1), got {technique.learning_rate}; "
            "fine-tuning wants a small one, e.g. 1e-3 (prune) or 1e-4 (cluster)."
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


def _check_order(techniques: Sequence[Technique]) -> None:
    names = [t.technique for t in techniques]
    for name in TECHNIQUES:
        if names.count(name) > 1:
            positions = [i for i, n in enumerate(names) if n == name]
            raise SettingsError(
                f"techniques {positions} all {name}: list each technique at most once "
                f"(got {' -> '.join(names)})."
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
      value: a list of Prune/Cluster/Quantize objects or their dict form, or that list as a
        JSON string (the component's parameter).

    Returns:
      The techniques, in order.

    Raises:
      SettingsError: an unknown technique or setting, a value out of range, or an order that
        cannot work (a technique twice, quantize not last, cluster before prune).
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as err:
            raise SettingsError(f"techniques is not valid JSON: {err}") from err
    if isinstance(value, (Prune, Cluster, Quantize, Mapping)) or not isinstance(value, Sequence):
        raise SettingsError(
            f"techniques must be a list, e.g. [Prune(target_sparsity=0.8), Quantize('int8')], "
            f"got {value!r}."
        )
    if not value:
        raise SettingsError(
            "techniques is empty: list at least one of prune, cluster, quantize, e.g. "
            "[Prune(target_sparsity=0.8), Quantize('int8')]."
        )
    techniques: list[Technique] = []
    for index, item in enumerate(value):
        if isinstance(item, (Prune, Cluster, Quantize)):
            technique = item
        elif isinstance(item, Mapping):
            technique = _from_dict(index, item)
        else:
            raise SettingsError(
                f"techniques[{index}] must be Prune(...), Cluster(...), Quantize(...) or a dict "
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
    "PRUNE",
    "QUANTIZE",
    "Cluster",
    "Prune",
    "Quantize",
    "SettingsError",
    "Technique",
    "describe",
    "parse_techniques",
    "to_dict",
]
