"""Which features a tabular model reads, and how to parse them from tf.Examples.

Feature kinds come from the Schema when the pipeline has one (SchemaGen), else from a sample of
the data. Every feature is parsed as a VarLenFeature and densified with a "missing" value (NaN
for numbers, "" for strings), so examples with absent features (empty CSV cells) parse, and the
same parsing runs at training time and inside the exported serving signatures.
"""

from __future__ import annotations

import dataclasses
import enum
import glob
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2

# Examples read to infer feature kinds when there is no Schema.
_SAMPLE_SIZE = 1000


class Kind(enum.Enum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


@dataclasses.dataclass(frozen=True)
class Feature:
    """One input feature.

    Attributes:
      name: the tf.Example feature key (also the serving input name).
      kind: numeric (float/int, fed as float32) or categorical (bytes, fed as string).
    """

    name: str
    kind: Kind

    @property
    def dtype(self) -> tf.DType:
        return tf.float32 if self.kind is Kind.NUMERIC else tf.string


def examples_files(patterns: Sequence[str]) -> list[str]:
    """Expands TFX file patterns (`.../Split-train/*`) into files."""
    files: list[str] = []
    for pattern in patterns:
        files.extend(sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern])
    return files


def _dataset(files: Sequence[str]) -> tf.data.TFRecordDataset:
    # ExampleGen writes GZIP-compressed TFRecords.
    compression = "GZIP" if all(f.endswith(".gz") for f in files) else ""
    return tf.data.TFRecordDataset(list(files), compression_type=compression)


def kinds_from_schema(schema_path: str) -> dict[str, Kind]:
    """{feature name: kind} from a SchemaGen schema file."""
    schema = schema_pb2.Schema()
    with tf.io.gfile.GFile(schema_path, "rb") as f:
        text = f.read()
    from google.protobuf import text_format

    text_format.Parse(text.decode("utf-8"), schema)
    kinds = {}
    for feature in schema.feature:
        if feature.type in (schema_pb2.FLOAT, schema_pb2.INT):
            kinds[feature.name] = Kind.NUMERIC
        elif feature.type == schema_pb2.BYTES:
            kinds[feature.name] = Kind.CATEGORICAL
    return kinds


def kinds_from_data(files: Sequence[str]) -> dict[str, Kind]:
    """{feature name: kind} from the first examples of the data."""
    kinds: dict[str, Kind] = {}
    for record in _dataset(files).take(_SAMPLE_SIZE):
        example = tf.train.Example.FromString(record.numpy())
        for name, value in example.features.feature.items():
            which = value.WhichOneof("kind")
            if which in ("float_list", "int64_list"):
                kinds.setdefault(name, Kind.NUMERIC)
            elif which == "bytes_list":
                kinds[name] = Kind.CATEGORICAL
    return kinds


def select_features(
    kinds: Mapping[str, Kind], label_key: str, feature_keys: Sequence[str] | None
) -> list[Feature]:
    """The model's input features, in a stable order.

    Args:
      kinds: every feature's kind.
      label_key: excluded from the inputs.
      feature_keys: the features to use; all but the label when empty.

    Returns:
      The features.

    Raises:
      ValueError: a requested feature is not in the data, or the label is missing.
    """
    if label_key not in kinds:
        raise ValueError(
            f"label_key {label_key!r} is not a feature of the examples (features: "
            f"{', '.join(sorted(kinds))})"
        )
    names = list(feature_keys) if feature_keys else sorted(k for k in kinds if k != label_key)
    unknown = [n for n in names if n not in kinds]
    if unknown:
        raise ValueError(
            f"feature_keys {unknown} are not features of the examples (features: "
            f"{', '.join(sorted(kinds))})"
        )
    return [Feature(name, kinds[name]) for name in names]


def parse_examples(
    serialized: tf.Tensor, features: Sequence[Feature], stored: Mapping[str, tf.DType]
) -> dict[str, tf.Tensor]:
    """Parses serialized tf.Examples into dense [batch] tensors (missing -> NaN or "").

    Args:
      serialized: a [batch] string tensor.
      features: the features to parse.
      stored: the dtype each numeric feature is stored with (tf.float32 or tf.int64).

    Returns:
      {feature name: [batch] tensor} (float32 or string).
    """
    specs = {
        f.name: tf.io.VarLenFeature(
            stored.get(f.name, tf.float32) if f.kind is Kind.NUMERIC else tf.string
        )
        for f in features
    }
    parsed = tf.io.parse_example(serialized, specs)
    dense = {}
    for feature in features:
        sparse = parsed[feature.name]
        if feature.kind is Kind.NUMERIC:
            sparse = tf.sparse.map_values(tf.cast, sparse, tf.float32)
            default = tf.constant(np.nan, tf.float32)
        else:
            default = tf.constant("", tf.string)
        # Keep the first value per example: the built-in model reads scalar features.
        values = tf.sparse.to_dense(sparse, default_value=default)
        values = tf.concat([values, tf.fill([tf.shape(values)[0], 1], default)], axis=1)
        dense[feature.name] = values[:, 0]
    return dense


def stored_dtypes(files: Sequence[str], names: Sequence[str]) -> dict[str, tf.DType]:
    """The dtype each feature is stored with in the examples (int64 or float32 or string)."""
    stored: dict[str, tf.DType] = {}
    wanted = set(names)
    for record in _dataset(files).take(_SAMPLE_SIZE):
        example = tf.train.Example.FromString(record.numpy())
        for name in wanted - set(stored):
            value = example.features.feature.get(name)
            if value is None:
                continue
            which = value.WhichOneof("kind")
            if which == "int64_list":
                stored[name] = tf.int64
            elif which == "float_list":
                stored[name] = tf.float32
            elif which == "bytes_list":
                stored[name] = tf.string
        if len(stored) == len(wanted):
            break
    return stored


def batched_examples(
    files: Sequence[str], batch_size: int, shuffle: bool = False
) -> tf.data.Dataset:
    """Serialized examples in batches."""
    dataset = _dataset(files)
    if shuffle:
        dataset = dataset.shuffle(10_000, seed=42, reshuffle_each_iteration=True)
    return dataset.batch(batch_size)
