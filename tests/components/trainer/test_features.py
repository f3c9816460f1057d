"""The serving signatures' lenient tf.Example decoding."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfrelay.components.trainer.features import Feature, Kind, decode_examples

FEATURES = [Feature("a", Kind.NUMERIC), Feature("b", Kind.CATEGORICAL), Feature("c", Kind.NUMERIC)]


def _example(**values) -> bytes:
    example = tf.train.Example()
    for name, value in values.items():
        feature = example.features.feature[name]
        if isinstance(value, str):
            feature.bytes_list.value.append(value.encode())
        elif isinstance(value, int):
            feature.int64_list.value.append(value)
        else:
            feature.float_list.value.append(value)
    return example.SerializeToString()


def test_numeric_columns_accept_ints_or_floats_and_missing_values_are_nan_or_empty():
    decoded = decode_examples(
        tf.constant(
            [_example(a=1, b="x", c=2.5), _example(a=2.5), _example(b="y"), _example(z=1.0)]
        ),
        FEATURES,
    )
    np.testing.assert_array_equal(decoded["a"].numpy(), [1.0, 2.5, np.nan, np.nan])
    assert decoded["b"].numpy().tolist() == [b"x", b"", b"y", b""]
    np.testing.assert_array_equal(decoded["c"].numpy(), [2.5, np.nan, np.nan, np.nan])


def test_a_context_prepended_as_tf_serving_does_merges_with_the_example_winning():
    context = _example(a=9.5, b="from-context")
    decoded = decode_examples(tf.constant([context + _example(a=3)]), FEATURES)
    assert decoded["a"].numpy().tolist() == [3.0]
    assert decoded["b"].numpy().tolist() == [b"from-context"]


def test_an_empty_batch_decodes_to_empty_columns():
    decoded = decode_examples(tf.constant([], tf.string), FEATURES)
    assert {name: value.shape for name, value in decoded.items()} == {
        "a": (0,),
        "b": (0,),
        "c": (0,),
    }


def test_the_graph_does_not_grow_with_the_number_of_columns():
    def nodes(count: int) -> int:
        features = [Feature(f"p{i}", Kind.NUMERIC) for i in range(count)]
        function = tf.function(lambda s: decode_examples(s, features))
        graph = function.get_concrete_function(tf.TensorSpec([None], tf.string)).graph
        return len(graph.as_graph_def().node)

    assert nodes(64) - nodes(2) < 64 * 5  # a few slicing ops per column, nothing per-column heavy
