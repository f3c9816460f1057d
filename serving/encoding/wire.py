"""PredictResponse written directly in protobuf wire format: tfrelay's one TensorProto encoder.

protobuf 3.20's C++-backed Python messages (the version the TFX stack pins) build maps and nested
messages through reflection: filling a PredictResponse costs more than the rest of a small
Predict call. The response has a fixed, simple shape (the ModelSpec and a map of TensorProtos), so
both gRPC servers send these bytes instead (grpc.aio through a pass-through serializer:
`server.add_prediction_service`, issue 15). Every dtype is written here from the one table in
`tensor_types.py`: fixed-width values (float, double, complex) as their little-endian bytes,
integer, bool and half values as packed varints (numpy-vectorized past a few values), strings as
`string_val`; with `--enable_serialization_as_tensor_content` every non-string dtype goes to
`tensor_content`. Parsing the result gives exactly the message TensorFlow's `AsProtoField` /
`AsProtoTensorContent` rules and the protobuf API would build (tests compare them field by
field, for every dtype).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from tensorflow.core.framework import types_pb2

from tfrelay.serving.encoding.tensor_types import (
    BY_NUMPY,
    STRING_FIELD_NUMBER,
    TENSOR_CONTENT_FIELD_NUMBER,
    Packing,
    TensorType,
    type_of,
)
from tfrelay.serving.encoding.varint import varint

# Field numbers (tensorflow_serving/apis/predict.proto, model.proto; tensorflow/core/framework
# tensor.proto, tensor_shape.proto), as (number << 3 | wire type) tag bytes.
_RESPONSE_OUTPUTS = b"\x0a"  # PredictResponse.outputs = 1, map<string, TensorProto>
_RESPONSE_MODEL_SPEC = b"\x12"  # PredictResponse.model_spec = 2
_SPEC_NAME = b"\x0a"  # ModelSpec.name = 1
_SPEC_VERSION = b"\x12"  # ModelSpec.version = 2, google.protobuf.Int64Value
_SPEC_SIGNATURE = b"\x1a"  # ModelSpec.signature_name = 3
_INT64_VALUE = b"\x08"  # Int64Value.value = 1
_ENTRY_KEY, _ENTRY_VALUE = b"\x0a", b"\x12"  # map entry key = 1, value = 2
_REQUEST_SPEC, _REQUEST_INPUTS = b"\x0a", b"\x12"  # PredictRequest.model_spec = 1, inputs = 2
_TENSOR_DTYPE = b"\x08"  # TensorProto.dtype = 1
_TENSOR_SHAPE = b"\x12"  # TensorProto.tensor_shape = 2
_TENSOR_CONTENT = bytes([TENSOR_CONTENT_FIELD_NUMBER << 3 | 2])
_STRING_VAL = bytes([STRING_FIELD_NUMBER << 3 | 2])
_STRING_DTYPE = _TENSOR_DTYPE + bytes([types_pb2.DT_STRING])
_SHAPE_DIM = b"\x12"  # TensorShapeProto.dim = 2
_DIM_SIZE = b"\x08"  # TensorShapeProto.Dim.size = 1
# Up to this many values of more than 7 bits, a Python loop beats the vectorized encoder's fixed
# cost of ~15 us (Python 3.13, numpy 2.5, this 2-core machine: 16 values of ~2^40 in 8 us, 128
# in 65 us by the loop, 24 us vectorized; protobuf's C++ takes 10 us for those 128, but it is the
# second encoder issue 15 removed, and wide integer outputs are rare on the request path).
_VARINT_LOOP_LIMIT = 16


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


@functools.lru_cache(maxsize=4096)
def _shape(shape: tuple[int, ...]) -> bytes:
    dims = b"".join(
        _delimited(_SHAPE_DIM, _DIM_SIZE + varint(size) if size else b"") for size in shape
    )
    return _delimited(_TENSOR_SHAPE, dims)


class _Encoding(NamedTuple):
    """How to write one numpy dtype's arrays, derived once from its TensorType (a dict lookup
    per output instead of building dtypes and tags per call: 0.5 us of a 1.1 us float output)."""

    header: bytes  # the dtype field
    tag: bytes  # the typed field's packed tag
    little_endian: np.dtype  # the wire's byte order
    varint: bool  # packed varints (else the array's own bytes)
    half: bool  # half floats travel as their 16 bits


def _encoding(entry: TensorType) -> _Encoding:
    return _Encoding(
        _TENSOR_DTYPE + varint(entry.dtype),
        entry.packed_tag,
        entry.numpy.newbyteorder("<"),
        entry.packing is Packing.VARINT,
        entry.dtype == types_pb2.DT_HALF,
    )


# _ENCODINGS holds native dtypes (others are converted first): on a little-endian machine their
# bytes are already the wire's.
_NATIVE_IS_WIRE_ORDER = sys.byteorder == "little"
_ENCODINGS: dict[np.dtype, _Encoding] = {
    numpy: _encoding(entry) for numpy, entry in BY_NUMPY.items()
}


def _as_varint_words(flat: np.ndarray, half: bool) -> np.ndarray:
    """The values as the uint64 words protobuf varint-encodes: int32-typed fields sign- or
    zero-extend to 64 bits as C++ does; half floats are their 16 bits."""
    if half:
        return flat.view(np.uint16).astype(np.uint64)
    if flat.dtype.kind in "ub":
        return flat.astype(np.uint64)
    return flat.astype(np.int64).view(np.uint64)


def varints(words: np.ndarray) -> bytes:
    """The concatenated varints of uint64 words, with numpy past a few wide values.

    Args:
      words: a 1-D uint64 array.

    Returns:
      The packed-field payload protobuf writes for these values.
    """
    if not words.size:
        return b""
    # Seven bits per byte, least significant group first; a value takes as many bytes as its
    # highest non-zero group (at least one), and every byte but its last has the 0x80 bit.
    # Only as many groups as the largest value needs are computed: labels and counts take one.
    width = max(1, -(-int(words.max()).bit_length() // 7))
    if width == 1:
        return words.astype(np.uint8).tobytes()
    if words.size <= _VARINT_LOOP_LIMIT:
        return b"".join([varint(value) for value in words.tolist()])
    groups = ((words[:, None] >> _GROUP_SHIFTS[:width]) & _LOW_SEVEN).astype(np.uint8)
    length = np.searchsorted(_GROUP_LIMITS[: width - 1], words, side="right") + 1
    position = _POSITIONS[:width]
    groups |= (position < (length - 1)[:, None]).view(np.uint8) << 7
    return groups[position < length[:, None]].tobytes()


_GROUP_SHIFTS = np.arange(0, 70, 7, dtype=np.uint64)
_GROUP_LIMITS = np.array([1 << (7 * k) for k in range(1, 10)], dtype=np.uint64)
_LOW_SEVEN = np.uint64(0x7F)
_POSITIONS = np.arange(10)


def tensor_bytes(array: np.ndarray, as_tensor_content: bool = False) -> bytes:
    """A serialized TensorProto of `array`, as TF Serving writes a Predict output.

    Args:
      array: a model output.
      as_tensor_content: write non-string values to `tensor_content` (TF Serving's
        `--enable_serialization_as_tensor_content`) instead of their typed field.

    Returns:
      The TensorProto's wire bytes: dtype, shape (always present) and the values.

    Raises:
      ServingError: INTERNAL for a dtype TensorFlow cannot hold.
    """
    if type(array) is not np.ndarray:
        array = np.asarray(array)
    encoding = _ENCODINGS.get(array.dtype)
    if encoding is None:
        entry = type_of(array)  # a string, a byte-swapped array, or INTERNAL
        if entry is None:
            strings = b"".join(
                _delimited(_STRING_VAL, _as_bytes(value)) for value in array.reshape(-1).tolist()
            )
            return _STRING_DTYPE + _shape(array.shape) + strings
        array = array.astype(entry.numpy)  # native byte order from here on
        encoding = _ENCODINGS[entry.numpy]
    head = encoding.header + _shape(array.shape)
    if not array.size:
        return head
    if as_tensor_content:
        return head + _delimited(
            _TENSOR_CONTENT, array.astype(encoding.little_endian, copy=False).tobytes()
        )
    if encoding.varint:
        flat = array.reshape(-1)
        if flat.size <= _VARINT_LOOP_LIMIT and not encoding.half:
            # A few values (class ids, counts): Python ints straight to varints (0.8 us less
            # than the word conversion for 8 int64 values).
            payload = b"".join([varint(value) for value in flat.tolist()])
        else:
            payload = varints(_as_varint_words(flat, encoding.half))
    elif _NATIVE_IS_WIRE_ORDER:
        payload = array.tobytes()  # native order is the wire's: no conversion call (0.08 us)
    else:
        payload = array.astype(encoding.little_endian).tobytes()
    return head + encoding.tag + varint(len(payload)) + payload


def _as_bytes(value: object) -> bytes:
    # A string element: bytes as they are, str UTF-8 encoded (numpy "U" arrays, object arrays
    # of str), anything else through its buffer.
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


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
        tensor = tensor_bytes(outputs[key], as_tensor_content)
        entry = _entry_key(key) + _ENTRY_VALUE + varint(len(tensor)) + tensor
        parts += (_RESPONSE_OUTPUTS, varint(len(entry)), entry)
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


# Length-delimited tags of the first field numbers, built once (field() runs several times per
# request log record).
_FIELD_TAGS = [varint(number << 3 | 2) for number in range(16)]


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2): its tag, the payload's length, the payload.

    Args:
      number: the field number.
      payload: a serialized message, bytes or string, or a packed repeated field's values.

    Returns:
      The field's bytes, to concatenate into a message (concatenation merges, as protobuf does).
    """
    tag = _FIELD_TAGS[number] if number < len(_FIELD_TAGS) else varint(number << 3 | 2)
    return tag + varint(len(payload)) + payload


@functools.lru_cache(maxsize=1024)
def model_spec(
    name: str, version: int | None = None, label: str | None = None, signature_name: str = ""
) -> bytes:
    """A serialized ModelSpec (model.proto: name 1, version 2, signature_name 3, version_label 4).

    Args:
      name: the model.
      version: the version, or None.
      label: the version label, or None (TF Serving's oneof: give at most one of the two).
      signature_name: the signature, or "".

    Returns:
      The message's bytes.
    """
    spec = _delimited(_SPEC_NAME, name.encode()) if name else b""
    if version is not None:
        spec += _delimited(_SPEC_VERSION, _INT64_VALUE + varint(version) if version else b"")
    if signature_name:
        spec += _delimited(_SPEC_SIGNATURE, signature_name.encode())
    if label is not None:
        spec += field(4, label.encode())
    return spec


def predict_request(spec: bytes, inputs: Mapping[str, np.ndarray]) -> bytes:
    """A serialized PredictRequest (predict.proto: model_spec 1, inputs 2) of decoded inputs, as TF
    Serving's REST handler turns JSON into the request it runs and logs.

    Args:
      spec: the request's serialized ModelSpec (`model_spec`).
      inputs: {alias: array}.

    Returns:
      The message's bytes.

    Raises:
      ServingError: INTERNAL for a dtype TensorFlow cannot hold.
    """
    parts = [_REQUEST_SPEC, varint(len(spec)), spec]
    for key, array in inputs.items():
        tensor = tensor_bytes(array)
        entry = _entry_key(key) + _ENTRY_VALUE + varint(len(tensor)) + tensor
        parts += (_REQUEST_INPUTS, varint(len(entry)), entry)
    return b"".join(parts)
