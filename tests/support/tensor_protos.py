"""TensorProtos that claim a shape and carry only the fields a test gives, for the tensor-limit
tests (issue 12): the claims a client can make without sending the bytes."""

from __future__ import annotations

from tensorflow.core.framework import tensor_pb2


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
