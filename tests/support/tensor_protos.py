"""TensorProtos that claim a shape and carry only the fields a test gives, for the tensor-limit
tests (issue 12): the claims a client can make without sending the bytes; and the reference
message TF Serving builds for an output, that the wire encoder is checked against (issue 15)."""

from __future__ import annotations

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2


def claimed_tensor(dtype: int, dims: list[int], **fields) -> tensor_pb2.TensorProto:
    """A TensorProto of `dtype` whose shape is `dims`, with only the given fields set.

    Args:
      dtype: a DataType enum value.
      dims: the claimed dimension sizes (may be negative or huge).
      **fields: repeated value fields (lists) or `tensor_content` (bytes).

    Returns:
      The proto.
    """
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    for name, value in fields.items():
        if isinstance(value, bytes):
            setattr(proto, name, value)
        else:
            getattr(proto, name).extend(value)
    return proto


# The typed field `Tensor::AsProtoField` (tensorflow/core/framework/tensor.cc) fills for each
# numpy dtype, written out here apart from serving/encoding/tensor_types.py on purpose: the encoder
# is checked against this reference, so a wrong entry in the product's table fails a test.
_AS_PROTO_FIELD: dict[np.dtype, tuple[int, str]] = {
    np.dtype(np.float32): (types_pb2.DT_FLOAT, "float_val"),
    np.dtype(np.float64): (types_pb2.DT_DOUBLE, "double_val"),
    np.dtype(np.int32): (types_pb2.DT_INT32, "int_val"),
    np.dtype(np.int16): (types_pb2.DT_INT16, "int_val"),
    np.dtype(np.int8): (types_pb2.DT_INT8, "int_val"),
    np.dtype(np.uint8): (types_pb2.DT_UINT8, "int_val"),
    np.dtype(np.uint16): (types_pb2.DT_UINT16, "int_val"),
    np.dtype(np.int64): (types_pb2.DT_INT64, "int64_val"),
    np.dtype(np.uint32): (types_pb2.DT_UINT32, "uint32_val"),
    np.dtype(np.uint64): (types_pb2.DT_UINT64, "uint64_val"),
    np.dtype(np.bool_): (types_pb2.DT_BOOL, "bool_val"),
    np.dtype(np.float16): (types_pb2.DT_HALF, "half_val"),
    np.dtype(np.complex64): (types_pb2.DT_COMPLEX64, "scomplex_val"),
    np.dtype(np.complex128): (types_pb2.DT_COMPLEX128, "dcomplex_val"),
}


def as_tf_serving_builds(
    array: np.ndarray, tensor_content: bool, out: tensor_pb2.TensorProto
) -> tensor_pb2.TensorProto:
    """Fills `out` through the protobuf API as TF Serving's Predict fills an output tensor:
    `AsProtoField` (typed fields), or `AsProtoTensorContent` with tensor_content (strings always
    in `string_val`); the shape is always set.

    Args:
      array: the output.
      tensor_content: TF Serving's `--enable_serialization_as_tensor_content`.
      out: the (empty) proto to fill, e.g. a response map entry.

    Returns:
      `out`.
    """
    out.tensor_shape.SetInParent()
    for size in array.shape:
        out.tensor_shape.dim.add(size=size)
    flat = array.reshape(-1)
    if array.dtype.kind in "OSU":
        out.dtype = types_pb2.DT_STRING
        out.string_val.extend(v.encode() if isinstance(v, str) else bytes(v) for v in flat)
        return out
    native = array.dtype.newbyteorder("=")
    dtype, field = _AS_PROTO_FIELD[native]
    out.dtype = dtype
    if tensor_content:
        out.tensor_content = flat.astype(native.newbyteorder("<")).tobytes()
    elif dtype == types_pb2.DT_HALF:
        out.half_val.extend(flat.astype(np.float16).view(np.uint16).tolist())
    elif dtype in (types_pb2.DT_COMPLEX64, types_pb2.DT_COMPLEX128):
        parts = np.float32 if dtype == types_pb2.DT_COMPLEX64 else np.float64
        getattr(out, field).extend(flat.astype(native).view(parts).tolist())
    else:
        getattr(out, field).extend(flat.tolist())
    return out
