"""Hypothesis strategies shared by the fuzz targets: TensorProtos as a client may send them."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from tensorflow.core.framework import tensor_pb2, types_pb2

from tfrelay.serving.encoding import tensor_types

DTYPES = [
    types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_INT32, types_pb2.DT_INT64,
    types_pb2.DT_UINT8, types_pb2.DT_UINT16, types_pb2.DT_UINT32, types_pb2.DT_UINT64,
    types_pb2.DT_INT8, types_pb2.DT_INT16, types_pb2.DT_BOOL, types_pb2.DT_HALF,
    types_pb2.DT_COMPLEX64, types_pb2.DT_COMPLEX128, types_pb2.DT_STRING,
]  # fmt: skip
ODD_DTYPES = [
    types_pb2.DT_INVALID, types_pb2.DT_BFLOAT16, types_pb2.DT_QINT8, types_pb2.DT_QUINT16,
    types_pb2.DT_QINT32, types_pb2.DT_RESOURCE, types_pb2.DT_VARIANT, types_pb2.DT_FLOAT_REF,
]  # fmt: skip

int32s = st.integers(-(2**31), 2**31 - 1)
# JSON integer literals past int64/uint64 and double: up to 6,000 digits, past Python's
# 4,300-digit int() limit (a 500 on REST before: issue 12). Text, since json.dumps of such an
# int raises.
huge_integer_texts = st.builds(
    lambda sign, first, digits: sign + first + digits,
    st.sampled_from(["", "-"]),
    st.sampled_from("123456789"),
    st.one_of(
        st.text("0123456789", min_size=18, max_size=24),
        st.text("0123456789", min_size=300, max_size=320),
        st.integers(4_300, 6_000).map(lambda n: "9" * n),
    ),
)
FIELDS = {
    "float_val": st.floats(width=32, allow_nan=True),
    "double_val": st.floats(allow_nan=True),
    "int_val": int32s,
    "half_val": int32s,
    "int64_val": st.integers(-(2**63), 2**63 - 1),
    "uint32_val": st.integers(0, 2**32 - 1),
    "uint64_val": st.integers(0, 2**64 - 1),
    "bool_val": st.booleans(),
    "scomplex_val": st.floats(width=32),
    "dcomplex_val": st.floats(),
    "string_val": st.binary(max_size=24),
}
dimension = st.one_of(
    st.integers(0, 6),
    st.integers(-3, -1),
    st.sampled_from([2**21, 2**25, 2**40, 2**62, 2**63 - 1]),
)
shapes = st.one_of(
    st.lists(dimension, max_size=5),
    st.lists(st.just(1), min_size=253, max_size=256),
)


@st.composite
def tensor_protos(draw) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto()
    proto.dtype = draw(
        st.one_of(st.sampled_from(DTYPES), st.sampled_from(ODD_DTYPES), st.integers(0, 300))
    )
    dims = draw(shapes)
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    proto.tensor_shape.unknown_rank = draw(st.booleans())
    for field in draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=2)):
        getattr(proto, field).extend(draw(st.lists(FIELDS[field], max_size=8)))
    content = draw(st.sampled_from(["none", "random", "exact"]))
    if content == "random":
        proto.tensor_content = draw(st.binary(max_size=64))
    elif content == "exact" and proto.dtype in tensor_types.TYPES:
        count = int(np.prod(dims)) if dims and min(dims) >= 0 else 1
        itemsize = tensor_types.TYPES[proto.dtype].numpy.itemsize
        if 0 < count * itemsize <= 4096:
            proto.tensor_content = draw(
                st.binary(min_size=count * itemsize, max_size=count * itemsize)
            )
    return proto


@st.composite
def splits(draw, data: bytes, max_cuts: int = 8) -> list[bytes]:
    """`data` cut at up to `max_cuts` random places: the reads a server may get it in (the
    HTTP/1.1 and HTTP/2 targets both feed their streams this way)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=max_cuts)))
    pieces, last = [], 0
    for cut in cuts + [len(data)]:
        pieces.append(data[last:cut])
        last = cut
    return [piece for piece in pieces if piece]
