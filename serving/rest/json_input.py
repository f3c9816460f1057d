"""JSON request bodies -> tensors, with TF Serving's rules and messages (`util/json_tensor.cc`).

Two paths give the same answers. The exact path walks the JSON like TF Serving does and produces
its error messages. The fast path lets numpy convert a whole numeric batch at once; it is taken
only when the conversion provably agrees with the exact path (no booleans or nulls in the body,
the inferred numpy kind fits the signature's dtype, values within range) and otherwise hands over
to the exact path, which then either accepts the value or names what is wrong with it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
from tensorflow.core.framework import types_pb2

from tfrelay.serving import errors
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.servables.base import TensorSpec

_FLOAT32_MAX = float(np.finfo(np.float32).max)
_FLOAT64_MAX = float(np.finfo(np.float64).max)
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_UINT32 = (0, 2**32 - 1)
_UINT64 = (0, 2**64 - 1)
# Largest integers float32/float64 hold exactly (json_tensor.cc IsLosslessDecimal's kMaxInt).
_MAX_EXACT_INT = {types_pb2.DT_FLOAT: 2**24 - 1, types_pb2.DT_DOUBLE: 2**53 - 1}

# TensorFlow's DataTypeString names, used in messages.
DTYPE_NAMES = {
    types_pb2.DT_FLOAT: "float",
    types_pb2.DT_DOUBLE: "double",
    types_pb2.DT_INT32: "int32",
    types_pb2.DT_UINT8: "uint8",
    types_pb2.DT_INT16: "int16",
    types_pb2.DT_INT8: "int8",
    types_pb2.DT_STRING: "string",
    types_pb2.DT_COMPLEX64: "complex64",
    types_pb2.DT_INT64: "int64",
    types_pb2.DT_BOOL: "bool",
    types_pb2.DT_QINT8: "qint8",
    types_pb2.DT_QUINT8: "quint8",
    types_pb2.DT_QINT32: "qint32",
    types_pb2.DT_BFLOAT16: "bfloat16",
    types_pb2.DT_QINT16: "qint16",
    types_pb2.DT_QUINT16: "quint16",
    types_pb2.DT_UINT16: "uint16",
    types_pb2.DT_COMPLEX128: "complex128",
    types_pb2.DT_HALF: "half",
    types_pb2.DT_RESOURCE: "resource",
    types_pb2.DT_VARIANT: "variant",
    types_pb2.DT_UINT32: "uint32",
    types_pb2.DT_UINT64: "uint64",
}

NUMPY_DTYPES = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_STRING: object,
}

_RAPIDJSON_PHRASES = (
    ("Expecting value", "Invalid value."),
    ("Expecting property name", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Expecting ',' delimiter", "Missing a comma or ']' after an array element."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid control character", "Invalid encoding in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
    ("Extra data", "The document root must not be followed by other values."),
)


# Deepest nesting a tensor value may have: numpy's most dimensions (32 in numpy 1.x; TF allows
# 254, but a deeper value could never become an array here). TF Serving's rapidjson has no
# limit; the conversion recurses per level, and a 5xx must never answer it (issue 12).
MAX_TENSOR_RANK = 32
# orjson's own nesting limit: deeper documents raise "Recursion limit reached".
_ORJSON_MAX_DEPTH = 1024


class RequestFormat(enum.Enum):
    """Row (`instances` -> `predictions`) or columnar (`inputs` -> `outputs`)."""

    ROW = "row"
    COLUMNAR = "columnar"


def dtype_name(dtype: int) -> str:
    return DTYPE_NAMES.get(dtype, types_pb2.DataType.Name(dtype).lower().removeprefix("dt_"))


# -- JSON text ---------------------------------------------------------------------------------


def parse_body(body: bytes) -> dict[str, Any]:
    """Parses a request body as a JSON object (NaN and Infinity allowed, as in TF Serving).

    Raises:
      ServingError: INVALID_ARGUMENT with TF Serving's "JSON Parse error" or "Is not object".
    """
    if not body:
        raise errors.invalid_argument("JSON Parse error: The document is empty")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        if str(err).startswith("Recursion limit reached"):
            raise _too_deep(_ORJSON_MAX_DEPTH) from None
        # orjson rejects the NaN/Infinity tokens TF Serving accepts; the standard library takes
        # them, and otherwise explains the syntax error.
        # orjson also refuses a number too big for a double, which rapidjson refuses too, and
        # the standard library would turn into a Python int (past 4,300 digits a ValueError
        # and a 500: issue 12). Long digit runs are found first, so the common fallback (NaN)
        # keeps the standard library's C int parsing.
        long_ints = _long_integers(body)
        try:
            if long_ints:
                doc = json.loads(body, parse_int=_rapidjson_int)
            else:
                doc = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            # rapidjson stops at the first error: a number too big before the syntax error wins.
            end = err.start if isinstance(err, UnicodeDecodeError) else err.pos
            big = _number_too_big_offset(long_ints, end)
            if big is not None:
                raise _number_too_big(big) from None
            raise errors.invalid_argument(_parse_error_message(body, err)) from None
        except RecursionError:
            # The standard library's scanner recurses per level and stops at Python's
            # recursion limit (~1000 levels) with RecursionError, formerly a 500 (issue 12).
            raise _too_deep(_ORJSON_MAX_DEPTH) from None
        # Python 3.12+ bounds the C scanner by the C stack instead (~10,000 levels on 3.13), so
        # deeper documents than orjson's limit parse there: refuse them as orjson would, on both
        # stacks (issue 14). The C-speed count skips the walk for all but bracket-heavy bodies.
        if body.count(b"[") + body.count(b"{") > _ORJSON_MAX_DEPTH and _deeper_than(
            doc, _ORJSON_MAX_DEPTH
        ):
            raise _too_deep(_ORJSON_MAX_DEPTH) from None
        big = _number_too_big_offset(long_ints, len(body))
        # orjson also refuses an escaped lone surrogate ("\udc00"), which the standard library
        # turns into a str that cannot be encoded later (a 500, found by tests/fuzz): refuse it
        # as rapidjson does. Only this fallback path pays for the scan.
        offset = lone_surrogate_offset(body)
        if offset is not None and (big is None or offset < big):
            raise errors.invalid_argument(
                f"JSON Parse error: The surrogate pair in string is invalid. at offset: {offset}"
            ) from None
        if big is not None:
            raise _number_too_big(big) from None
    if not isinstance(doc, dict):
        raise errors.invalid_argument(f"JSON Value: {value_to_string(doc)} Is not object")
    return doc


def _deeper_than(doc: Any, limit: int) -> bool:
    """Whether `doc` nests lists and objects more than `limit` levels (iterative: no recursion)."""
    if type(doc) is not list and type(doc) is not dict:
        return False
    pending: list[tuple[Any, int]] = [(doc, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        children = value.values() if type(value) is dict else value
        for child in children:
            if type(child) is list or type(child) is dict:
                pending.append((child, depth + 1))
    return False


# A \uXXXX escape of a UTF-16 surrogate, not itself escaped (an even run of backslashes before).
_SURROGATE_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u[dD]([89abAB]|[c-fC-F])[0-9a-fA-F]{2}")


def lone_surrogate_offset(body: bytes) -> int | None:
    """The offset of the first escaped surrogate in `body` that is not half of a pair.

    Args:
      body: JSON text.

    Returns:
      The byte offset of the offending escape, or None when every surrogate escape is paired.
    """
    pending_high: int | None = None  # end offset of a high surrogate awaiting its low half
    high_start = 0
    for match in _SURROGATE_ESCAPE.finditer(body):
        start = match.end() - 6
        is_high = match.group(1) in b"89abAB"
        if pending_high is not None:
            if is_high or start != pending_high:
                return high_start
            pending_high = None
            continue
        if not is_high:
            return start
        pending_high, high_start = match.end(), start
    return high_start if pending_high is not None else None


# A string (skipped whole, so digits inside it are not numbers) or the integer part of a
# number with 20 or more digits (fewer always fit rapidjson's uint64). Not preceded by a digit,
# '.', 'e', '+' or '-', so fraction and exponent digits are not integer parts.
_LONG_INTEGER = re.compile(rb'"(?:[^"\\]|\\.)*"|(?<![0-9.eE+\-])(-?)([1-9][0-9]{19,})')
# rapidjson's bound before it multiplies by 10 once more (DBL_MAX / 10, reader.h ParseNumber).
_RAPIDJSON_DOUBLE_BOUND = 1.7976931348623157e307
_UINT64_MAX = 2**64 - 1
# Every digit to b"0", every other byte to b" ": a run of 20 digits becomes _TWENTY_DIGITS.
_DIGITS_TO_ZERO = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_TWENTY_DIGITS = b"0" * 20


def _long_integers(body: bytes) -> list[tuple[int, bool, bytes]]:
    """The integer parts of 20 or more digits in JSON text, outside strings.

    Exact for any prefix of `body` that is valid JSON so far (the only part that is used).

    Returns:
      (offset of the number, negative, digits) for each, in order.
    """
    # Most bodies have no such run: a translate and a substring search (~10 ms for 10 MB)
    # rule that out before the tokenizing regex (~170 ms for 10 MB).
    if _TWENTY_DIGITS not in body.translate(_DIGITS_TO_ZERO):
        return []
    return [
        (match.start(), bool(match.group(1)), match.group(2))
        for match in _LONG_INTEGER.finditer(body)
        if match.group(2) is not None
    ]


def rapidjson_number_too_big(digits: bytes, negative: bool) -> bool:
    """Whether rapidjson refuses an integer part as "Number too big to be stored in double".

    rapidjson accumulates the digits in a uint64 (up to 2**64 - 1, or 2**63 when negative),
    then in a double, and fails when the double reaches DBL_MAX / 10 with digits left
    (reader.h ParseNumber). The same IEEE arithmetic is replayed here.

    Args:
      digits: the integer part's ASCII digits, without the sign.
      negative: the number had a minus sign.
    """
    limit = 2**63 if negative else _UINT64_MAX
    value = 0
    index = 0
    for index, char in enumerate(digits):  # noqa: B007 - index is used after the loop
        following = value * 10 + char - 48
        if following > limit:
            break
        value = following
    else:
        return False
    double = float(value)
    for char in digits[index:]:
        if double >= _RAPIDJSON_DOUBLE_BOUND:
            return True
        double = double * 10 + (char - 48)
    return False


def _number_too_big_offset(long_ints: list[tuple[int, bool, bytes]], end: int) -> int | None:
    """The offset of the first number before `end` that rapidjson cannot store, if any."""
    for offset, negative, digits in long_ints:
        if offset >= end:
            return None
        if rapidjson_number_too_big(digits, negative):
            return offset
    return None


def _rapidjson_int(text: str) -> int | float:
    """An integer as rapidjson stores it: past int64/uint64 it is a double (as orjson does)."""
    if len(text) < 20:
        return int(text)
    if len(text) <= 21:
        value = int(text)
        if -(2**63) <= value <= _UINT64_MAX:
            return value
    # float() of the text, not of int(text): past 4,300 digits int() raises ValueError.
    return float(text)


def _number_too_big(offset: int) -> ServingError:
    # rapidjson's kParseErrorNumberTooBig, reported at the number's start.
    return errors.invalid_argument(
        f"JSON Parse error: Number too big to be stored in double. at offset: {offset}"
    )


def _too_deep(depth: int) -> ServingError:
    return errors.invalid_argument(
        f"JSON Parse error: The document is nested deeper than {depth} levels"
    )


def _parse_error_message(body: bytes, err: Exception) -> str:
    if isinstance(err, UnicodeDecodeError):
        return f"JSON Parse error: Invalid encoding in string. at offset: {err.start}"
    if not body.strip():
        return f"JSON Parse error: The document is empty. at offset: {len(body)}"
    phrase = "Invalid value."
    for python_phrase, rapidjson_phrase in _RAPIDJSON_PHRASES:
        if err.msg.startswith(python_phrase):
            phrase = rapidjson_phrase
            break
    return f"JSON Parse error: {phrase} at offset: {err.pos}"


def value_to_string(value: Any, limit: int = errors.EXCERPT_CHARS) -> str:
    """TF Serving's JsonValueToString: pretty JSON, top-level decimals printed as float32.

    Only the first `limit` characters are produced (then "..."): strings, lists and objects
    are cut to `limit + 1` characters or items and nesting to `limit + 1` levels before
    printing, which leaves the first `limit` characters as they were, so quoting a 20 MB
    document or a 100 MB string costs microseconds, not a 120 MB message (issue 12).

    Args:
      value: a parsed JSON value.
      limit: the most characters of it quoted.

    Returns:
      The text TF Serving embeds in its messages, cut to `limit` characters.
    """
    if isinstance(value, float) and (not math.isfinite(value) or abs(value) <= _FLOAT32_MAX):
        return format_decimal(value, np.float32)
    text = json.dumps(
        _shortened(value, limit + 1, limit + 1), indent=4, ensure_ascii=False, allow_nan=True
    )
    return errors.excerpt(text, limit)


def _shortened(value: Any, keep: int, depth: int) -> Any:
    """`value` with every string, list and object cut to `keep` characters or items, and
    nothing below `depth` levels (each cut is past the first `keep - 1` printed characters)."""
    if isinstance(value, str):
        return value[:keep]
    if isinstance(value, list):
        if depth <= 0:
            return []
        return [_shortened(item, keep, depth - 1) for item in value[:keep]]
    if isinstance(value, dict):
        if depth <= 0:
            return {}
        shortened = {}
        for key, item in value.items():
            if len(shortened) >= keep:
                break
            shortened[key[:keep]] = _shortened(item, keep, depth - 1)
        return shortened
    return value


def format_decimal(value: float, dtype: type = np.float32) -> str:
    """TF Serving's WriteDecimal: `%.6g` if it round-trips in `dtype`, else 9 or 17 digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = f"{value:.6g}"
    if dtype(float(text)) != dtype(value):
        text = f"{value:.9g}" if dtype is np.float32 else f"{value:.17g}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def json_type(value: Any) -> str:
    """rapidjson's type name for a parsed value (JsonTypeString)."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def is_b64_object(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and "b64" in value
        and isinstance(value["b64"], str)
    )


def decode_b64(value: dict) -> bytes:
    try:
        return base64.b64decode(value["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise errors.invalid_argument("Unable to base64 decode") from None


# -- exact conversion (json_tensor.cc) ----------------------------------------------------------


def _type_error(value: Any, dtype: int) -> ServingError:
    return errors.invalid_argument(
        f"JSON Value: {value_to_string(value)} Type: {json_type(value)} is not of expected "
        f"type: {dtype_name(dtype)}"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int_in(value: Any, bounds: tuple[int, int]) -> bool:
    return type(value) is int and bounds[0] <= value <= bounds[1]


def _convert_value(value: Any, dtype: int) -> Any:
    """AddValueToTensor: one JSON leaf -> one Python value of the tensor's dtype."""
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if not _is_number(value):
            raise _type_error(value, dtype)
        max_exact = _MAX_EXACT_INT[dtype]
        limit = _FLOAT32_MAX if dtype == types_pb2.DT_FLOAT else _FLOAT64_MAX
        if isinstance(value, int) and _INT64[0] <= value <= _UINT64[1]:
            lossless = abs(value) <= max_exact
        else:
            number = float(value)
            lossless = not math.isfinite(number) or -limit <= number <= limit
        if not lossless:
            raise errors.invalid_argument(
                f"Cannot convert JSON value: {value_to_string(value)} to {dtype_name(dtype)} "
                "without loss of precision."
            )
        return float(value)
    if dtype in (types_pb2.DT_INT32, types_pb2.DT_INT16, types_pb2.DT_INT8, types_pb2.DT_UINT8):
        if not _int_in(value, _INT32):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_INT64:
        if not _int_in(value, _INT64):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_UINT32:
        if not _int_in(value, _UINT32):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_UINT64:
        if not _int_in(value, _UINT64):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_STRING:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict):
            if not is_b64_object(value):
                raise errors.invalid_argument(
                    f"JSON Value: {value_to_string(value)} not formatted correctly for base64 data"
                )
            return decode_b64(value)
        raise _type_error(value, dtype)
    raise ServingError(
        Code.UNIMPLEMENTED,
        f"Conversion of JSON Value: {value_to_string(value)} to type: {dtype_name(dtype)}",
    )


def _dense_shape(value: Any) -> list[int]:
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    if len(shape) > MAX_TENSOR_RANK:
        raise _too_many_dimensions(len(shape))  # before _fill recurses once per level
    return shape


def _too_many_dimensions(rank: int) -> ServingError:
    return errors.invalid_argument(
        f"JSON Value is nested deeper than {MAX_TENSOR_RANK} levels (a tensor of rank {rank})"
    )


def _fill(value: Any, level: int, shape: list[int], dtype: int, out: list) -> None:
    rank = len(shape)
    if isinstance(value, list):
        if level >= rank:
            raise errors.invalid_argument(
                f"Encountered list at unexpected level: {level} expected < {rank}"
            )
        if len(value) != shape[level]:
            raise errors.invalid_argument(
                f"Encountered list at unexpected size: {len(value)} at level: {level} expected "
                f"size: {shape[level]}"
            )
        for item in value:
            _fill(item, level + 1, shape, dtype, out)
        return
    if level != rank:
        raise errors.invalid_argument(
            f"JSON Value: {value_to_string(value)} found at incorrect level: {level + 1} in the "
            f"JSON DOM. Expected at level: {rank}"
        )
    out.append(_convert_value(value, dtype))


def _to_array(values: list, shape: list[int], dtype: int) -> np.ndarray:
    if len(shape) > MAX_TENSOR_RANK:  # instances: the batch dimension adds one
        raise _too_many_dimensions(len(shape))
    np_dtype = NUMPY_DTYPES[dtype]
    if np_dtype is object:
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    if dtype in (types_pb2.DT_INT16, types_pb2.DT_INT8, types_pb2.DT_UINT8):
        # TF Serving stores these in int_val and narrows with a C cast; wrap the same way.
        return np.array(values, dtype=np.int64).astype(np_dtype).reshape(shape)
    return np.array(values, dtype=np_dtype).reshape(shape)


def exact_tensor(value: Any, dtype: int) -> np.ndarray:
    """One JSON value -> one tensor, with TF Serving's checks (shape from the first elements)."""
    shape = _dense_shape(value)
    values: list = []
    _fill(value, 0, shape, dtype, values)
    return _to_array(values, shape, dtype)


def _shape_string(shape: tuple[int, ...] | list[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _status_string(error: ServingError) -> str:
    # absl::Status::ToString(), which TF Serving embeds in wrapped messages.
    return f"{error.code.name}: {error.message}"


# -- fast conversion --------------------------------------------------------------------------


def _fast_strings(value: Any) -> np.ndarray | None:
    """A flat list of JSON strings as a DT_STRING tensor (anything else: the exact path)."""
    if type(value) is not list or not value or not all(type(v) is str for v in value):
        return None
    array = np.empty(len(value), dtype=object)
    array[:] = [v.encode("utf-8") for v in value]
    return array


def _fast_tensor(value: Any, dtype: int) -> np.ndarray | None:
    """numpy's conversion when it provably matches `exact_tensor`, else None."""
    np_dtype = NUMPY_DTYPES.get(dtype)
    if np_dtype is object:
        return _fast_strings(value)
    if np_dtype is None or np_dtype is np.bool_:
        return None
    try:
        array = np.array(value)
    except (ValueError, OverflowError, RecursionError):
        return None  # ragged, out of range or too deep: the exact path explains it
    if array.ndim > MAX_TENSOR_RANK:
        # numpy 2 takes 64 dimensions, numpy 1 took 32: the exact path refuses past 32 on both
        # stacks (issue 14).
        return None
    kind = array.dtype.kind
    if kind not in "if" or array.size == 0:
        return None
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        magnitude = np.abs(array)
        max_exact = _MAX_EXACT_INT[dtype]
        if kind == "i":
            if magnitude.max() > max_exact:
                return None
        else:
            # Integers beyond max_exact mixed into a float list are errors in TF Serving but
            # indistinguishable after numpy's conversion: let the exact path judge them.
            big = magnitude > max_exact
            if big.any() and (
                not np.isfinite(array[big]).all()
                or (array[big] == np.floor(array[big])).any()
                or (dtype == types_pb2.DT_FLOAT and (magnitude[big] > _FLOAT32_MAX).any())
            ):
                return None
        return array.astype(np_dtype, copy=False)
    if kind != "i":
        return None
    low, high = {
        types_pb2.DT_INT64: _INT64,
        types_pb2.DT_UINT32: _UINT32,
        types_pb2.DT_UINT64: (0, _INT64[1]),
    }.get(dtype, _INT32)
    if array.min() < low or array.max() > high:
        return None
    return array.astype(np_dtype, copy=False)


def tensor_from_json(value: Any, dtype: int, fast: bool) -> np.ndarray:
    """Converts one JSON value to a tensor of `dtype` (fast path when allowed)."""
    if fast:
        array = _fast_tensor(value, dtype)
        if array is not None:
            return array
    return exact_tensor(value, dtype)


# -- large numeric bodies (issue 12) ------------------------------------------------------------

# `{"instances": [` at the start of a body (whitespace allowed where JSON allows it).
_INSTANCES_HEAD = re.compile(rb'[ \t\r\n]*\{[ \t\r\n]*"instances"[ \t\r\n]*:[ \t\r\n]*\[')
_LEADING_BRACKETS = re.compile(rb"(?:[ \t\r\n]*\[)*")
_JSON_SPACE = b" \t\r\n"
# The only bytes of nested lists of plain JSON numbers (no true/false/null, NaN, strings).
_NUMERIC_BYTES = _JSON_SPACE + b"0123456789+-.eE,[]"
# Piece size: ~250k numbers, parsed and converted in ~10 ms while holding the GIL.
PIECE_BYTES = 1 << 20


def numeric_instances_frame(body: bytes) -> tuple[int, int] | None:
    """Where the elements of a `{"instances": [...]}` body are, if that is the whole body.

    Cheap enough for the event loop: a regex at the start and a scan from the end.

    Args:
      body: the request body.

    Returns:
      (start, end) offsets of the array's elements; None for any other document.
    """
    head = _INSTANCES_HEAD.match(body)
    if head is None:
        return None
    close = body.rfind(b"}")
    if close < 0 or body[close + 1 :].strip(_JSON_SPACE):
        return None
    end = body.rfind(b"]", head.end(), close)
    if end < 0 or body[end + 1 : close].strip(_JSON_SPACE) or end == head.end():
        return None
    return head.end(), end


def _instance_separator(body: bytes, start: int) -> re.Pattern[bytes]:
    # The instances' rank r is the number of "[" the first one opens with; in a regular tensor
    # r closing brackets and a comma can only end an instance (fewer close an inner list).
    rank = _LEADING_BRACKETS.match(body, start).group().count(b"[")  # type: ignore[union-attr]
    return re.compile(rb"\]" + rb"[ \t\r\n]*\]" * (rank - 1) + rb"[ \t\r\n]*," if rank else rb",")


def numeric_instances_tensor(body: bytes, frame: tuple[int, int], dtype: int) -> np.ndarray | None:
    """The instances of a numeric body as one tensor, parsed and converted ~1 MiB at a time.

    Parsed whole, a 40 MB body of 10^7 numbers made 10^7 Python floats (+800 MB) and held the
    GIL for ~0.5 s in two C calls, stalling every client even from a pool thread. Each piece
    goes through the same fast conversion as a whole body (`_fast_tensor`), so the result is
    the one the general path gives; whatever that conversion would not accept as is (a
    non-number, bad syntax, ragged or mixed shapes, a value the exact path must judge) returns
    None.

    Args:
      body: the request body.
      frame: from numeric_instances_frame.
      dtype: the signature input's dtype.

    Returns:
      The batch of instances, or None (then the general path parses the whole body).
    """
    start, end = frame
    separator = _instance_separator(body, start)
    arrays: list[np.ndarray] = []
    while start < end:
        stop = end
        if start + PIECE_BYTES < end:
            match = separator.search(body, start + PIECE_BYTES, end)
            if match is not None:
                stop = match.end() - 1  # the comma between two instances
        piece = body[start:stop]
        if piece.translate(None, _NUMERIC_BYTES) or piece.count(b"[") != piece.count(b"]"):
            return None
        try:
            values = orjson.loads(b"[" + piece + b"]")
        except orjson.JSONDecodeError:
            return None
        array = _fast_tensor(values, dtype)
        if array is None or (arrays and array.shape[1:] != arrays[0].shape[1:]):
            return None
        arrays.append(array)
        start = stop + 1
    if not arrays:
        return None
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


# -- predict requests ---------------------------------------------------------------------------


def signature_name(doc: Mapping[str, Any]) -> str:
    """The request's `signature_name` ("" when absent).

    Raises:
      ServingError: INVALID_ARGUMENT when it is not a string.
    """
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise errors.invalid_argument(
            f"JSON Value: {value_to_string(dict(doc))} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


def _format_error(doc: Mapping[str, Any], message: str) -> ServingError:
    return errors.invalid_argument(f"JSON Value: {value_to_string(dict(doc))} {message}")


def predict_inputs(
    doc: Mapping[str, Any], inputs: Mapping[str, TensorSpec], body: bytes = b""
) -> tuple[dict[str, np.ndarray], RequestFormat]:
    """Converts a predict body's `instances` or `inputs` to tensors for a signature.

    Args:
      doc: the parsed body.
      inputs: the signature's inputs (their dtypes decide the conversion).
      body: the raw body; the fast path is used only when it holds no true/false/null token.

    Returns:
      ({input alias: array}, the request format).

    Raises:
      ServingError: INVALID_ARGUMENT (or UNIMPLEMENTED for an unsupported dtype) with TF
        Serving's message.
    """
    fast = bool(body) and b"true" not in body and b"false" not in body and b"null" not in body
    has_instances = "instances" in doc
    has_inputs = "inputs" in doc
    if has_instances:
        if has_inputs:
            raise _format_error(
                doc,
                "Not formatted correctly expecting only one of 'inputs' or 'instances' keys "
                "to exist ",
            )
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise _format_error(doc, "Excepting 'instances' to be an list/array")
        if not instances:
            raise _format_error(doc, "No values in 'instances' array")
        return _row_inputs(instances, inputs, fast), RequestFormat.ROW
    if has_inputs:
        return _columnar_inputs(doc["inputs"], inputs, fast), RequestFormat.COLUMNAR
    raise errors.invalid_argument("Missing 'inputs' or 'instances' key")


def _row_inputs(
    instances: list, inputs: Mapping[str, TensorSpec], fast: bool
) -> dict[str, np.ndarray]:
    first = instances[0]
    objects = isinstance(first, dict) and not is_b64_object(first)
    if not objects and len(inputs) > 1:
        raise errors.invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    if fast:
        if not objects:
            ((name, spec),) = inputs.items()
            array = _fast_tensor(instances, spec.dtype)
            if array is not None:
                return {name: array}
        elif all(type(item) is dict and item.keys() == inputs.keys() for item in instances):
            columns: dict[str, np.ndarray] = {}
            for name, spec in inputs.items():
                array = _fast_tensor([item[name] for item in instances], spec.dtype)
                if array is None:
                    break
                columns[name] = array
            else:
                return columns
    return _exact_instances(instances, inputs, objects)


class _Column:
    """One input's values across instances (json_tensor.cc AddInstanceItem)."""

    def __init__(self, dtype: int) -> None:
        self.dtype = dtype
        self.size: int | None = None
        self.item_shape: list[int] = []
        self.values: list = []

    def add(self, item: Any) -> None:
        shape = _dense_shape(item)
        values: list = []
        _fill(item, 0, shape, self.dtype, values)
        if self.size is None:
            self.size, self.item_shape = len(values), shape
        elif len(values) != self.size:
            raise errors.invalid_argument(
                f"Expecting tensor size: {self.size} but got: {len(values)}"
            )
        elif shape != self.item_shape:
            raise errors.invalid_argument(
                f"Expecting shape {_shape_string(self.item_shape)} but got: {_shape_string(shape)}"
            )
        self.values.extend(values)

    def tensor(self, batch: int) -> np.ndarray:
        return _to_array(self.values, [batch, *self.item_shape], self.dtype)


def _wrapped(error: ServingError, where: str) -> ServingError:
    return ServingError(
        error.code,
        f"Failed to process element: {where} of 'instances' list. Error: {_status_string(error)}",
    )


def _exact_instances(
    instances: list, inputs: Mapping[str, TensorSpec], objects: bool
) -> dict[str, np.ndarray]:
    if not objects:
        ((name, spec),) = inputs.items()
        column = _Column(spec.dtype)
        for index, item in enumerate(instances):
            if isinstance(item, dict) and not is_b64_object(item):
                raise errors.invalid_argument(
                    f"Expecting value/list but got object at item {index} of input list"
                )
            try:
                column.add(item)
            except ServingError as err:
                raise _wrapped(err, str(index)) from None
        return {name: column.tensor(len(instances))}

    columns = {name: _Column(spec.dtype) for name, spec in inputs.items()}
    expected = ",".join(sorted(inputs))
    for index, item in enumerate(instances):
        if not isinstance(item, dict) or is_b64_object(item):
            raise errors.invalid_argument(
                f"Expecting object but got list at item {index} of input list"
            )
        for key, value in item.items():
            try:
                if key not in columns:
                    raise errors.invalid_argument(
                        f"JSON object: does not have named input: {errors.excerpt(key)}"
                    )
                columns[key].add(value)
            except ServingError as err:
                raise _wrapped(err, f"{index} key: {errors.excerpt(key)}") from None
        if item.keys() != columns.keys():
            raise errors.invalid_argument(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{value_to_string(item)} keys must be equal to: {expected}"
            )
    return {name: column.tensor(len(instances)) for name, column in columns.items()}


def _columnar_inputs(
    value: Any, inputs: Mapping[str, TensorSpec], fast: bool
) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or is_b64_object(value):
        if len(inputs) > 1:
            raise errors.invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                "required as per tensorinfo_map"
            )
        ((name, spec),) = inputs.items()
        return {name: tensor_from_json(value, spec.dtype, fast)}
    tensors: dict[str, np.ndarray] = {}
    for name, spec in inputs.items():
        if name not in value:
            raise errors.invalid_argument(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = tensor_from_json(value[name], spec.dtype, fast)
    return tensors
