"""The REST JSON codec's limits (issue 12): deep nesting is a 400, never a RecursionError; error
messages quote a short excerpt of the value, with TF Serving's wording for short values; a
version of thousands of digits gets TF Serving's "Failed to convert version"."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow.core.framework import types_pb2

from tfrelay.serving.errors import EXCERPT_CHARS, Code, ServingError, excerpt
from tfrelay.serving.rest import json_input, json_output, routes
from tfrelay.serving.servables.base import TensorSpec

FLOAT_INPUT = {"x": TensorSpec("x", types_pb2.DT_FLOAT, None)}


def _nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b"[" * depth + leaf + b"]" * depth


def test_a_document_nested_100000_deep_is_a_400(capsys):
    with pytest.raises(ServingError) as caught:
        json_input.parse_body(b'{"instances": ' + _nested(100_000) + b"}")
    assert caught.value.http_status == 400
    assert "nested deeper than 1024 levels" in caught.value.message


def test_a_deep_document_on_the_nan_path_is_a_400_not_a_recursion_error():
    # NaN makes orjson refuse it, so the standard library parses it and recurses per level.
    with pytest.raises(ServingError) as caught:
        json_input.parse_body(b'{"instances": ' + _nested(5000, b"NaN") + b"}")
    assert caught.value.http_status == 400


def test_a_tensor_nested_deeper_than_numpy_allows_is_a_400():
    doc = json_input.parse_body(b'{"instances": ' + _nested(json_input.MAX_TENSOR_RANK + 1) + b"}")
    with pytest.raises(ServingError) as caught:
        json_input.predict_inputs(doc, FLOAT_INPUT, b"")
    assert caught.value.http_status == 400
    assert "nested deeper than 32 levels" in caught.value.message


def test_a_tensor_of_the_largest_rank_converts():
    depth = json_input.MAX_TENSOR_RANK - 1  # plus the batch dimension
    body = b'{"instances": [' + _nested(depth) + b"]}"
    inputs, _ = json_input.predict_inputs(json_input.parse_body(body), FLOAT_INPUT, body)
    assert inputs["x"].shape == (1,) * (depth + 1)


def test_a_20_mb_document_in_an_error_is_quoted_in_a_few_hundred_characters():
    body = b'{"instances": [1.0], "inputs": [' + b"2.5," * 5_000_000 + b"3.0]}"
    doc = json_input.parse_body(body)
    started = time.perf_counter()
    with pytest.raises(ServingError) as caught:
        json_input.predict_inputs(doc, FLOAT_INPUT, body)
    elapsed = time.perf_counter() - started
    message = caught.value.message
    assert message.startswith('JSON Value: {\n    "instances": [\n        1.0\n    ],')
    assert message.endswith(
        "... Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist "
    )
    assert len(message) < EXCERPT_CHARS + 200
    assert elapsed < 0.5, elapsed  # formatting the whole document took seconds


def test_short_values_keep_tf_servings_exact_message():
    assert (
        json_input.value_to_string({"a": [1, 2]})
        == '{\n    "a": [\n        1,\n        2\n    ]\n}'
    )
    assert json_input.value_to_string(1.5) == "1.5"


def test_a_huge_b64_value_is_not_echoed_whole():
    value = {"b64": "A" * 10_000_000, "extra": 1}
    with pytest.raises(ServingError) as caught:
        json_input.exact_tensor([value], types_pb2.DT_STRING)
    assert "not formatted correctly for base64 data" in caught.value.message
    assert len(caught.value.message) < EXCERPT_CHARS + 100


@pytest.mark.parametrize("digits", ["9" * 5000, "1" + "0" * 19, "9223372036854775808"])
def test_a_version_that_overflows_int64_gets_tf_servings_400_with_an_empty_body(digits):
    with pytest.raises(routes.EmptyBodyError) as caught:
        routes.route("POST", f"/v1/models/m/versions/{digits}:predict")
    assert caught.value.http_status == 400
    assert caught.value.message.startswith("Failed to convert version: ")
    assert len(caught.value.message) < EXCERPT_CHARS + 60


def test_versions_with_leading_zeros_parse_as_tf_serving_does():
    assert routes.route("GET", "/v1/models/m/versions/" + "0" * 5000 + "7").version == 7
    assert routes.route("GET", "/v1/models/m/versions/9223372036854775807").version == 2**63 - 1


def test_large_flat_instances_still_take_the_fast_path():
    body = b'{"instances": [' + b"1.5," * 99_999 + b"1.5]}"
    inputs, _ = json_input.predict_inputs(json_input.parse_body(body), FLOAT_INPUT, body)
    assert inputs["x"].dtype == np.float32 and inputs["x"].shape == (100_000,)


def _large_body(instance: bytes, pretty: bool = False) -> bytes:
    count = 2 * json_input.PIECE_BYTES // len(instance) + 1
    separator = b",\n  " if pretty else b","
    return b' {\n"instances" : [' + separator.join([instance] * count) + b"] }\n"


@pytest.mark.parametrize(
    "body",
    [
        _large_body(b"1.5,2,-3e2,4.0E-1"),
        _large_body(b"7,8"),
        _large_body(b" 1 ,\n2\t,3.25"),
        _large_body(b"[1.5,2,3]"),
        _large_body(b"[[1,2],[3,4.5]]"),
        _large_body(b"[ [1, 2], [3, 4] ]", pretty=True),
    ],
    ids=["floats", "ints", "spaces", "rank-1", "rank-2", "pretty"],
)
def test_a_large_numeric_body_converted_in_pieces_equals_the_whole_conversion(body):
    frame = json_input.numeric_instances_frame(body)
    assert frame is not None
    instances = json_input.parse_body(body)["instances"]
    for dtype in (types_pb2.DT_FLOAT, types_pb2.DT_INT64):
        whole = json_input._fast_tensor(instances, dtype)
        pieces = json_input.numeric_instances_tensor(body, frame, dtype)
        if whole is None:
            assert pieces is None
        else:
            assert pieces is not None and pieces.dtype == whole.dtype
            assert pieces.shape == whole.shape and np.array_equal(pieces, whole)


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [1.0, true, 2.0]}',
        b'{"instances": [1.0, NaN]}',
        b'{"instances": [1.0,, 2.0]}',
        b'{"instances": [[1.0], [2.0, 3.0]]}',
        b'{"instances": [[1.0], 2.0]}',
        b'{"instances": ["a"]}',
        b'{"instances": [{"x": 1.0}]}',
        b'{"instances": [1.0], "signature_name": "x"}',
        b'{"inputs": [1.0]}',
        b'{"instances": []}',
        _large_body(b"[1,2]")[:-10] + b"[1,2,3]] }",
    ],
)
def test_bodies_the_piecewise_path_must_not_judge_go_to_the_general_path(body):
    frame = json_input.numeric_instances_frame(body)
    assert (
        frame is None
        or json_input.numeric_instances_tensor(body, frame, types_pb2.DT_FLOAT) is None
    )


@pytest.mark.parametrize(
    "array",
    [
        np.random.default_rng(0).random(200_001, dtype=np.float32),
        np.random.default_rng(1).random((70_001, 3)),
        np.arange(150_000, dtype=np.int64).reshape(50_000, 3),
    ],
    ids=["float32", "float64-2d", "int64-2d"],
)
def test_a_large_output_written_in_blocks_is_byte_identical(array):
    ready = json_output._json_ready("y", array)
    whole = json_output._dumps({"predictions": ready}, False)
    assert json_output.predict_response({"y": array}, json_input.RequestFormat.ROW) == whole
    columnar = json_output.predict_response({"y": array}, json_input.RequestFormat.COLUMNAR)
    assert columnar == json_output._dumps({"outputs": ready}, False)
    # The blockwise rounding equals the one-shot rounding.
    assert np.array_equal(ready, json_output._tf_decimal_block(array))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=30), children, max_size=8)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, limit=st.integers(min_value=1, max_value=60))
def test_a_quoted_value_is_the_excerpt_of_its_whole_printing(value, limit):
    if isinstance(value, float):
        return  # top-level decimals are printed as float32 (TF Serving's special case)
    whole = json.dumps(value, indent=4, ensure_ascii=False, allow_nan=True)
    assert json_input.value_to_string(value, limit) == excerpt(whole, limit)


@pytest.mark.parametrize(
    "body",
    [
        rb'{"instances": ["\udc00"]}',
        rb'{"inputs": {"x": "\ud800"}}',
        rb'{"examples": [{"\udc00": 1}]}',
        rb'{"examples": [{"f": "\ud800 \udc00"}], "x": NaN}',
    ],
)
def test_escaped_lone_surrogate_is_a_parse_error_not_a_500(body):
    # Found by tests/fuzz (was UnicodeEncodeError -> 500): rapidjson's wording.
    with pytest.raises(ServingError, match="The surrogate pair in string is invalid") as info:
        json_input.parse_body(body)
    assert info.value.code is Code.INVALID_ARGUMENT


def test_escaped_surrogate_pair_and_escaped_backslash_still_parse():
    doc = json_input.parse_body(rb'{"instances": ["\ud83d\ude00", "\\ud800"], "x": NaN}')
    assert doc["instances"] == ["\U0001f600", "\\ud800"]


def test_rest_context_copied_into_every_example_is_bounded_as_on_grpc():
    from tfrelay.serving.api.classify_regress import MAX_CONTEXT_COPY_BYTES
    from tfrelay.serving.rest import json_examples

    context = {"blob": {"b64": "QUFB" * 100_000}}  # ~300 kB serialized
    examples = [{"x": 1.0}] * (MAX_CONTEXT_COPY_BYTES // 300_000 + 10)
    with pytest.raises(ServingError, match="Input is too large: its .*-byte context") as info:
        json_examples.serialized_examples({"context": context, "examples": examples}, "classify")
    assert info.value.code is Code.INVALID_ARGUMENT
    small = json_examples.serialized_examples({"context": context, "examples": examples[:3]}, "x")
    assert len(small) == 3


@pytest.mark.parametrize(
    ("body", "offset"),
    [
        # Past Python's 4,300-digit int() limit: a ValueError and a 500 before (issue 12).
        (b'{"instances": [' + b"1" * 5000 + b"]}", 15),
        (b'{"instances": [1.0, -' + b"9" * 400 + b"]}", 20),
        # orjson refuses NaN, so the standard library parses this one.
        (b'{"instances": [NaN, ' + b"1" * 5000 + b"]}", 20),
        (b'{"instances": [' + b"2" + b"0" * 308 + b"]}", 15),  # 2e308 > DBL_MAX
    ],
)
def test_an_integer_too_big_for_a_double_is_rapidjsons_400(body, offset):
    with pytest.raises(ServingError) as caught:
        json_input.parse_body(body)
    assert caught.value.http_status == 400
    assert caught.value.message == (
        f"JSON Parse error: Number too big to be stored in double. at offset: {offset}"
    )


def test_the_first_error_in_the_document_is_the_one_reported():
    body = b'{"instances": [1 x ' + b"1" * 5000 + b"]}"
    with pytest.raises(ServingError) as caught:
        json_input.parse_body(body)
    assert caught.value.message.endswith("after an array element. at offset: 17")
    body = b'{"instances": [' + b"1" * 5000 + b" x]}"
    with pytest.raises(ServingError) as caught:
        json_input.parse_body(body)
    assert caught.value.message.endswith("stored in double. at offset: 15")


def test_huge_digit_runs_inside_strings_or_fractions_are_not_numbers_too_big():
    digits = b"1" * 5000
    doc = json_input.parse_body(b'{"a": "' + digits + b'", "instances": [NaN, 0.' + digits + b"]}")
    assert doc["a"] == digits.decode()
    assert doc["instances"][1] == pytest.approx(0.1111111)


@pytest.mark.parametrize("nan", [b"", b"NaN, "])  # orjson's path, and the standard library's
def test_integers_past_64_bits_are_doubles_as_in_rapidjson(nan):
    doc = json_input.parse_body(b'{"instances": [' + nan + b"1" + b"0" * 300 + b"]}")
    assert doc["instances"][-1] == 1e300 and isinstance(doc["instances"][-1], float)
    doc = json_input.parse_body(b'{"instances": [' + nan + b"18446744073709551615]}")
    assert doc["instances"][-1] == 2**64 - 1 and isinstance(doc["instances"][-1], int)


@pytest.mark.parametrize(
    ("dtype", "message"),
    [
        (
            types_pb2.DT_FLOAT,
            "Cannot convert JSON value: 1e+300 to float without loss of precision.",
        ),
        (
            types_pb2.DT_INT64,
            "JSON Value: 1e+300 Type: Number is not of expected type: int64",
        ),
    ],
)
def test_a_301_digit_integer_in_predict_gets_tf_servings_400(dtype, message):
    # It fits a double (rapidjson stores it as one), not float32 or int64.
    body = b'{"inputs": [1' + b"0" * 300 + b"]}"
    with pytest.raises(ServingError) as caught:
        json_input.predict_inputs(
            json_input.parse_body(body), {"x": TensorSpec("x", dtype, None)}, body
        )
    assert caught.value.http_status == 400
    assert caught.value.message == message


def test_rapidjsons_double_accumulation_bound():
    assert not json_input.rapidjson_number_too_big(b"1" + b"0" * 308, False)  # 1e308 fits
    assert json_input.rapidjson_number_too_big(b"1" + b"0" * 309, False)
    assert not json_input.rapidjson_number_too_big(b"9223372036854775808", True)  # -2**63
