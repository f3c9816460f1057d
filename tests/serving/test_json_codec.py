"""The REST JSON codec against TF Serving's json_tensor_test expectations."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2

from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.rest import json_input, json_output
from tfrelay.serving.rest.json_input import RequestFormat
from tfrelay.serving.servables.base import TensorSpec

# The pipeline relies on this code (the Validator and the pusher run it on the pipeline stack), so
# `make test` runs these tests on both stacks (issue 14).
pytestmark = pytest.mark.both_stacks

FLOAT = TensorSpec("x:0", types_pb2.DT_FLOAT, (-1,))


def _parse(body: str, inputs=None):
    doc = json_input.parse_body(body.encode())
    return json_input.predict_inputs(doc, inputs or {"x": FLOAT}, body.encode())


@pytest.mark.parametrize(
    "body",
    [
        '{"instances": [1, 2.0, 3, 4, 5.003, 0.007, 0.0]}',
        '{"instances": [[1, 2], [3, 4], [5, 6]]}',
        '{"inputs": [[1.5, 2.5]]}',
        '{"inputs": 3.25}',
        '{"instances": [{"x": [1.0]}, {"x": [2.0]}]}',
    ],
)
def test_fast_and_exact_paths_agree(body):
    doc = json_input.parse_body(body.encode())
    fast, _ = json_input.predict_inputs(doc, {"x": FLOAT}, body.encode())
    exact, _ = json_input.predict_inputs(doc, {"x": FLOAT}, b"")  # no body: exact path only
    np.testing.assert_array_equal(fast["x"], exact["x"])
    assert fast["x"].dtype == exact["x"].dtype == np.float32


@pytest.mark.parametrize(
    ("body", "dtype", "message"),
    [
        ('{"instances": [16777217]}', types_pb2.DT_FLOAT, "without loss of precision"),
        ('{"instances": [9007199254740993]}', types_pb2.DT_DOUBLE, "without loss of precision"),
        ('{"instances": [true]}', types_pb2.DT_FLOAT, "Type: True is not of expected type: float"),
        ('{"instances": [null]}', types_pb2.DT_FLOAT, "Type: Null is not of expected type: float"),
        ('{"instances": [1.0]}', types_pb2.DT_INT32, "is not of expected type: int32"),
        ('{"instances": [2147483648]}', types_pb2.DT_INT32, "is not of expected type: int32"),
        ('{"instances": [1]}', types_pb2.DT_BOOL, "is not of expected type: bool"),
        (
            '{"instances": [[1, 2], [3, 4], [5, 6, 7]]}',
            types_pb2.DT_INT32,
            "Expecting tensor size: 2 but got: 3",
        ),
        (
            '{"instances": [[[1, 2]], [[3], [4]]]}',
            types_pb2.DT_INT32,
            "Expecting shape [1,2] but got: [2,1]",
        ),
        ('{"instances": [{"b64": "!!"}]}', types_pb2.DT_STRING, "Unable to base64 decode"),
        ('{"instances": [{"c": 1}]}', types_pb2.DT_STRING, "does not have named input: c"),
        ('{"instances": [1]}', types_pb2.DT_HALF, "Conversion of JSON Value: 1 to type: half"),
    ],
)
def test_exact_errors(body, dtype, message):
    with pytest.raises(ServingError) as error:
        _parse(body, {"x": TensorSpec("x:0", dtype, None)})
    assert message in error.value.message
    expected_code = Code.UNIMPLEMENTED if dtype == types_pb2.DT_HALF else Code.INVALID_ARGUMENT
    assert error.value.code == expected_code


def test_base64_and_string_inputs():
    inputs, _ = _parse(
        '{"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]}',
        {"s": TensorSpec("s:0", types_pb2.DT_STRING, None)},
    )
    assert inputs["s"].tolist() == [b"hello", b"world"]
    spec = {
        "int_tensor": TensorSpec("a:0", types_pb2.DT_INT32, None),
        "str_tensor": TensorSpec("b:0", types_pb2.DT_STRING, None),
        "bin_tensor": TensorSpec("c:0", types_pb2.DT_STRING, None),
    }
    inputs, fmt = _parse(
        '{"inputs": {"int_tensor": [[[1,2],[3,4],[5,6]]], "str_tensor": ["foo","bar"], '
        '"bin_tensor": {"b64": "aGVsbG8="}}}',
        spec,
    )
    assert fmt is RequestFormat.COLUMNAR
    assert inputs["int_tensor"].shape == (1, 3, 2)
    assert inputs["str_tensor"].tolist() == [b"foo", b"bar"]
    assert inputs["bin_tensor"].shape == () and inputs["bin_tensor"].item() == b"hello"


@pytest.mark.parametrize(
    ("value", "printed"),
    [
        (9000000.0, 9e06),
        (999999.0, 999999.0),
        (0.5, 0.5),
        (0.0003, 0.0003),
        (0.00003, 3e-05),
        (555557.5, 555557.5),
        (1 / 3, 0.333333343),
        (16777216.0, 16777216.0),
        (0.1, 0.1),
        (2.5, 2.5),
        (-0.0, -0.0),
    ],
)
def test_float32_outputs_carry_tf_servings_decimal_values(value, printed):
    body = json_output.predict_response({"y": np.array([value], np.float32)}, RequestFormat.ROW)
    assert json.loads(body)["predictions"] == [printed]


def test_double_outputs_use_six_or_seventeen_digits():
    values = json_output.tf_decimal_values(np.array([0.1, 1 / 3], np.float64))
    assert values.tolist() == [0.1, 1 / 3]


def test_non_finite_outputs_are_bare_tokens():
    body = json_output.predict_response(
        {"y": np.array([[math.nan, math.inf], [3.0, -math.inf]], np.float32)}, RequestFormat.ROW
    )
    assert body == b'{"predictions":[[NaN,Infinity],[3.0,-Infinity]]}'


def test_row_outputs_by_alias_and_bytes_suffix():
    body = json_output.predict_response(
        {
            "str_tensor_bytes": np.array([b"hello", b"world"], dtype=object),
            "int": np.array([1, 2], np.int64),
        },
        RequestFormat.ROW,
    )
    assert json.loads(body) == {
        "predictions": [
            {"int": 1, "str_tensor_bytes": {"b64": "aGVsbG8="}},
            {"int": 2, "str_tensor_bytes": {"b64": "d29ybGQ="}},
        ]
    }


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"a": np.array(1.0, np.float32)}, "Tensor name: a has no shape information "),
        (
            {"a": np.zeros(2, np.float32), "b": np.zeros(3, np.float32)},
            "Tensor name: b has inconsistent batch size: 3 expecting: 2",
        ),
        ({}, "Cannot convert empty tensor map to JSON"),
    ],
)
def test_row_format_errors(outputs, message):
    with pytest.raises(ServingError, match=message.rstrip()) as error:
        json_output.predict_response(outputs, RequestFormat.ROW)
    assert error.value.message == message


def test_zero_batch_gives_empty_predictions():
    body = json_output.predict_response({"y": np.zeros((0, 1), np.float32)}, RequestFormat.ROW)
    assert json.loads(body) == {"predictions": []}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_and_large_arrays_give_the_same_tf_decimal_values(dtype):
    # Small arrays are formatted value by value, large ones vectorized: both must be TF's values.
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            rng.random(300) * 10.0 ** rng.integers(-8, 8, 300),
            np.array([9e6, 555557.5, 1 / 3, 0.1, -0.0, 3e-5]),
        ]
    ).astype(dtype)
    vectorized = json_output.tf_decimal_values(values)
    one_by_one = np.concatenate(
        [json_output.tf_decimal_values(values[i : i + 4]) for i in range(0, len(values), 4)]
    )
    np.testing.assert_array_equal(vectorized, one_by_one)
