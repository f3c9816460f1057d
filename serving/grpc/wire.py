"""PredictResponse written directly in protobuf wire format.

protobuf 3.20's C++-backed Python messages (the version the TFX stack pins) build maps and nested
messages through reflection: filling a PredictResponse costs more than the rest of a small
Predict call. The response has a fixed, simple shape (the ModelSpec and a map of TensorProtos), so
both gRPC servers send these bytes instead (grpc.aio through a pass-through serializer:
`server.add_prediction_service`, issue 15); float and double tensors are written
here as packed fields, strings and small integer or bool arrays as their typed fields, other
dtypes through `ndarray_to_proto`. Parsing the result gives exactly
the message `tensors.ndarray_to_proto` and the protobuf API would build (tests compare them).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np
from tensorflow.core.framework import types_pb2

from tfrelay.serving.grpc.tensors import as_bytes, ndarray_to_proto, varint

# Field numbers (tensorflow_serving/apis/predict.proto, model.proto; tensorflow/core/framework
# tensor.proto, tensor_shape.proto), as (number << 3 | wire type) tag bytes.
_RESPONSE_OUTPUTS = b"\x0a"  # PredictResponse.outputs = 1, map<string, TensorProto>
_RESPONSE_MODEL_SPEC = b"\x12"  # PredictResponse.model_spec = 2
_SPEC_NAME = b"\x0a"  # ModelSpec.name = 1
_SPEC_VERSION = b"\x12"  # ModelSpec.version = 2, google.protobuf.Int64Value
_SPEC_SIGNATURE = b"\x1a"  # ModelSpec.signature_name = 3
_INT64_VALUE = b"\x08"  # Int64Value.value = 1
_ENTRY_KEY, _ENTRY_VALUE = b"\x0a", b"\x12"  # map entry key = 1, value = 2
_TENSOR_DTYPE = b"\x08"  # TensorProto.dtype = 1
_TENSOR_SHAPE = b"\x12"  # TensorProto.tensor_shape = 2
_TENSOR_CONTENT = b"\x22"  # TensorProto.tensor_content = 4
_SHAPE_DIM = b"\x12"  # TensorShapeProto.dim = 2
_DIM_SIZE = b"\x08"  # TensorShapeProto.Dim.size = 1
_PACKED = {
    np.dtype(np.float32): (types_pb2.DT_FLOAT, b"\x2a", np.dtype("<f4")),  # float_val = 5
    np.dtype(np.float64): (types_pb2.DT_DOUBLE, b"\x32", np.dtype("<f8")),  # double_val = 6
}
# Packed varint fields, written here for small arrays (a Python loop per value).
_VARINT_FIELDS = {
    np.dtype(np.int64): (types_pb2.DT_INT64, b"\x52"),  # int64_val = 10
    np.dtype(np.int32): (types_pb2.DT_INT32, b"\x3a"),  # int_val = 7
    np.dtype(np.bool_): (types_pb2.DT_BOOL, b"\x5a"),  # bool_val = 11
}
_VARINT_ARRAY_LIMIT = 256
_STRING_VAL = b"\x42"  # string_val = 8
_STRING_DTYPE = b"\x08" + bytes([types_pb2.DT_STRING])
_CONTENT_DTYPES = {
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
}


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


@functools.lru_cache(maxsize=4096)
def _shape(shape: tuple[int, ...]) -> bytes:
    dims = b"".join(
        _delimited(_SHAPE_DIM, _DIM_SIZE + varint(size) if size else b"") for size in shape
    )
    return _delimited(_TENSOR_SHAPE, dims)


def tensor_bytes(array: np.ndarray, as_tensor_content: bool = False) -> bytes:
    """A serialized TensorProto of `array` (see `tensors.ndarray_to_proto` for the rules).

    Raises:
      ServingError: INTERNAL for a dtype TensorFlow cannot hold.
    """
    array = np.asarray(array)
    if as_tensor_content:
        dtype = _CONTENT_DTYPES.get(array.dtype)
        if dtype is None:
            return ndarray_to_proto(array, True).SerializeToString()
        content = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        return (
            _TENSOR_DTYPE
            + varint(dtype)
            + _shape(array.shape)
            + (_delimited(_TENSOR_CONTENT, content) if content else b"")
        )
    packed = _PACKED.get(array.dtype)
    if packed is None:
        if array.dtype.kind in "OSU":
            strings = b"".join(
                _delimited(_STRING_VAL, as_bytes(value)) for value in array.reshape(-1).tolist()
            )
            return _STRING_DTYPE + _shape(array.shape) + strings
        varints = _VARINT_FIELDS.get(array.dtype)
        if varints is not None and array.size <= _VARINT_ARRAY_LIMIT:
            dtype, tag = varints
            values = b"".join([varint(value) for value in array.reshape(-1).tolist()])
            return (
                _TENSOR_DTYPE
                + varint(dtype)
                + _shape(array.shape)
                + (_delimited(tag, values) if values else b"")
            )
        return ndarray_to_proto(array).SerializeToString()
    dtype, tag, little_endian = packed
    values = array.astype(little_endian, copy=False).tobytes()
    return (
        _TENSOR_DTYPE
        + varint(dtype)
        + _shape(array.shape)
        + (_delimited(tag, values) if values else b"")
    )


def predict_response(
    model_name: str,
    version: int,
    signature_name: str,
    outputs: Mapping[str, np.ndarray],
    keys: Sequence[str],
    as_tensor_content: bool = False,
) -> bytes:
    """A serialized PredictResponse with the given ModelSpec and `outputs[key]` for each key."""
    parts = []
    for key in keys:
        entry = _entry_key(key) + _delimited(
            _ENTRY_VALUE, tensor_bytes(outputs[key], as_tensor_content)
        )
        parts.append(_delimited(_RESPONSE_OUTPUTS, entry))
    parts.append(_model_spec(model_name, version, signature_name))
    return b"".join(parts)


@functools.lru_cache(maxsize=1024)
def _entry_key(key: str) -> bytes:
    return _delimited(_ENTRY_KEY, key.encode())


@functools.lru_cache(maxsize=1024)
def _model_spec(model_name: str, version: int, signature_name: str) -> bytes:
    spec = _delimited(_SPEC_NAME, model_name.encode()) if model_name else b""
    spec += _delimited(_SPEC_VERSION, _INT64_VALUE + varint(version) if version else b"")
    if signature_name:
        spec += _delimited(_SPEC_SIGNATURE, signature_name.encode())
    return _delimited(_RESPONSE_MODEL_SPEC, spec)
