"""The gRPC Predict decode's fast paths (issue 14, part 5): the shape cache keyed by the
serialized TensorShapeProto and the alias check without sets give the answers and errors the
uncached paths give, and a client cannot grow the cache without bound (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from support.tensor_protos import claimed_tensor
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.grpc import tensors
from tfrelay.serving.grpc.prediction_service import decode_predict_inputs
from tfrelay.serving.grpc.tensors import proto_to_ndarray
from tfrelay.serving.servables.base import Signature, TensorSpec


def _signature(inputs: list[str]) -> Signature:
    spec = TensorSpec("t:0", types_pb2.DT_FLOAT, None)
    return Signature(
        name="serving_default",
        method_name="tensorflow/serving/predict",
        inputs={alias: spec for alias in inputs},
        outputs={"y": spec},
    )


def test_cached_shape_answers_like_the_first_read() -> None:
    proto = claimed_tensor(types_pb2.DT_FLOAT, [2, 3], float_val=[1, 2, 3, 4, 5, 6])
    first = proto_to_ndarray(proto, "x")
    key = proto.tensor_shape.SerializeToString()
    assert tensors._SHAPES[key] == (2, 3)
    again = proto_to_ndarray(proto, "x")
    np.testing.assert_array_equal(first, again)
    assert again.shape == (2, 3) and again.dtype == np.float32


def test_one_dimensional_shape_is_not_reshaped_but_right() -> None:
    proto = claimed_tensor(types_pb2.DT_INT64, [3], int64_val=[7, 8, 9])
    for _ in range(2):
        array = proto_to_ndarray(proto, "x")
        assert array.shape == (3,) and array.dtype == np.int64
        assert array.tolist() == [7, 8, 9]


def test_cached_negative_shape_is_still_refused() -> None:
    proto = claimed_tensor(types_pb2.DT_FLOAT, [-1, 2], float_val=[1.0])
    for _ in range(2):  # the second read finds the shape in the cache
        with pytest.raises(ServingError) as err:
            proto_to_ndarray(proto, "x")
        assert err.value.code == Code.INVALID_ARGUMENT


def test_cached_padding_limit_still_applies() -> None:
    proto = claimed_tensor(types_pb2.DT_FLOAT, [1 << 25], float_val=[1.0])
    for _ in range(2):
        with pytest.raises(ServingError, match="padding the rest"):
            proto_to_ndarray(proto, "x")


def test_cache_is_bounded_whatever_shapes_a_client_sends() -> None:
    saved = dict(tensors._SHAPES)
    try:
        for size in range(1, tensors._SHAPES_MAX + 500):
            proto_to_ndarray(claimed_tensor(types_pb2.DT_FLOAT, [size], float_val=[1.0]), "x")
        assert len(tensors._SHAPES) <= tensors._SHAPES_MAX
        # Past the bound, shapes are still read right (uncached).
        size = tensors._SHAPES_MAX + 1000
        array = proto_to_ndarray(
            claimed_tensor(types_pb2.DT_FLOAT, [1, size], float_val=[2.0]), "x"
        )
        assert array.shape == (1, size) and float(array[0, -1]) == 2.0
    finally:
        # Other tests in this process expect a cache with room (they still pass without).
        tensors._SHAPES.clear()
        tensors._SHAPES.update(saved)


def test_long_shape_keys_are_not_cached() -> None:
    dims = [1] * 30
    proto = claimed_tensor(types_pb2.DT_FLOAT, dims, float_val=[1.0])
    key = proto.tensor_shape.SerializeToString()
    assert len(key) > tensors._SHAPE_KEY_MAX_BYTES
    assert proto_to_ndarray(proto, "x").shape == tuple(dims)
    assert key not in tensors._SHAPES


def _request(aliases: list[str]) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    for alias in aliases:
        request.inputs[alias].CopyFrom(claimed_tensor(types_pb2.DT_FLOAT, [1], float_val=[1.0]))
    return request


@pytest.mark.parametrize(
    "sent",
    [["a"], ["a", "b", "c"], ["a", "z"], []],
    ids=["missing", "extra", "other", "none"],
)
def test_wrong_aliases_get_the_signature_mismatch_error(sent: list[str]) -> None:
    with pytest.raises(ServingError, match="input size does not match signature") as err:
        decode_predict_inputs(_signature(["a", "b"]), _request(sent))
    assert err.value.code == Code.INVALID_ARGUMENT


def test_right_aliases_decode_and_output_filter_applies() -> None:
    request = _request(["b", "a"])
    inputs, keys = decode_predict_inputs(_signature(["a", "b"]), request)
    assert sorted(inputs) == ["a", "b"] and keys == ["y"]
    request.output_filter.append("nope")
    with pytest.raises(ServingError, match="output tensor alias not found"):
        decode_predict_inputs(_signature(["a", "b"]), request)
