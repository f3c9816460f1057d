"""Request TensorProtos to numpy, without `tf.make_ndarray`, bounded before allocating.

`tf.make_ndarray` costs tens of microseconds per small tensor (dtype inference, Python loops);
Predict calls it for every input. Here numeric dtypes are read with numpy from the one dtype
table (`serving/encoding/tensor_types.py`); responses are written by the one encoder,
`serving/encoding/wire.py`.
"""

from __future__ import annotations

import math

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

from tfrelay.serving import errors
from tfrelay.serving.encoding.tensor_types import TYPES, Packing

TensorProto = tensor_pb2.TensorProto

# Fixed-width real fields whose packed wire form is exactly the little-endian array bytes.
_PACKED_FIXED = {
    dtype: entry.numpy.newbyteorder("<")
    for dtype, entry in TYPES.items()
    if entry.packing is Packing.FIXED and entry.numpy.kind == "f"
}
_FIELD_NUMBERS = {field.name: field.number for field in TensorProto.DESCRIPTOR.fields}


# --- Reading request tensors ---------------------------------------------------------------
#
# `Tensor::FromProto` (tensorflow/core/framework/tensor.cc) is the rule: a shape with more than
# 254 dimensions, a negative dimension or an element count past int64 is invalid; with
# `tensor_content` its length must be exactly count * itemsize; a typed field with at least
# `count` values gives its first `count`, with fewer values (but some) is padded with its last
# value, with none is all zeros (empty strings). TF Serving answers any failure with
# INVALID_ARGUMENT "tensor parsing error: <alias>" (saved_model/util.cc `GetInputValues`).
#
# The padding is where a client's claim, not its bytes, decides what the server allocates
# (issue 12: a 41-byte Predict claiming 2^25 elements cost ~600 MB; 2^40 answered INTERNAL
# MemoryError). So every count is checked before anything is allocated: shape and content size
# as TensorFlow does, and the padding against MAX_FILL_BYTES. Everything else a decoded tensor
# holds is bounded by the bytes the request carried.

# TensorShape::MaxDimensions().
MAX_DIMS = 254
# numpy's (1.26) own limit: TensorFlow accepts up to 254 dimensions, no model needs over 32.
_NUMPY_MAX_DIMS = 32
_INT64_MAX = 2**63 - 1
# The most bytes one request tensor may be padded or zero-filled with beyond the values it
# carries (`tf.make_tensor_proto(0.0, shape=[1024, 1024])` is 4 MiB of padding). TF Serving has
# no such bound (it allocates what the shape claims); this one makes a 41-byte request cost at
# most 16 MiB (x ~5 through the model call and the response) instead of what it claims.
MAX_FILL_BYTES = 16 * 1024 * 1024
# What TensorFlow holds per padded string element besides its bytes (sizeof(tstring)).
_STRING_ELEMENT_BYTES = 24

# Dtypes tf.make_ndarray reads that numpy has no native type for: (field, itemsize).
_OTHER_TYPES: dict[int, tuple[str, int]] = {
    types_pb2.DT_BFLOAT16: ("half_val", 2),
    types_pb2.DT_QINT8: ("int_val", 1),
    types_pb2.DT_QUINT8: ("int_val", 1),
    types_pb2.DT_QINT16: ("int_val", 2),
    types_pb2.DT_QUINT16: ("int_val", 2),
    types_pb2.DT_QINT32: ("int_val", 4),
}


def proto_to_ndarray(
    proto: tensor_pb2.TensorProto, alias: str, max_fill_bytes: int = MAX_FILL_BYTES
) -> np.ndarray:
    """Reads a request TensorProto with `Tensor::FromProto`'s rules, bounded before allocating.

    Args:
      proto: the request tensor.
      alias: its input alias, for the error message.
      max_fill_bytes: the most bytes of padding (values the shape holds but the proto does not
        carry) accepted.

    Returns:
      The array (object dtype for strings).

    Raises:
      ServingError: INVALID_ARGUMENT "tensor parsing error: <alias>" (as TF Serving) for a
        tensor TensorFlow rejects, with the reason appended when the padding is over
        `max_fill_bytes`.
    """
    # The shape by its serialized TensorShapeProto (issue 14): with protobuf's upb backend,
    # walking `tensor_shape.dim` creates a Python wrapper per dimension (0.68 us for one dim;
    # 4% of the server's samples for six-input penguin requests at 64 connections), the
    # sub-message's bytes cost 0.29 us with the lookup. The bytes determine the sizes, so the
    # cache cannot answer a different shape; it is bounded (see _SHAPES_MAX) and checked below
    # like any shape.
    shape_proto = proto.tensor_shape
    key = shape_proto.SerializeToString()
    shape = _SHAPES.get(key)
    if shape is None:
        shape = tuple([d.size for d in shape_proto.dim])
        if len(key) <= _SHAPE_KEY_MAX_BYTES and len(_SHAPES) < _SHAPES_MAX:
            _SHAPES[key] = shape
    if shape:
        count = math.prod(shape)
        if min(shape) < 0 or len(shape) > _NUMPY_MAX_DIMS or count > _INT64_MAX:
            raise _shape_error(shape, alias)
        if not count:
            if _overflows_before_zero(shape):
                raise _parsing_error(alias)
            return _empty(proto, shape, alias)
    else:
        count = 1
    dtype = proto.dtype
    if dtype == types_pb2.DT_STRING:
        return _strings(proto, count, shape, alias, max_fill_bytes)
    entry = TYPES.get(dtype)
    if entry is None:
        return _other(proto, count, shape, alias, max_fill_bytes)
    np_type, field = entry.numpy, entry.field
    if proto.tensor_content:
        content = proto.tensor_content
        if len(content) != count * np_type.itemsize:
            raise _parsing_error(alias)
        if dtype == types_pb2.DT_BOOL and content.translate(None, b"\x00\x01"):
            # TensorFlow refuses bool bytes other than 0 and 1 (found by tests/fuzz).
            raise _parsing_error(alias)
        return (
            np.frombuffer(content, dtype=np_type.newbyteorder("<")).astype(np_type).reshape(shape)
        )
    values = getattr(proto, field)
    present = len(values)
    if dtype in _EXACT_FIELDS:
        if present == count:  # the common case: no padding, no truncation
            if dtype in _PACKED_FIXED and present > _PACKED_READ_THRESHOLD:
                array = np.frombuffer(_packed_payload(proto, field), dtype=_PACKED_FIXED[dtype])
                return array.astype(np_type).reshape(shape)
            # The field's own type is the array's: no range question, and fromiter skips the
            # per-element dtype discovery np.asarray does (0.4 vs 1.9 us for a few values).
            array = np.fromiter(values, dtype=np_type, count=present)
            # A 1-D shape is fromiter's own (present == count): no reshape (0.15 us).
            return array if len(shape) == 1 else array.reshape(shape)
        if present < count:
            _check_fill(count - present, np_type.itemsize, shape, present, alias, max_fill_bytes)
        array = np.fromiter(values, dtype=np_type, count=present)
    elif dtype in (types_pb2.DT_COMPLEX64, types_pb2.DT_COMPLEX128):
        # NumElements is half the floats; an odd last float is ignored.
        present //= 2
        if present < count:
            _check_fill(count - present, np_type.itemsize, shape, present, alias, max_fill_bytes)
        parts = np.asarray(values, dtype=np_type.type(0).real.dtype)
        array = parts[: present * 2].view(np_type)
    else:
        # int_val / half_val are int32 fields cast to narrower types (C++ wraps; so does astype).
        if present < count:
            _check_fill(count - present, np_type.itemsize, shape, present, alias, max_fill_bytes)
        array = np.asarray(values, dtype=np.int32)
        array = (
            array.astype(np.uint16).view(np.float16)
            if dtype == types_pb2.DT_HALF
            else (array.astype(np_type))
        )
    return _fill(array, count, shape, 0)


# Request shapes by serialized TensorShapeProto (see proto_to_ndarray). At most this many, each
# key at most this long (32 dimensions of up to 2^7 take 96 bytes; typical shapes take 4-12):
# a client sending ever new shapes fills it once (under 1 MB) and then takes the uncached path.
_SHAPES: dict[bytes, tuple[int, ...]] = {}
_SHAPES_MAX = 4096
_SHAPE_KEY_MAX_BYTES = 64


# Dtypes whose typed field holds exactly their values (narrow ints travel in int_val).
_EXACT_FIELDS = frozenset(
    {types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_INT32, types_pb2.DT_INT64,
     types_pb2.DT_BOOL, types_pb2.DT_UINT32, types_pb2.DT_UINT64}
)  # fmt: skip


# Above this many values, re-reading the packed bytes beats iterating the repeated field.
_PACKED_READ_THRESHOLD = 32


def _parsing_error(alias: str, reason: str = "") -> errors.ServingError:
    # Built only when a request actually fails.
    return errors.invalid_argument(f"tensor parsing error: {alias}{reason}")


def _shape_error(shape: tuple[int, ...], alias: str) -> errors.ServingError:
    if MAX_DIMS >= len(shape) > _NUMPY_MAX_DIMS and min(shape) >= 0:
        # Valid for TensorFlow, and yet beyond what numpy can hold.
        return _parsing_error(
            alias, f": {len(shape)} dimensions, more than the {_NUMPY_MAX_DIMS} supported"
        )
    return _parsing_error(alias)


def _overflows_before_zero(shape: tuple[int, ...]) -> bool:
    # TensorShape::IsValid multiplies dims in order (MultiplyWithoutOverflow): a product past
    # int64 before the first 0 makes the shape invalid even though the count is 0.
    product = 1
    for size in shape:
        if not size:
            return False
        product *= size
        if product > _INT64_MAX:
            return True
    return False


def _describe_shape(shape: tuple[int, ...]) -> str:
    # At most 8 dims: the message quotes a short excerpt of what the client sent.
    dims = ",".join(str(d) for d in shape[:8])
    return f"[{dims}{',...' if len(shape) > 8 else ''}]"


def _check_fill(
    missing: int,
    element_bytes: int,
    shape: tuple[int, ...],
    present: int,
    alias: str,
    max_fill_bytes: int,
) -> None:
    """Refuses padding of `missing` elements of `element_bytes` each past `max_fill_bytes`."""
    fill = missing * element_bytes
    if fill > max_fill_bytes:
        raise _parsing_error(
            alias,
            f": shape {_describe_shape(shape)} holds {missing + present} elements and the "
            f"request carries {present}; padding the rest would take {fill} bytes, over the "
            f"limit of {max_fill_bytes}",
        )


def _fill(array: np.ndarray, count: int, shape: tuple[int, ...], default) -> np.ndarray:
    # `FromProtoField`: the first `count` values, padded with the last one, or all `default`.
    # Callers have bounded the padding (_check_fill).
    size = array.size
    if size >= count:
        return (array[:count] if size > count else array).reshape(shape)
    filled = np.empty(count, dtype=array.dtype)
    if size == 0:
        filled[:] = default
    else:
        filled[:size] = array
        filled[size:] = array[-1]
    return filled.reshape(shape)


def _empty(proto: tensor_pb2.TensorProto, shape: tuple[int, ...], alias: str) -> np.ndarray:
    # No elements: TensorFlow reads neither the content nor the typed fields.
    dtype = proto.dtype
    if dtype == types_pb2.DT_STRING:
        np_type = np.dtype(object)
    elif dtype in TYPES:
        np_type = TYPES[dtype].numpy
    elif dtype in _OTHER_TYPES:
        import tensorflow as tf

        np_type = np.dtype(tf.dtypes.as_dtype(dtype).as_numpy_dtype)
    else:
        raise _parsing_error(alias)
    try:
        return np.empty(shape, dtype=np_type)
    except ValueError as err:
        # numpy refuses empty shapes whose other dims multiply past its index range
        # ([2^31, 2^31, 0] of float32); TensorFlow accepts them, no model needs them.
        raise _parsing_error(alias) from err


def _strings(
    proto: tensor_pb2.TensorProto,
    count: int,
    shape: tuple[int, ...],
    alias: str,
    max_fill_bytes: int,
) -> np.ndarray:
    if proto.tensor_content:
        values = _decode_string_list(proto.tensor_content, count)
        if values is None:
            raise _parsing_error(alias)
    else:
        # A slice is a list already (0.18 us; list() of the container takes 0.50).
        values = proto.string_val[:]
        present = len(values)
        if present < count:
            # Each padded element is a copy of the last string (or b"") once TensorFlow has it.
            last = len(values[-1]) if values else 0
            _check_fill(
                count - present,
                _STRING_ELEMENT_BYTES + last,
                shape,
                present,
                alias,
                max_fill_bytes,
            )
    if len(values) == count and len(shape) == 1:
        # The common case (issue 14): every element sent, a 1-D shape. The elements are bytes,
        # never sequences, so np.array makes the 1-D object array directly (0.24 us against
        # 0.37 for empty + slice assignment) and needs no _fill or reshape.
        return np.array(values, dtype=object)
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return _fill(array, count, shape, b"")


def _decode_string_list(content: bytes, count: int) -> list[bytes] | None:
    """`port::DecodeStringList`: `count` varint32 lengths, then exactly that many bytes.

    Returns:
      The strings, or None when `content` does not hold exactly `count` of them.
    """
    if count > len(content):  # every length takes at least one byte: nothing to allocate
        return None
    raw = np.frombuffer(content, dtype=np.uint8)
    ends = np.flatnonzero(raw < 0x80)[:count]  # the last byte of each length varint
    if ends.size < count:
        return None
    starts = np.empty(count, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    widths = ends - starts + 1
    if widths.max() > 5:  # a varint32 takes at most 5 bytes
        return None
    lengths = np.zeros(count, dtype=np.uint64)
    for k in range(int(widths.max())):
        has = widths > k
        lengths[has] |= (raw[starts[has] + k].astype(np.uint64) & 0x7F) << np.uint64(7 * k)
    if lengths.max() > 0xFFFFFFFF:
        return None
    offset = int(ends[-1]) + 1
    if int(lengths.sum()) != len(content) - offset:
        return None
    bounds = np.empty(count + 1, dtype=np.int64)
    bounds[0] = offset
    np.cumsum(lengths, out=bounds[1:])
    bounds[1:] += offset
    bounds = bounds.tolist()
    return [content[bounds[i] : bounds[i + 1]] for i in range(count)]


def _other(
    proto: tensor_pb2.TensorProto,
    count: int,
    shape: tuple[int, ...],
    alias: str,
    max_fill_bytes: int,
) -> np.ndarray:
    """bfloat16 and the quantized dtypes, through tf.make_ndarray once their sizes are checked.

    tf.make_ndarray pads only a single value (or none); other counts are a parsing error here,
    where TensorFlow's C++ would pad with the last value. Other dtypes (DT_INVALID, references,
    resources, variants, unknown numbers) are a parsing error.
    """
    entry = _OTHER_TYPES.get(proto.dtype)
    if entry is None:
        raise _parsing_error(alias)
    field, itemsize = entry
    if proto.tensor_content:
        if len(proto.tensor_content) != count * itemsize:
            raise _parsing_error(alias)
    else:
        present = len(getattr(proto, field))
        if present not in (0, 1, count):
            raise _parsing_error(alias)
        if present < count:
            _check_fill(count - present, itemsize, shape, present, alias, max_fill_bytes)
    import tensorflow as tf

    try:
        return tf.make_ndarray(proto)
    except Exception as err:
        raise _parsing_error(alias) from err


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _packed_payload(proto: tensor_pb2.TensorProto, field: str) -> bytes:
    """The concatenated packed bytes of one repeated fixed-width field (a top-level wire walk)."""
    data = proto.SerializeToString()
    wanted = _FIELD_NUMBERS[field]
    chunks = []
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = _read_varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            if number == wanted:
                chunks.append(data[pos : pos + length])
            pos += length
        else:  # groups do not occur in TensorProto
            raise ValueError(f"unexpected wire type {wire}")
    return b"".join(chunks)
