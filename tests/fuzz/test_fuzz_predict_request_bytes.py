"""Fuzz target: arbitrary PredictRequest bytes through the decoding PredictionService.Predict does
before the model call (serving/grpc/prediction_service.py: ModelSpec, input set, each TensorProto,
output filter).

Bytes are random, or a structured request serialized and then mutated (bytes flipped, inserted,
deleted, truncated). Invariant: protobuf rejects the bytes with DecodeError (the front end's
DESERIALIZE_FAILED), or decoding gives a ServingError of a client code (HTTP status < 500) or
arrays of the claimed shapes; never another exception, never an allocation past a few copies of
the bytes plus the fill limit per input.
"""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
from fuzz import harness
from fuzz.strategies import tensor_protos
from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from tfrelay.serving.errors import ServingError
from tfrelay.serving.grpc.common import spec_target
from tfrelay.serving.grpc.prediction_service import decode_predict_inputs
from tfrelay.serving.grpc.tensors import MAX_FILL_BYTES
from tfrelay.serving.servables.base import Signature, TensorSpec

NAME = "predict_request_bytes"
CARRIED_COPIES = 16
FIXED_BYTES = 1 << 20

_SPEC = TensorSpec(tensor_name="x:0", dtype=types_pb2.DT_FLOAT, shape=(-1,))
SIGNATURE = Signature(
    name="serving_default",
    method_name="tensorflow/serving/predict",
    inputs={"x": _SPEC, "x2": _SPEC},
    outputs={"y": _SPEC, "y2": _SPEC},
)
aliases = st.one_of(st.sampled_from(["x", "x2", "y", "y2", ""]), st.text(max_size=12))


@st.composite
def structured_requests(draw) -> bytes:
    request = predict_pb2.PredictRequest()
    if draw(st.booleans()):
        request.model_spec.name = draw(st.one_of(st.just("half_plus_two"), st.text(max_size=12)))
        choice = draw(st.sampled_from(["none", "version", "label"]))
        if choice == "version":
            request.model_spec.version.value = draw(st.integers(-(2**63), 2**63 - 1))
        elif choice == "label":
            request.model_spec.version_label = draw(st.text(max_size=8))
        request.model_spec.signature_name = draw(st.text(max_size=8))
    for alias in draw(st.lists(aliases, max_size=3, unique=True)):
        request.inputs[alias].CopyFrom(draw(tensor_protos()))
    request.output_filter.extend(draw(st.lists(aliases, max_size=3)))
    return request.SerializeToString()


@st.composite
def mutated(draw, seeds) -> bytes:
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            del data[at:]
    return bytes(data)


request_bytes = st.one_of(st.binary(max_size=256), mutated(structured_requests()))


def decode_like_predict(request: predict_pb2.PredictRequest):
    """What Predict reads from a request before the model call: its ModelSpec, then the
    service's own decoding of inputs and output filter (the manager's lookup is not fuzzed)."""
    if request.HasField("model_spec"):
        spec_target(request.model_spec)
    return decode_predict_inputs(SIGNATURE, request)


@given(request_bytes)
@harness.counted(NAME)
def check_request_bytes(data: bytes) -> None:
    try:
        with warnings.catch_warnings():
            # protobuf 3.20 stops at a stray end-group tag with a RuntimeWarning and keeps what
            # it read; the front end's deserializer (the same FromString) does the same.
            warnings.simplefilter("ignore", RuntimeWarning)
            request = predict_pb2.PredictRequest.FromString(data)
    except DecodeError:
        return
    tracemalloc.start()
    try:
        try:
            inputs, keys = decode_like_predict(request)
        except ServingError as err:
            assert err.http_status < 500, err
            return
        finally:
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= CARRIED_COPIES * len(data) + 2 * MAX_FILL_BYTES + FIXED_BYTES, peak
    for alias, array in inputs.items():
        assert isinstance(array, np.ndarray)
        assert array.shape == tuple(d.size for d in request.inputs[alias].tensor_shape.dim)
    assert set(keys) <= set(SIGNATURE.outputs)


def test_arbitrary_predict_request_bytes_give_a_client_error_or_tensors():
    harness.run(NAME, check_request_bytes)
