"""The one table of TensorProto dtypes: which numpy dtype holds each DataType and which typed
repeated field carries its values, read by the decoder (`grpc/tensors.py`) and the encoder
(`encoding/wire.py`) alike (issue 15: the rules used to live in three tables that could drift apart).

The field choice follows TensorFlow's `Tensor::AsProtoField` (tensorflow/core/framework/
tensor.cc), which TF Serving uses for Predict responses: narrow integers travel sign- or
zero-extended in `int_val`, half floats as their 16 bits in `half_val`, complex numbers as
(real, imaginary) pairs in `scomplex_val` / `dcomplex_val`.
"""

from __future__ import annotations

import dataclasses
import enum

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

from tfrelay.serving import errors
from tfrelay.serving.encoding.varint import varint


class Packing(enum.Enum):
    """How a typed field's values sit in its packed wire form."""

    # Little-endian fixed-width values: the wire bytes are the array's own bytes.
    FIXED = "fixed"
    # One base-128 varint per value (negative ones as their 64-bit two's complement).
    VARINT = "varint"


@dataclasses.dataclass(frozen=True)
class TensorType:
    """How one DataType is held in numpy and carried in a TensorProto.

    Attributes:
      dtype: the DataType enum value.
      numpy: the numpy dtype of its arrays.
      field: the typed repeated field of TensorProto holding its values.
      field_number: that field's number in tensor.proto.
      packing: the field's packed wire encoding.
    """

    dtype: int
    numpy: np.dtype
    field: str
    field_number: int
    packing: Packing

    @property
    def packed_tag(self) -> bytes:
        """The field's length-delimited tag bytes (field number << 3 | wire type 2)."""
        return _tag(self.field_number)


_FIELD_NUMBERS = {field.name: field.number for field in tensor_pb2.TensorProto.DESCRIPTOR.fields}


def _tag(field_number: int) -> bytes:
    return varint(field_number << 3 | 2)


def _type(dtype: int, numpy: type, field: str, packing: Packing) -> TensorType:
    return TensorType(dtype, np.dtype(numpy), field, _FIELD_NUMBERS[field], packing)


# Every numeric DataType a numpy array can hold, by DataType.
TYPES: dict[int, TensorType] = {
    t.dtype: t
    for t in (
        _type(types_pb2.DT_FLOAT, np.float32, "float_val", Packing.FIXED),
        _type(types_pb2.DT_DOUBLE, np.float64, "double_val", Packing.FIXED),
        _type(types_pb2.DT_INT32, np.int32, "int_val", Packing.VARINT),
        _type(types_pb2.DT_INT16, np.int16, "int_val", Packing.VARINT),
        _type(types_pb2.DT_INT8, np.int8, "int_val", Packing.VARINT),
        _type(types_pb2.DT_UINT8, np.uint8, "int_val", Packing.VARINT),
        _type(types_pb2.DT_UINT16, np.uint16, "int_val", Packing.VARINT),
        _type(types_pb2.DT_INT64, np.int64, "int64_val", Packing.VARINT),
        _type(types_pb2.DT_UINT32, np.uint32, "uint32_val", Packing.VARINT),
        _type(types_pb2.DT_UINT64, np.uint64, "uint64_val", Packing.VARINT),
        _type(types_pb2.DT_BOOL, np.bool_, "bool_val", Packing.VARINT),
        _type(types_pb2.DT_HALF, np.float16, "half_val", Packing.VARINT),
        _type(types_pb2.DT_COMPLEX64, np.complex64, "scomplex_val", Packing.FIXED),
        _type(types_pb2.DT_COMPLEX128, np.complex128, "dcomplex_val", Packing.FIXED),
    )
}
# The same entries by numpy dtype (native byte order), for encoding an output array.
BY_NUMPY: dict[np.dtype, TensorType] = {t.numpy: t for t in TYPES.values()}

STRING_FIELD = "string_val"
STRING_FIELD_NUMBER = _FIELD_NUMBERS[STRING_FIELD]
TENSOR_CONTENT_FIELD_NUMBER = _FIELD_NUMBERS["tensor_content"]


def type_of(array: np.ndarray) -> TensorType | None:
    """The TensorType of a numpy array; None for strings (object, bytes and str arrays).

    Args:
      array: a model output.

    Returns:
      Its entry in `TYPES`, or None for a string array.

    Raises:
      ServingError: INTERNAL for a dtype TensorFlow cannot hold.
    """
    entry = BY_NUMPY.get(array.dtype)
    if entry is not None:
        return entry
    if array.dtype.kind in ("O", "S", "U"):
        return None
    entry = BY_NUMPY.get(array.dtype.newbyteorder("="))
    if entry is None:
        raise errors.ServingError(
            errors.Code.INTERNAL, f"Cannot convert a tensor of numpy dtype {array.dtype} to a proto"
        )
    return entry


def dtype_of(array: np.ndarray) -> int:
    """The TensorFlow DataType of a numpy array (object, bytes and str arrays are DT_STRING).

    Raises:
      ServingError: INTERNAL for a dtype TensorFlow cannot hold.
    """
    entry = type_of(array)
    return types_pb2.DT_STRING if entry is None else entry.dtype
