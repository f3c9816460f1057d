"""Feature preprocessing for the built-in tabular model: statistics from the training data, and
a `tf.Module` that turns raw features into the float vector the Keras core reads.

It uses plain TensorFlow ops with the statistics baked in as constants (no lookup tables), so the
whole serving function converts to TFLite with builtin ops, and the Optimizer can quantize it.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from tfrelay.components.trainer.features import Feature, Kind

# Categories rarer than this in the training data fall into "unknown" (all-zero one-hot).
MIN_CATEGORY_COUNT = 1
MAX_VOCABULARY = 1000


@dataclasses.dataclass
class FeatureStats:
    """What preprocessing needs to know about the training data.

    Attributes:
      means: numeric feature -> mean (missing values are imputed with it).
      stds: numeric feature -> standard deviation (1.0 when constant).
      vocabularies: categorical feature -> known values, most frequent first.
    """

    means: dict[str, float] = dataclasses.field(default_factory=dict)
    stds: dict[str, float] = dataclasses.field(default_factory=dict)
    vocabularies: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping) -> FeatureStats:
        return cls(
            dict(data["means"]),
            dict(data["stds"]),
            {k: list(v) for k, v in data["vocabularies"].items()},
        )


def compute_stats(batches, features: Sequence[Feature]) -> FeatureStats:
    """Streams parsed batches ({name: [batch] tensor}) once and computes FeatureStats."""
    sums = {f.name: 0.0 for f in features if f.kind is Kind.NUMERIC}
    squares = dict(sums)
    counts = dict.fromkeys(sums, 0)
    categories = {f.name: Counter() for f in features if f.kind is Kind.CATEGORICAL}
    for batch in batches:
        for name in sums:
            values = batch[name].numpy()
            values = values[~np.isnan(values)].astype(np.float64)
            sums[name] += float(values.sum())
            squares[name] += float((values**2).sum())
            counts[name] += int(values.size)
        for name, counter in categories.items():
            counter.update(v for v in batch[name].numpy().tolist() if v)
    stats = FeatureStats()
    for name in sums:
        n = max(counts[name], 1)
        mean = sums[name] / n
        variance = max(squares[name] / n - mean * mean, 0.0)
        stats.means[name] = mean
        stats.stds[name] = float(np.sqrt(variance)) or 1.0
    for name, counter in categories.items():
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
        stats.vocabularies[name] = [
            value.decode("utf-8")
            for value, count in ranked[:MAX_VOCABULARY]
            if count >= MIN_CATEGORY_COUNT
        ]
    return stats


class Preprocessor(tf.Module):
    """Raw features -> [batch, width] float32: impute, standardize, one-hot.

    Columns: every numeric feature (in feature order), then each categorical feature's one-hot
    block. Each numeric column is standardized on its own before the columns are stacked: int8
    quantization gives a stacked tensor one scale (TFLite's PACK shares quantization parameters),
    so raw columns of different magnitudes must not meet. Missing values are imputed after
    stacking, in one op: the mean standardizes to exactly 0.

    Args:
      features: the input features.
      stats: statistics of the training data.
    """

    def __init__(self, features: Sequence[Feature], stats: FeatureStats) -> None:
        super().__init__(name="preprocessor")
        self.features = list(features)
        self.stats = stats
        self._numeric = [f.name for f in self.features if f.kind is Kind.NUMERIC]
        self._categorical = [f.name for f in self.features if f.kind is Kind.CATEGORICAL]
        self._vocabularies = {
            n: tf.constant(stats.vocabularies[n], tf.string) for n in self._categorical
        }

    @property
    def width(self) -> int:
        return len(self._numeric) + sum(len(self.stats.vocabularies[n]) for n in self._categorical)

    def __call__(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        columns = []
        if self._numeric:
            standardized = tf.stack(
                [
                    (tf.cast(inputs[name], tf.float32) - self.stats.means[name])
                    * (1.0 / self.stats.stds[name])
                    for name in self._numeric
                ],
                axis=1,
            )
            columns.append(tf.where(tf.math.is_nan(standardized), 0.0, standardized))
        for name in self._categorical:
            # Comparing against the vocabulary (rather than a hash table) keeps this a
            # builtin-only TFLite graph; unknown values give an all-zero row.
            vocabulary = self._vocabularies[name]
            columns.append(
                tf.cast(tf.equal(inputs[name][:, None], vocabulary[None, :]), tf.float32)
            )
        return tf.concat(columns, axis=1)


def label_vocabulary(values: Sequence) -> list[str]:
    """Class names for a classification label: sorted numerically if numeric, else by name."""
    distinct = {v.decode("utf-8") if isinstance(v, bytes) else v for v in values}
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in distinct):
        return [str(int(v)) if float(v).is_integer() else str(v) for v in sorted(distinct)]
    return sorted(str(v) for v in distinct)


def dump_json(data: Mapping, path: str) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True))
