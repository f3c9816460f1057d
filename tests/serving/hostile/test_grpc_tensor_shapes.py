"""Attack: gRPC requests whose TensorProtos (and tf.Example inputs) claim far more than they carry
(issue 12: a 41-byte Predict claiming 2^25 elements cost ~600 MB; 2^40 answered INTERNAL).

Each request goes through TF Serving's own stub to the started server with default flags; the
answer must be INVALID_ARGUMENT with TF Serving's "tensor parsing error: x" (or the limit named),
quick, with the server's RSS barely moved and other clients still served (the `target` fixture).
"""

from __future__ import annotations

import grpc
import pytest
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2

from support.grpc_clients import stubs
from support.tensor_protos import claimed_tensor

MODEL = "half_plus_two"
# The server's RSS may grow this much over a whole case (allocator noise, a few small buffers);
# the unbounded decode grew it by ~600 MB.
RSS_GROWTH_BYTES = 64 << 20
REPEATS = 5


def claimed_request(dims: list[int], **fields) -> predict_pb2.PredictRequest:
    """A Predict on half_plus_two whose input `x` has `dims` and only the given fields."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    dtype = fields.pop("dtype", types_pb2.DT_FLOAT)
    request.inputs["x"].CopyFrom(claimed_tensor(dtype, dims, **fields))
    return request


@pytest.fixture
def predict_stub(target):
    channel = grpc.insecure_channel(f"{target.host}:{target.grpc_port}")
    try:
        yield stubs(channel)[0]
    finally:
        channel.close()


def answer(stub_call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        stub_call(request, timeout=10)
    return caught.value


CLAIMS = {
    "2^25-floats-from-one-value": claimed_request([2**25], float_val=[1.0]),
    "2^40-floats-from-one-value": claimed_request([2**40], float_val=[1.0]),
    "2^40-zeros-from-no-value": claimed_request([2**40]),
    "2^70-elements-past-int64": claimed_request([2**35, 2**35]),
    "negative-dimension": claimed_request([-7], float_val=[1.0]),
    "255-dimensions": claimed_request([1] * 255, float_val=[1.0]),
    "tensor_content-short-of-the-shape": claimed_request([2**30], tensor_content=b"\0" * 64),
    "1-MiB-string-broadcast-to-10^4": claimed_request(
        [10_000], dtype=types_pb2.DT_STRING, string_val=[b"s" * (1 << 20)]
    ),
    "string-list-claiming-2^40-strings": claimed_request(
        [2**40], dtype=types_pb2.DT_STRING, tensor_content=b"\0" * 64
    ),
}


@pytest.mark.parametrize("request_", CLAIMS.values(), ids=CLAIMS.keys())
def test_claimed_tensor_is_invalid_argument_without_the_allocation(target, predict_stub, request_):
    before = target.rss_bytes()
    for _ in range(REPEATS):
        error = answer(predict_stub.Predict, request_)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert error.details().startswith("tensor parsing error: x"), error.details()
    assert target.rss_bytes() - before < RSS_GROWTH_BYTES


def test_the_41_byte_request_of_issue_12_names_the_limit(predict_stub):
    request = claimed_request([2**25], float_val=[1.0])
    assert len(request.SerializeToString()) <= 41
    error = answer(predict_stub.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "holds 33554432 elements and the request carries 1" in error.details()


def test_legitimate_broadcast_is_still_answered(predict_stub):
    # A scalar broadcast to the batch, as tf.make_tensor_proto(1.0, shape=[1000]) sends it.
    response = predict_stub.Predict(claimed_request([1000], float_val=[1.0]), timeout=10)
    assert list(response.outputs["y"].float_val) == [2.5] * 1000


def test_context_copied_into_many_examples_is_invalid_argument(target):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "classify_x_to_y"
    with_context = request.input.example_list_with_context
    with_context.context.features.feature["pad"].bytes_list.value.append(b"c" * (1 << 20))
    for _ in range(200):  # 200 MiB of copies from a 1 MiB request
        with_context.examples.add()
    channel = grpc.insecure_channel(f"{target.host}:{target.grpc_port}")
    try:
        before = target.rss_bytes()
        error = answer(stubs(channel)[0].Classify, request)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert error.details().startswith("Input is too large:"), error.details()
        assert target.rss_bytes() - before < RSS_GROWTH_BYTES
    finally:
        channel.close()
