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


def _first_value(values: tf.Tensor, counts: tf.Tensor, default: tf.Tensor) -> tf.Tensor:
    """The first of each row's repeated values ([n, max] padded, counts [n]) or `default`."""
    padded = tf.concat([values, tf.fill([tf.shape(values)[0], 1], default)], axis=1)
    return tf.where(counts > 0, padded[:, 0], default)


def _view_descriptors() -> bytes:
    """A FileDescriptorSet with tensorflow.Features and a wire-compatible view of Example whose
    `features` field is repeated.

    TF Serving merges a request's context into each example by concatenating serialized
    protos; protobuf parsing then merges the two `features` maps. decode_proto keeps only the
    last occurrence of a singular field, so we read Example through this view to see every
    occurrence and apply the merge ourselves (last entry per key wins).
    """
    from google.protobuf import descriptor_pb2
    from tensorflow.core.example import feature_pb2

    files = descriptor_pb2.FileDescriptorSet()
    feature_file = files.file.add()
    feature_pb2.DESCRIPTOR.CopyToProto(feature_file)
    view = files.file.add(
        name="tfrelay/example_view.proto",
        package="tfrelay",
        dependency=[feature_file.name],
        syntax="proto3",
    )
    message = view.message_type.add(name="RepeatedFeaturesExample")
    message.field.add(
        name="features",
        number=1,  # Example.features
        label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
        type_name=".tensorflow.Features",
    )
    return b"bytes://" + files.SerializeToString()


_REPEATED_FEATURES_EXAMPLE = "tfrelay.RepeatedFeaturesExample"
_VIEW_DESCRIPTORS = _view_descriptors()


def _decode(
    messages: tf.Tensor,
    message_type: str,
    fields: list[str],
    dtypes: list[tf.DType],
    descriptor_source: bytes = b"local://",
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """tf.io.decode_proto on a [n] batch, also when n == 0 (which the op itself rejects)."""
    padded = tf.concat([messages, tf.constant([""], tf.string)], axis=0)
    # Bytes, not str: a str attribute would be re-encoded as UTF-8 and corrupt the descriptors.
    counts, values = tf.io.decode_proto(
        padded, message_type, fields, dtypes, descriptor_source=descriptor_source
    )
    return counts[:-1], [v[:-1] for v in values]


def _first(messages: tf.Tensor, message_type: str, dtype: tf.DType, default) -> tf.Tensor:
    """The first `value` of each repeated-value message (FloatList, Int64List, BytesList)."""
    counts, (values,) = _decode(messages, message_type, ["value"], [dtype])
    return _first_value(values, counts[:, 0], tf.constant(default, dtype))


def decode_examples(serialized: tf.Tensor, features: Sequence[Feature]) -> dict[str, tf.Tensor]:
    """Decodes serialized tf.Examples leniently: a numeric feature may be an int64_list or a
    float_list, whatever the training data used.

    Clients of TF Serving's Classify/Regress APIs cannot know which columns were stored as
    integers (REST turns `40` into an int64 and `40.0` into a float), and `tf.io.parse_example`
    rejects the other type. This walks the Example protos with `tf.io.decode_proto` instead, for
    all columns at once, so the graph does not grow with the number of columns.

    Args:
      serialized: a [batch] string tensor of tf.Examples.
      features: the features to extract.

    Returns:
      {feature name: [batch] tensor}, float32 (missing: NaN) or string (missing: "").
    """
    batch = tf.shape(serialized)[0]
    names = tf.constant([f.name for f in features], tf.string)
    columns = len(features)
    # Every occurrence of Example.features, in wire order (see _view_descriptors).
    counts, (occurrences,) = _decode(
        serialized, _REPEATED_FEATURES_EXAMPLE, ["features"], [tf.string], _VIEW_DESCRIPTORS
    )
    occurrences = tf.RaggedTensor.from_tensor(occurrences, lengths=counts[:, 0])
    entry_counts, (entries,) = _decode(
        occurrences.flat_values, "tensorflow.Features", ["feature"], [tf.string]
    )
    entries = tf.RaggedTensor.from_tensor(entries, lengths=entry_counts[:, 0])
    example_of_entry = tf.gather(occurrences.value_rowids(), entries.value_rowids())
    _, (keys, values) = _decode(
        entries.flat_values,
        "tensorflow.Features.FeatureEntry",
        ["key", "value"],
        [tf.string, tf.string],
    )
    # Every (entry, column) pair whose key is a wanted column.
    hits = tf.where(tf.equal(keys[:, 0][:, None], names[None, :]))
    entry, column = hits[:, 0], hits[:, 1]
    cells = tf.gather(example_of_entry, entry) * columns + column
    # A key twice in one example (context + example, merged by concatenation) keeps its last
    # entry, as protobuf merging does; -1 marks cells no entry filled.
    last = tf.math.unsorted_segment_max(tf.range(tf.shape(entry)[0]), cells, batch * columns)
    filled = last >= 0
    chosen = tf.gather(values[:, 0], tf.gather(entry, tf.maximum(last, 0)))
    list_counts, (bytes_lists, float_lists, int64_lists) = _decode(
        chosen, "tensorflow.Feature", ["bytes_list", "float_list", "int64_list"], [tf.string] * 3
    )
    has_ints = list_counts[:, 2] > 0
    floats = _first(float_lists[:, 0], "tensorflow.FloatList", tf.float32, np.nan)
    ints = _first(int64_lists[:, 0], "tensorflow.Int64List", tf.int64, 0)
    strings = _first(bytes_lists[:, 0], "tensorflow.BytesList", tf.string, "")
    numbers = tf.where(filled, tf.where(has_ints, tf.cast(ints, tf.float32), floats), np.nan)
    texts = tf.where(filled, tf.where(has_ints, tf.strings.as_string(ints), strings), "")
    numbers = tf.reshape(numbers, [batch, columns])
    texts = tf.reshape(texts, [batch, columns])
    return {
        feature.name: numbers[:, index] if feature.kind is Kind.NUMERIC else texts[:, index]
        for index, feature in enumerate(features)
    }
