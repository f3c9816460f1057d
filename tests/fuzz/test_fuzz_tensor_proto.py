"""Fuzz target: request TensorProtos through `proto_to_ndarray`, the decoder Predict uses.

Structured protos (any dtype number, shapes with negative, huge and too many dimensions, any
typed fields, tensor_content of any length) must give either TF Serving's INVALID_ARGUMENT
"tensor parsing error: x" or an array equal to what TensorFlow's C++ `Tensor::FromProto` reads
(`tf.io.parse_tensor`); never another exception, never an allocation past what the proto carries
plus the fill limit. Valid protos made by `tf.make_tensor_proto` must read back as
`tf.make_ndarray` reads them.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import tensorflow as tf
from fuzz import harness
from fuzz.strategies import DTYPES, tensor_protos
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow.core.framework import tensor_pb2, types_pb2

from tfrelay.serving.encoding import wire
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.grpc.tensors import MAX_FILL_BYTES, proto_to_ndarray

NAME = "tensor_proto"
# What the decoder may allocate beyond the padding it is allowed: a few copies of what the proto
# carries (values as a list, an array, its cast) and a little fixed overhead.
CARRIED_COPIES = 8
FIXED_BYTES = 1 << 20
# The oracle allocates what the shape claims: ask it only about small tensors.
ORACLE_MAX_ELEMENTS = 1 << 16


def tensorflow_reads(proto: tensor_pb2.TensorProto):
    """(True, array) as TensorFlow's C++ reads it, (False, None) if it rejects, None if unasked."""
    dims = [d.size for d in proto.tensor_shape.dim]
    if len(dims) > 254 or any(d < 0 for d in dims):
        return False, None
    count = int(np.prod(dims, dtype=object)) if dims else 1
    if count > ORACLE_MAX_ELEMENTS or proto.dtype not in DTYPES or len(dims) > 32:
        return None  # (numpy holds at most 32 dimensions: neither reader can answer)
    try:
        value = tf.io.parse_tensor(proto.SerializeToString(), tf.dtypes.as_dtype(proto.dtype))
    except tf.errors.InvalidArgumentError:
        return False, None
    try:
        value = value.numpy()
    except (tf.errors.InvalidArgumentError, ValueError):
        return None  # numpy cannot hold it ([0, 2^62] floats): neither reader can answer
    return True, np.array(value, dtype=object) if isinstance(value, bytes) else value


def decode_bounded(proto: tensor_pb2.TensorProto):
    """proto_to_ndarray's result (array or ServingError), and the peak bytes it allocated."""
    tracemalloc.start()
    try:
        try:
            result = proto_to_ndarray(proto, "x")
        except ServingError as err:
            result = err
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@given(tensor_protos())
@harness.counted(NAME)
def check_structured_proto(proto: tensor_pb2.TensorProto) -> None:
    result, peak = decode_bounded(proto)
    assert peak <= CARRIED_COPIES * proto.ByteSize() + MAX_FILL_BYTES + FIXED_BYTES, peak
    oracle = tensorflow_reads(proto)
    if isinstance(result, ServingError):
        assert result.code == Code.INVALID_ARGUMENT
        assert result.message.startswith("tensor parsing error: x"), result.message
        if oracle is not None and oracle[0]:
            # TensorFlow reads it; only the documented narrower cases may refuse.
            assert "padding the rest" in result.message or proto.dtype not in DTYPES, result
        return
    assert isinstance(result, np.ndarray)
    assert result.shape == tuple(d.size for d in proto.tensor_shape.dim)
    if oracle is not None:
        accepted, expected = oracle
        assert accepted, "tfrelay read a tensor TensorFlow rejects"
        assert result.shape == expected.shape and result.dtype.kind == expected.dtype.kind
        if result.size:  # (numpy cannot compare empty arrays with a 2^63-1 dimension)
            np.testing.assert_array_equal(result, expected)


NUMPY_DTYPES = st.sampled_from(
    [np.float32, np.float64, np.int32, np.int64, np.int8, np.uint8, np.int16, np.uint16,
     np.bool_, np.float16, np.complex64, np.complex128, np.uint32, np.uint64]
)  # fmt: skip


@st.composite
def made_protos(draw) -> tuple[np.ndarray, tensor_pb2.TensorProto]:
    """An array and tf.make_tensor_proto's proto of it (content, typed fields or a broadcast)."""
    array = draw(hnp.arrays(NUMPY_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)))
    how = draw(st.sampled_from(["array", "scalar-broadcast"]))
    if how == "scalar-broadcast" and array.size:
        array = np.full(array.shape, array.reshape(-1)[0], dtype=array.dtype)
        proto = tf.make_tensor_proto(array.reshape(-1)[0], shape=array.shape)
    else:
        proto = tf.make_tensor_proto(array)
    return array, tensor_pb2.TensorProto.FromString(proto.SerializeToString())


@given(made_protos())
@harness.counted(NAME)
def check_made_proto(made) -> None:
    array, proto = made
    expected = tf.make_ndarray(proto)
    actual = proto_to_ndarray(proto, "x")
    assert actual.dtype == expected.dtype and actual.shape == expected.shape == array.shape
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(actual, array)


@given(st.lists(st.binary(max_size=12), max_size=6), st.integers(0, 8))
@harness.counted(NAME)
def check_string_list_content(strings: list[bytes], claimed: int) -> None:
    # DT_STRING tensor_content is TensorFlow's varint-prefixed string list.
    content = b"".join(wire.varint(len(s)) for s in strings) + b"".join(strings)
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_content=content)
    proto.tensor_shape.dim.add(size=claimed)
    result, _ = decode_bounded(proto)
    accepted, expected = tensorflow_reads(proto)
    if isinstance(result, ServingError):
        assert not accepted and result.code == Code.INVALID_ARGUMENT
    else:
        assert accepted
        np.testing.assert_array_equal(result, expected)


def test_structured_tensor_protos_are_read_as_tensorflow_reads_them():
    harness.run(NAME, check_structured_proto, share=0.6)


def test_made_tensor_protos_read_back_as_tf_make_ndarray():
    harness.run(NAME, check_made_proto, share=0.3)


def test_string_list_tensor_content_is_read_as_tensorflow_reads_it():
    harness.run(NAME, check_string_list_content, share=0.1)
