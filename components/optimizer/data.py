"""The Examples the Optimizer reads: the train split (fine-tuning, int8 calibration) and the eval
split (accuracy, latency), parsed exactly as the Trainer parsed them.

The model's TabularSpec (features, stored dtypes, statistics, label vocabulary) says how: raw
features are what the serving signature takes; the Keras core reads them after the Trainer's
Preprocessor; labels become class ids through the label vocabulary.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfrelay.components.trainer import features
from tfrelay.components.trainer.export import TabularSpec
from tfrelay.components.trainer.features import Feature, Kind
from tfrelay.components.trainer.preprocessing import Preprocessor


def split_files(split_uri: str) -> list[str]:
    """The record files of one Examples split directory (local, s3:// or gs://)."""
    return sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))


def _label_feature(spec: TabularSpec, files: Sequence[str]) -> tuple[Feature, tf.DType]:
    stored = features.stored_dtypes(files, [spec.label_key]).get(spec.label_key)
    if stored is None:
        raise ValueError(
            f"The examples in {os.path.dirname(files[0]) if files else '(no files)'} have no "
            f"label {spec.label_key!r}: the Optimizer measures accuracy against it."
        )
    kind = Kind.CATEGORICAL if stored == tf.string else Kind.NUMERIC
    return Feature(spec.label_key, kind), stored


class _Parser:
    """Serialized examples -> (raw features, preprocessed float vector, class id or -1)."""

    def __init__(self, spec: TabularSpec, files: Sequence[str]) -> None:
        self.spec = spec
        self.label, label_dtype = _label_feature(spec, files)
        self.stored = {**spec.stored, self.label.name: label_dtype}
        self.preprocessor = Preprocessor(spec.features, spec.stats)
        self.classes = tf.constant(spec.label_vocabulary or [""], tf.string)

    def __call__(self, serialized: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
        parsed = features.parse_examples(serialized, [*self.spec.features, self.label], self.stored)
        target = parsed.pop(self.label.name)
        if self.label.kind is Kind.NUMERIC:
            # As the Trainer does: a numeric label's class name is its integer value.
            missing = tf.math.is_nan(target)
            target = tf.strings.as_string(tf.cast(tf.where(missing, 0.0, target), tf.int64))
            target = tf.where(missing, "", target)
        matches = tf.equal(target[:, None], self.classes[None, :])
        class_ids = tf.where(
            tf.reduce_any(matches, axis=1), tf.argmax(tf.cast(matches, tf.int32), axis=1), -1
        )
        return parsed, self.preprocessor(parsed), class_ids


@dataclasses.dataclass
class Split:
    """One split in memory.

    Attributes:
      raw: {feature: [n] array} as the serving signature takes them (float32, or bytes objects).
      x: [n, width] float32, the Keras core's input.
      y: [n] class ids (-1 for a label outside the vocabulary; such examples do not count).
      serialized: the examples as serialized tf.Examples.
    """

    raw: dict[str, np.ndarray]
    x: np.ndarray
    y: np.ndarray
    serialized: list[bytes]

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: slice | np.ndarray) -> Split:
        return Split(
            {k: v[rows] for k, v in self.raw.items()},
            self.x[rows],
            self.y[rows],
            list(np.asarray(self.serialized, dtype=object)[rows]),
        )


def _as_numpy(tensor: tf.Tensor) -> np.ndarray:
    array = tensor.numpy()
    return array.astype(object) if tensor.dtype == tf.string else array


def load_split(
    files: Sequence[str], spec: TabularSpec, limit: int | None = None, sample: bool = False
) -> Split:
    """Reads (up to `limit`) labelled examples of a split into memory.

    Args:
      files: the split's record files.
      spec: the model's TabularSpec.
      limit: read at most this many labelled examples.
      sample: draw them at random (seeded; from a 10,000-example shuffle buffer) rather than in
        file order, which may be sorted by class: an int8 calibration set must cover the value
        ranges of every class.

    Raises:
      ValueError: no files, or no example with a known label.
    """
    if not files:
        raise ValueError("The split has no record files.")
    parser = _Parser(spec, files)
    parts: list[tuple[dict, np.ndarray, np.ndarray, list[bytes]]] = []
    count = 0
    for batch in features.batched_examples(files, 256, shuffle=sample):
        raw, x, y = parser(batch)
        keep = y.numpy() >= 0
        serialized = [s for s, k in zip(batch.numpy().tolist(), keep, strict=True) if k]
        parts.append(
            (
                {k: _as_numpy(v)[keep] for k, v in raw.items()},
                x.numpy()[keep],
                y.numpy()[keep],
                serialized,
            )
        )
        count += int(keep.sum())
        if limit is not None and count >= limit:
            break
    if count == 0:
        raise ValueError(
            f"No example in {os.path.dirname(files[0])} has a label in the model's vocabulary "
            f"{spec.label_vocabulary}."
        )
    split = Split(
        {name: np.concatenate([p[0][name] for p in parts]) for name in parts[0][0]},
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        [s for p in parts for s in p[3]],
    )
    return split.take(slice(0, limit)) if limit is not None else split


@dataclasses.dataclass
class TrainingData:
    """The train split as a repeatable tf.data pipeline of (core input, class id) batches."""

    files: list[str]
    spec: TabularSpec
    examples: int

    def batches_per_epoch(self, batch_size: int) -> int:
        return max(1, math.ceil(self.examples / batch_size))

    def dataset(self, batch_size: int) -> tf.data.Dataset:
        parser = _Parser(self.spec, self.files)

        def to_training(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            _, x, y = parser(serialized)
            return x, y

        return (
            features.batched_examples(self.files, batch_size, shuffle=True)
            .map(to_training)
            .unbatch()
            .filter(lambda _, y: y >= 0)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )


def training_data(files: Sequence[str], spec: TabularSpec) -> TrainingData:
    """Counts the train split's labelled examples (one pass) for the fine-tuning schedule."""
    parser = _Parser(spec, files)
    examples = 0
    for batch in features.batched_examples(files, 512):
        examples += int(tf.reduce_sum(tf.cast(parser(batch)[2] >= 0, tf.int32)))
    if examples == 0:
        raise ValueError(f"The train split ({', '.join(files[:2])}...) has no labelled example.")
    return TrainingData(list(files), spec, examples)
