"""Tensors and results -> JSON response bodies, with TF Serving's shapes and number values.

TF Serving prints a float32 as `%.6g` when that round-trips and as `%.9g` otherwise (doubles:
`%.6g` or `%.17g`). We compute those decimal *values* for whole arrays with numpy and let orjson
print them, so a client parses exactly the numbers TF Serving sends (only whitespace and exponent
spelling differ: `9000000.0` where TF Serving writes `9e+06`). NaN and Infinity are written as
the bare tokens TF Serving uses.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from tfrelay.serving import errors
from tfrelay.serving.api.classify_regress import Class
from tfrelay.serving.rest.json_input import RequestFormat, dtype_name

_BYTES_SUFFIX = "_bytes"
_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def _round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """Rounds finite non-zero float64 values to `digits` significant decimal digits.

    Dividing or multiplying an integer by an exact power of ten is correctly rounded in IEEE
    arithmetic, so the result is the float64 nearest to the decimal `%.{digits}g` prints.
    """
    exponent = np.floor(np.log10(np.abs(values)))
    decimals = (digits - 1) - exponent
    scale = 10.0 ** np.abs(decimals)
    return np.where(
        decimals >= 0,
        np.round(values * scale) / scale,
        np.round(values / scale) * scale,
    )


# Below this many values, formatting each in Python beats numpy's fixed per-call overhead.
_SMALL_ARRAY = 32
_FLOAT32 = struct.Struct("f")


def _tf_decimal(value: float, single: bool) -> float:
    """One value as TF Serving prints it: `%.6g` if that round-trips, else `%.9g`/`%.17g`."""
    if value != value or value in (math.inf, -math.inf) or value == 0.0:
        return value
    short = float(f"{value:.6g}")
    if single:
        if _FLOAT32.unpack(_FLOAT32.pack(short))[0] == value:
            return short
        return float(f"{value:.9g}")
    return short if short == value else value


# Large outputs are rounded and written in blocks of this many values: whole, 10^7 floats kept
# ~10 float64 temporaries alive (+750 MB) and held the GIL for 150 ms per numpy call, stalling
# every other client even from a pool thread (issue 12).
_BLOCK = 1 << 16


def tf_decimal_values(array: np.ndarray) -> np.ndarray:
    """The float64 values of the decimals TF Serving prints for a float32/float64 array."""
    if array.size <= _SMALL_ARRAY:
        single = array.dtype == np.float32
        decimals = [_tf_decimal(v, single) for v in array.reshape(-1).tolist()]
        return np.array(decimals, dtype=np.float64).reshape(array.shape)
    if array.size > _BLOCK:
        flat = array.reshape(-1)
        rounded = np.empty(flat.shape, dtype=np.float64)
        for start in range(0, flat.size, _BLOCK):
            rounded[start : start + _BLOCK] = _tf_decimal_block(flat[start : start + _BLOCK])
        return rounded.reshape(array.shape)
    return _tf_decimal_block(array)


def _tf_decimal_block(array: np.ndarray) -> np.ndarray:
    values = array.astype(np.float64)
    regular = np.isfinite(values) & (values != 0)
    if not regular.any():
        return values
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        short = _round_significant(np.where(regular, values, 1.0), 6)
        round_trips = short.astype(array.dtype) == array
        if array.dtype == np.float32:
            long = _round_significant(np.where(regular, values, 1.0), 9)
        else:
            long = values
    return np.where(regular, np.where(round_trips, short, long), values)


def _json_ready(alias: str, array: np.ndarray) -> Any:
    """An output tensor as something orjson (or json, for NaN/Infinity) can write."""
    kind = array.dtype.kind
    if array.dtype in (np.float32, np.float64):
        return tf_decimal_values(array)
    if kind in "iub":
        return array
    if kind in "OSU":
        encode = _b64_object if alias.endswith(_BYTES_SUFFIX) else _text
        return _map_nested(encode, array.tolist())
    raise errors.invalid_argument(
        f"Failed to write JSON value for tensor type: {dtype_name_of(array)}"
    )


def _text(value: Any) -> str:
    return _as_bytes(value).decode("utf-8", "replace")


def _b64_object(value: Any) -> dict[str, str]:
    return {"b64": base64.b64encode(_as_bytes(value)).decode("ascii")}


def _map_nested(function, values: Any) -> Any:
    """`function` applied to every leaf of nested lists (a tensor's `tolist()`)."""
    if isinstance(values, list):
        return [_map_nested(function, v) for v in values]
    return function(values)


def dtype_name_of(array: np.ndarray) -> str:
    names = {np.dtype(np.float16): "half", np.dtype(np.complex64): "complex64"}
    return names.get(array.dtype, str(array.dtype))


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _has_non_finite(value: Any) -> bool:
    return (
        isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all()
    )


def _blockwise(key: str, array: np.ndarray) -> bytes | None:
    """`{key: array}` as TF Serving writes it, rounded and written in blocks of rows.

    The same bytes as rounding the whole array and writing it at once, without its float64
    copy (80 MB for 10^7 outputs) or a GIL hold longer than a block (see _BLOCK).

    Returns:
      The JSON, or None when the array is small, not numeric, or holds NaN/Infinity (which
      the general writer spells as TF Serving does).
    """
    rounded = array.dtype in (np.float32, np.float64)
    if (
        array.ndim == 0
        or array.size <= _BLOCK
        or not (rounded or array.dtype.kind in "iub")
        or (rounded and not np.isfinite(array).all())
    ):
        return None
    rows = max(1, _BLOCK // max(1, array[0].size))
    parts = [b'{"%s":[' % key.encode()]
    for start in range(0, len(array), rows):
        block = array[start : start + rows]
        if rounded:
            block = _tf_decimal_block(block)
        parts.append(orjson.dumps(block, option=_ORJSON_OPTIONS)[1:-1])
        parts.append(b",")
    parts[-1] = b"]}"
    return b"".join(parts)  # the only copy of the whole


def _dumps(document: Any, special_floats: bool) -> bytes:
    if not special_floats:
        return orjson.dumps(document, option=_ORJSON_OPTIONS)
    # orjson writes NaN/Infinity as null; TF Serving writes the bare tokens, as json does.
    return json.dumps(_to_python(document), allow_nan=True, separators=(",", ":")).encode()


def _to_python(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _to_python(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_python(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def predict_response(outputs: Mapping[str, np.ndarray], request_format: RequestFormat) -> bytes:
    """Writes a Predict response: `predictions` (row) or `outputs` (columnar).

    Args:
      outputs: {output alias: array}.
      request_format: the format of the request.

    Returns:
      The JSON body.

    Raises:
      ServingError: INVALID_ARGUMENT for outputs TF Serving cannot write in that format.
    """
    if not outputs:
        raise errors.invalid_argument("Cannot convert empty tensor map to JSON")
    aliases = sorted(outputs)
    if len(aliases) == 1:
        columnar = request_format is RequestFormat.COLUMNAR
        body = _blockwise("outputs" if columnar else "predictions", outputs[aliases[0]])
        if body is not None:
            return body
    ready = {alias: _json_ready(alias, outputs[alias]) for alias in aliases}
    special = any(_has_non_finite(v) for v in ready.values())
    if request_format is RequestFormat.COLUMNAR:
        body = ready[aliases[0]] if len(aliases) == 1 else ready
        return _dumps({"outputs": body}, special)

    batch = None
    for alias in aliases:
        array = outputs[alias]
        if array.ndim == 0:
            raise errors.invalid_argument(f"Tensor name: {alias} has no shape information ")
        if batch is None:
            batch = array.shape[0]
        elif array.shape[0] != batch:
            raise errors.invalid_argument(
                f"Tensor name: {alias} has inconsistent batch size: {array.shape[0]} "
                f"expecting: {batch}"
            )
    if len(aliases) == 1:
        return _dumps({"predictions": ready[aliases[0]]}, special)
    rows = [{alias: ready[alias][i] for alias in aliases} for i in range(batch or 0)]
    return _dumps({"predictions": rows}, special)


def classify_response(results: Sequence[Sequence[Class]]) -> bytes:
    """Writes `{"results": [[[label, score], ...], ...]}`.

    Raises:
      ServingError: INVALID_ARGUMENT for an empty result, as TF Serving.
    """
    if not results:
        raise errors.invalid_argument("Cannot convert empty ClassificationResults to JSON")
    scores = np.array([[c.score for c in row] for row in results], dtype=np.float32)
    values = tf_decimal_values(scores).tolist() if scores.size else []
    body = [
        [[c.label.decode("utf-8", "replace"), values[i][j]] for j, c in enumerate(row)]
        for i, row in enumerate(results)
    ]
    return _dumps({"results": body}, not np.isfinite(scores).all())


def regress_response(values: Sequence[float]) -> bytes:
    """Writes `{"results": [v, ...]}`.

    Raises:
      ServingError: INVALID_ARGUMENT for an empty result, as TF Serving.
    """
    if not values:
        raise errors.invalid_argument("Cannot convert empty RegressionResults to JSON")
    array = np.array(values, dtype=np.float32)
    return _dumps({"results": tf_decimal_values(array)}, not np.isfinite(array).all())


def error_body(message: str) -> bytes:
    """TF Serving's error body: `{"error": "<message>"}`."""
    return orjson.dumps({"error": message})


__all__ = [
    "classify_response",
    "dtype_name",
    "error_body",
    "predict_response",
    "regress_response",
    "tf_decimal_values",
]
