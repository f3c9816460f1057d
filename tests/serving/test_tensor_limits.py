"""Request TensorProtos: TensorFlow's `Tensor::FromProto` rules, and every client-claimed count
checked before anything is allocated (issue 12).

TensorFlow's own C++ reader is the oracle: `tf.io.parse_tensor` runs `Tensor::FromProto` on the
serialized proto, so a tensor tfrelay accepts must equal what TensorFlow (and TF Serving) reads,
and one TensorFlow rejects must be TF Serving's INVALID_ARGUMENT "tensor parsing error: <alias>".
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import input_pb2

from support.tensor_protos import claimed_tensor
from tfrelay.serving.api import classify_regress, predict
from tfrelay.serving.errors import EXCERPT_CHARS, Code, ServingError
from tfrelay.serving.grpc.tensors import MAX_FILL_BYTES, proto_to_ndarray
from tfrelay.serving.servables.base import Signature, TensorSpec

# Any decode that is refused must have allocated no more than this (the 2^25-element request
# of issue 12 allocated ~600 MB).
REFUSED_PEAK_BYTES = 1 << 20


def tensor(dtype: int, dims: list[int], **fields) -> tensor_pb2.TensorProto:
    """A TensorProto with `dims` and the given repeated fields or tensor_content."""
    return claimed_tensor(dtype, dims, **fields)


def tensorflow_reads(proto: tensor_pb2.TensorProto) -> np.ndarray | None:
    """What TensorFlow's C++ `Tensor::FromProto` reads, or None when it rejects the proto."""
    try:
        value = tf.io.parse_tensor(proto.SerializeToString(), tf.dtypes.as_dtype(proto.dtype))
    except tf.errors.InvalidArgumentError:
        return None
    value = value.numpy()
    return np.array(value, dtype=object) if isinstance(value, bytes) else value  # a scalar string


def refused(proto: tensor_pb2.TensorProto, **kwargs) -> tuple[ServingError, int]:
    """Decodes a proto that must be refused: (the error, peak bytes allocated meanwhile)."""
    tracemalloc.start()
    try:
        with pytest.raises(ServingError) as caught:
            proto_to_ndarray(proto, "x", **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == Code.INVALID_ARGUMENT
    return caught.value, peak


@pytest.mark.parametrize(
    "dims",
    [[2**25], [2**40], [1 << 20, 1 << 20], [2**31, 2**31, 4]],
    ids=["2^25", "2^40", "2^40-in-two-dims", "2^64-overflows-uint64"],
)
def test_claimed_shape_past_the_fill_limit_is_refused_before_allocating(dims):
    error, peak = refused(tensor(types_pb2.DT_FLOAT, dims, float_val=[1.0]))
    assert error.message.startswith("tensor parsing error: x")
    assert peak < REFUSED_PEAK_BYTES


def test_fill_limit_message_names_the_shape_the_values_and_the_limit():
    error, _ = refused(tensor(types_pb2.DT_FLOAT, [2**25], float_val=[1.0]))
    assert error.message == (
        "tensor parsing error: x: shape [33554432] holds 33554432 elements and the request "
        f"carries 1; padding the rest would take {(2**25 - 1) * 4} bytes, over the limit of "
        f"{MAX_FILL_BYTES}"
    )


def test_the_shape_quoted_in_a_message_is_an_excerpt():
    error, _ = refused(tensor(types_pb2.DT_FLOAT, [4] * 20, float_val=[1.0]))
    assert "shape [4,4,4,4,4,4,4,4,...] holds" in error.message


@pytest.mark.parametrize(
    "dims",
    [[-1], [3, -5], [1] * 255, [2**62, 4], [2**32, 2**32, 0]],
    ids=["negative", "negative-inner", "255-dims", "past-int64", "overflow-before-zero"],
)
def test_shapes_tensorflow_rejects_are_tf_servings_parsing_error(dims):
    proto = tensor(types_pb2.DT_FLOAT, dims)
    assert tensorflow_reads(proto) is None
    error, peak = refused(proto)
    assert error.message == "tensor parsing error: x"
    assert peak < REFUSED_PEAK_BYTES


@pytest.mark.parametrize("length", [0, 7, 9, 4 * 2**20])
def test_tensor_content_of_another_length_than_the_shape_is_refused(length):
    proto = tensor(types_pb2.DT_FLOAT, [2], tensor_content=b"\0" * length)
    if length:  # empty content means "read the typed field" (zeros here)
        assert tensorflow_reads(proto) is None
        error, _ = refused(proto)
        assert error.message == "tensor parsing error: x"
    else:
        np.testing.assert_array_equal(proto_to_ndarray(proto, "x"), [0.0, 0.0])


@pytest.mark.parametrize("content", [b"\x02", b"\x00\xff", b"\x01\x00\x80"])
def test_bool_tensor_content_other_than_0_and_1_is_refused_as_tensorflow_does(content):
    # Found by tests/fuzz (a scalar bool with content b"\x02" was read as True).
    proto = tensor(types_pb2.DT_BOOL, [len(content)], tensor_content=content)
    assert tensorflow_reads(proto) is None
    error, _ = refused(proto)
    assert error.message == "tensor parsing error: x"
    valid = tensor(types_pb2.DT_BOOL, [2], tensor_content=b"\x01\x00")
    np.testing.assert_array_equal(proto_to_ndarray(valid, "x"), [True, False])


def test_tensor_content_claiming_huge_shape_is_refused_before_allocating():
    # 2^40 float32 elements claimed, 8 bytes present.
    error, peak = refused(tensor(types_pb2.DT_FLOAT, [2**40], tensor_content=b"\0" * 8))
    assert error.message == "tensor parsing error: x"
    assert peak < REFUSED_PEAK_BYTES


NUMERIC_FIELDS = [
    (types_pb2.DT_FLOAT, "float_val", [1.5, -2.0, 3.25]),
    (types_pb2.DT_DOUBLE, "double_val", [1.5, -2.0, 3.25]),
    (types_pb2.DT_INT32, "int_val", [1, -2, 3]),
    (types_pb2.DT_INT64, "int64_val", [1, -(2**40), 3]),
    (types_pb2.DT_UINT32, "uint32_val", [1, 2**32 - 1, 3]),
    (types_pb2.DT_UINT64, "uint64_val", [1, 2**64 - 1, 3]),
    (types_pb2.DT_BOOL, "bool_val", [True, False, True]),
    (types_pb2.DT_INT8, "int_val", [1, 300, -200]),  # int_val wraps to int8, as C++ casts
    (types_pb2.DT_UINT8, "int_val", [1, 255, 256]),
    (types_pb2.DT_INT16, "int_val", [1, 40000, -3]),
    (types_pb2.DT_UINT16, "int_val", [1, 65535, 70000]),
    (types_pb2.DT_HALF, "half_val", [15360, 70000, 1]),
    (types_pb2.DT_COMPLEX64, "scomplex_val", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
    (types_pb2.DT_COMPLEX128, "dcomplex_val", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    (types_pb2.DT_STRING, "string_val", [b"a", b"", b"\xff\x00"]),
]


@pytest.mark.parametrize("dtype, field, values", NUMERIC_FIELDS)
@pytest.mark.parametrize("sent", [0, 1, 2, 3], ids=lambda n: f"{n}-values")
@pytest.mark.parametrize("dims", [[3], [1, 3], [2, 2], [], [0, 4]], ids=str)
def test_typed_fields_read_as_tensorflow_reads_them(dtype, field, values, sent, dims):
    # Fewer values than the shape: padded with the last one; none: zeros; more: the first ones.
    per_element = 2 if field in ("scomplex_val", "dcomplex_val") else 1
    proto = tensor(dtype, dims, **{field: values[: sent * per_element + (sent == 3)]})
    expected = tensorflow_reads(proto)
    assert expected is not None
    actual = proto_to_ndarray(proto, "x")
    assert actual.shape == expected.shape
    assert actual.dtype == (object if dtype == types_pb2.DT_STRING else expected.dtype)
    np.testing.assert_array_equal(actual, expected)


def test_packed_floats_past_the_packed_read_threshold_are_read_exactly():
    values = np.linspace(-1, 1, 1000, dtype=np.float32)
    proto = tensor_pb2.TensorProto.FromString(
        tf.make_tensor_proto(values.tolist(), dtype=tf.float32).SerializeToString()
    )
    np.testing.assert_array_equal(proto_to_ndarray(proto, "x"), values)


def test_padding_within_the_limit_is_accepted():
    dims = [1024, 1024]  # 4 MiB of float32 padding, as tf.make_tensor_proto(0.0, shape=dims)
    proto = tensor_pb2.TensorProto.FromString(
        tf.make_tensor_proto(0.5, shape=dims, dtype=tf.float32).SerializeToString()
    )
    array = proto_to_ndarray(proto, "x")
    assert array.shape == (1024, 1024) and float(array[-1, -1]) == 0.5


def test_max_fill_bytes_is_the_bound():
    proto = tensor(types_pb2.DT_INT64, [100])
    assert proto_to_ndarray(proto, "x", max_fill_bytes=800).shape == (100,)
    refused(proto, max_fill_bytes=799)


def test_string_padding_counts_the_bytes_of_the_copied_string():
    # One 1 MiB string broadcast to 1,000 elements is 1 GiB once TensorFlow copies it.
    error, peak = refused(tensor(types_pb2.DT_STRING, [1000], string_val=[b"s" * (1 << 20)]))
    assert "padding the rest would take" in error.message
    assert peak < REFUSED_PEAK_BYTES + (1 << 20)


def test_empty_strings_claimed_by_shape_alone_are_bounded():
    error, peak = refused(tensor(types_pb2.DT_STRING, [2**40]))
    assert peak < REFUSED_PEAK_BYTES


@pytest.mark.parametrize(
    "content, count",
    [
        (b"\x01\x02abc", 2),
        (b"\x00\x00", 2),
        (b"\x03abc", 1),
        (b"\x80\x01" + b"z" * 128, 1),  # a two-byte length
    ],
)
def test_string_tensor_content_is_tensorflows_string_list(content, count):
    proto = tensor(types_pb2.DT_STRING, [count], tensor_content=content)
    np.testing.assert_array_equal(proto_to_ndarray(proto, "x"), tensorflow_reads(proto))


@pytest.mark.parametrize(
    "content, count",
    [
        (b"\x01\x02abcd", 2),  # a byte too many
        (b"\x01\x02ab", 2),  # a byte short
        (b"\x05ab", 1),
        (b"\xff\xff\xff\xff\xff\x01", 1),  # a length past 5 varint bytes
        (b"\x00" * 8, 2**40),  # more strings claimed than bytes present
    ],
)
def test_string_tensor_content_that_does_not_hold_the_shape_is_refused(content, count):
    proto = tensor(types_pb2.DT_STRING, [count], tensor_content=content)
    if count < 100:
        assert tensorflow_reads(proto) is None
    error, peak = refused(proto)
    assert error.message == "tensor parsing error: x"
    assert peak < REFUSED_PEAK_BYTES


@pytest.mark.parametrize(
    "dtype", [types_pb2.DT_INVALID, types_pb2.DT_RESOURCE, types_pb2.DT_FLOAT_REF, 9999]
)
def test_dtypes_without_a_reader_are_a_parsing_error(dtype):
    error, _ = refused(tensor(dtype, [2], int_val=[1, 2]))
    assert error.message == "tensor parsing error: x"


def test_bfloat16_broadcast_is_bounded_too():
    error, peak = refused(tensor(types_pb2.DT_BFLOAT16, [2**30], half_val=[16256]))
    assert peak < REFUSED_PEAK_BYTES
    small = proto_to_ndarray(tensor(types_pb2.DT_BFLOAT16, [3], half_val=[16256]), "x")
    np.testing.assert_array_equal(small.astype(np.float32), [1.0, 1.0, 1.0])


def test_no_elements_means_nothing_is_read():
    # TensorFlow neither checks the content nor the values of an empty tensor.
    proto = tensor(types_pb2.DT_FLOAT, [0, 3], tensor_content=b"abc", float_val=[1.0])
    assert tensorflow_reads(proto).shape == (0, 3)
    assert proto_to_ndarray(proto, "x").shape == (0, 3)


def test_more_dimensions_than_numpy_holds_are_refused_with_the_reason():
    # Found by tests/fuzz: 33 to 254 dimensions are valid for TensorFlow and answered INTERNAL.
    error, _ = refused(tensor(types_pb2.DT_FLOAT, [1] * 33, float_val=[1.0]))
    assert error.message == "tensor parsing error: x: 33 dimensions, more than the 32 supported"


def test_empty_shape_numpy_cannot_represent_is_a_parsing_error():
    error, _ = refused(tensor(types_pb2.DT_FLOAT, [2**31, 2**31, 0]))
    assert error.message == "tensor parsing error: x"


# --- tf.Example inputs and the messages that quote what a client sent --------------------------


def test_context_copied_into_many_examples_is_refused_before_copying():
    request_input = input_pb2.Input()
    with_context = request_input.example_list_with_context
    with_context.context.features.feature["f"].bytes_list.value.append(b"c" * (1 << 20))
    for _ in range(100):
        with_context.examples.add()
    tracemalloc.start()
    try:
        with pytest.raises(ServingError) as caught:
            classify_regress.serialized_examples(request_input, max_context_copy_bytes=50 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.code == Code.INVALID_ARGUMENT
    size = len(with_context.context.SerializeToString())
    assert caught.value.message == (
        f"Input is too large: its {size}-byte context copied into each of its 100 examples "
        f"would take {size * 100} bytes, over the limit of {50 << 20}"
    )
    assert peak < 4 << 20


def test_context_copies_within_the_limit_are_merged_into_each_example():
    request_input = input_pb2.Input()
    with_context = request_input.example_list_with_context
    with_context.context.features.feature["f"].int64_list.value.append(7)
    with_context.examples.add().features.feature["g"].int64_list.value.append(1)
    (example,) = classify_regress.serialized_examples(request_input)
    parsed = tf.train.Example.FromString(example)
    assert set(parsed.features.feature) == {"f", "g"}


def _signature() -> Signature:
    spec = TensorSpec(tensor_name="x:0", dtype=types_pb2.DT_FLOAT, shape=(-1,))
    return Signature(
        name="serving_default",
        method_name="tensorflow/serving/predict",
        inputs={"x": spec},
        outputs={"y": spec},
    )


def test_input_mismatch_message_quotes_an_excerpt_of_the_sent_aliases():
    sent = {f"{i:05d}" + "a" * 1000: None for i in range(1000)}
    with pytest.raises(ServingError) as caught:
        predict.check_inputs(_signature(), sent)
    message = caught.value.message
    assert message.startswith("input size does not match signature: 1000!=1 len({00000aaa")
    assert "Missing but required: {x}." in message
    assert len(message) < 4 * EXCERPT_CHARS + 200


def test_input_mismatch_message_is_tf_servings_for_short_aliases():
    with pytest.raises(ServingError) as caught:
        predict.check_inputs(_signature(), {"x": None, "z": None})
    assert caught.value.message == (
        "input size does not match signature: 2!=1 len({x,z}) != len({x}). Sent extra: {z}. "
        "Missing but required: {}."
    )


def test_unknown_output_alias_is_quoted_as_an_excerpt():
    with pytest.raises(ServingError) as caught:
        predict.output_keys(_signature(), ["z" * 100_000])
    assert len(caught.value.message) < 2 * EXCERPT_CHARS + 100
    assert caught.value.message.endswith("... Outputs expected to be in the set {y}.")
