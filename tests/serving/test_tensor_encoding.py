"""The one TensorProto encoder (`serving/encoding/wire.py`, issue 15): for every dtype, shape and both
serialization options, its bytes parse to exactly the message TF Serving's rules and the protobuf
API build (`support.tensor_protos.as_tf_serving_builds`), and TensorFlow reads them back as the
array that was sent."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import predict_pb2

from support.tensor_protos import as_tf_serving_builds
from tfrelay.serving.encoding import wire
from tfrelay.serving.errors import Code, ServingError

EVERY_NUMERIC_DTYPE = [
    np.float32, np.float64, np.int32, np.int16, np.int8, np.uint8, np.uint16, np.int64,
    np.uint32, np.uint64, np.bool_, np.float16, np.complex64, np.complex128,
]  # fmt: skip


def _expected_response(arrays: dict[str, np.ndarray], tensor_content: bool):
    expected = predict_pb2.PredictResponse()
    expected.model_spec.name = "m"
    expected.model_spec.version.value = 7
    expected.model_spec.signature_name = "serving_default"
    for key, array in arrays.items():
        as_tf_serving_builds(array, tensor_content, out=expected.outputs[key])
    return expected


def _tensorflow_reads(array: np.ndarray) -> np.ndarray:
    return np.char.encode(array) if array.dtype.kind == "U" else array


@pytest.mark.parametrize(
    "array",
    [
        np.array([2.5, 3.0, 4.5], dtype=np.float32),
        np.arange(12, dtype=np.float64).reshape(3, 4),
        np.array([[1, -2], [3, 2**40]], dtype=np.int64),
        np.array([1, 2, 3], dtype=np.int32),
        np.array([True, False]),
        np.array([b"a", b"\xffb"], dtype=object),
        np.array([1.5, 2.5], dtype=np.float16),
        np.float32(7.0),
        np.zeros((0, 3), dtype=np.float32),
        np.array([[1.0], [2.0]], dtype=">f4"),
        np.array([-7, 2**31 - 1], dtype=np.int32),
        np.array([1, 255], dtype=np.uint8),
        np.array(["Adélie", "Gentoo"]),
        np.arange(300, dtype=np.int64),
        np.arange(-128, 128, dtype=np.int8),
        np.array([-1, 0, 2**15 - 1], dtype=np.int16),
        np.array([0, 2**32 - 1], dtype=np.uint32),
        np.array([0, 2**64 - 1, 2**63], dtype=np.uint64),
        np.array([1 + 2j, -3.5j], dtype=np.complex64),
        np.array([[1 + 2j], [3 - 4j]], dtype=np.complex128),
        np.linspace(-1e4, 1e4, 200).astype(np.float16),
        np.array([[-(2**63), 2**63 - 1]] * 40, dtype=np.int64),
        np.array([1, -2, 3], dtype=">i8"),
        np.array([1.5, -2.25], dtype=">f2"),
        np.array([1 + 2j], dtype=">c8"),
    ],
    ids=[
        "float", "double-2d", "int64", "int32", "bool", "string", "half", "scalar", "empty",
        "be", "negative-int32", "uint8", "unicode", "long-int64", "long-int8", "int16",
        "uint32", "uint64", "complex64", "complex128", "long-half", "int64-extremes",
        "be-int64", "be-half", "be-complex64",
    ],
)  # fmt: skip
@pytest.mark.parametrize("tensor_content", [False, True], ids=["typed", "tensor_content"])
def test_wire_predict_response_is_the_message_the_protobuf_api_builds(array, tensor_content):
    arrays = {"y": array, "z": array}
    data = wire.predict_response("m", 7, "serving_default", arrays, ["y", "z"], tensor_content)
    parsed = predict_pb2.PredictResponse.FromString(data)
    assert parsed == _expected_response(arrays, tensor_content)
    for key in ("y", "z"):
        np.testing.assert_array_equal(
            tf.make_ndarray(parsed.outputs[key]), _tensorflow_reads(array)
        )


@settings(max_examples=300, deadline=None)
@given(
    array=hnp.arrays(
        dtype=st.sampled_from(EVERY_NUMERIC_DTYPE).map(np.dtype),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=90),
    ),
    tensor_content=st.booleans(),
)
def test_every_numeric_array_encodes_to_what_tensorflow_reads_back(array, tensor_content):
    # Shapes up to 90 x 90 x 90 cross the vectorized varint path's threshold in both directions.
    data = wire.tensor_bytes(array, tensor_content)
    expected = as_tf_serving_builds(array, tensor_content, out=tensor_pb2.TensorProto())
    if not (array.dtype.kind in "fc" and np.isnan(array).any()):
        # Byte for byte (a TensorProto has no map, so protobuf's order is the field order).
        # NaN is left out: protobuf 3.20's message path may rewrite a NaN's payload bits.
        assert data == expected.SerializeToString()
    proto = tensor_pb2.TensorProto.FromString(data)
    read = tf.make_ndarray(proto)
    assert read.dtype == array.dtype and read.shape == array.shape
    np.testing.assert_array_equal(read, array)


@given(st.lists(st.integers(-(2**63), 2**64 - 1), max_size=200))
def test_varints_are_protobufs_varints(values):
    words = np.array([v % 2**64 for v in values], dtype=np.uint64)
    assert wire.varints(words) == b"".join(wire.varint(v) for v in values)


def test_tensor_content_matches_what_tensorflow_itself_writes():
    # tf.make_tensor_proto writes tensor_content for numeric numpy arrays: an independent check
    # of the byte order and dtype numbers for the common dtypes.
    for dtype in (np.float32, np.float64, np.int32, np.int64, np.uint8, np.int16):
        array = np.arange(6, dtype=dtype).reshape(2, 3)
        ours = tensor_pb2.TensorProto.FromString(wire.tensor_bytes(array, True))
        assert ours == tf.make_tensor_proto(array), dtype


def test_a_dtype_tensorflow_cannot_hold_is_an_internal_error():
    with pytest.raises(ServingError) as error:
        wire.tensor_bytes(np.array(["2026-12-01"], dtype="datetime64[D]"))
    assert error.value.code == Code.INTERNAL
    assert "Cannot convert a tensor of numpy dtype datetime64[D] to a proto" in str(error.value)


def test_wire_version_zero_keeps_the_version_field_present():
    parsed = predict_pb2.PredictResponse.FromString(wire.predict_response("m", 0, "s", {}, []))
    assert parsed.model_spec.HasField("version") and parsed.model_spec.version.value == 0
