"""TF Serving's REST routing (`http_rest_api_handler.cc`), including its quirks.

The path is matched with its query string, case-insensitively, against TF Serving's two regexes;
the captured method and sub-resource are then compared case-sensitively, as TF Serving does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from tfrelay.serving import errors

_PREDICTION_RE = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?"
    r":(classify|regress|predict)"
)
_STATUS_RE = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/([0-9]+))|(?:/labels/([^/:]+)))?"
    r"(?:/(metadata))?"
)
_V1_RE = re.compile(r"(?i)/v1/.*")
_INT64_MAX = 2**63 - 1
_INT64_DIGITS = len(str(_INT64_MAX))

PREDICT, CLASSIFY, REGRESS, STATUS, METADATA, LIST_MODELS = (
    "predict",
    "classify",
    "regress",
    "status",
    "metadata",
    "list_models",
)


class EmptyBodyError(errors.ServingError):
    """An error TF Serving answers with an empty body (raised while parsing the URL)."""


@dataclass(frozen=True)
class Route:
    """What a `/v1` request addresses.

    Attributes:
      action: one of PREDICT, CLASSIFY, REGRESS, STATUS, METADATA, LIST_MODELS.
      model: the (percent-decoded) model name; "" for LIST_MODELS.
      version: the version in the path, or None.
      label: the (percent-decoded) label in the path, or None.
    """

    action: str
    model: str = ""
    version: int | None = None
    label: str | None = None


def is_v1(path: str) -> bool:
    """Whether TF Serving's REST handler owns this path (others get the HTTP server's 404)."""
    return _V1_RE.fullmatch(path) is not None


def _version(text: str | None) -> int | None:
    if text is None:
        return None
    # absl::SimpleAtoi into an int64 (leading zeros allowed). More than 19 significant digits
    # never fit; checking the length first also keeps int() off 5,000-digit strings, which
    # Python refuses with ValueError (a 500 before: issue 12).
    digits = text.lstrip("0") or "0"
    if len(digits) > _INT64_DIGITS or int(digits) > _INT64_MAX:
        raise EmptyBodyError(
            errors.Code.INVALID_ARGUMENT,
            f"Failed to convert version: {errors.excerpt(text)} to numeric.",
        )
    return int(digits)


def _malformed(method: str, path_and_query: str) -> errors.ServingError:
    return errors.invalid_argument(f"Malformed request: {method} {path_and_query}")


def route(method: str, path_and_query: str) -> Route:
    """Resolves a `/v1` request.

    Args:
      method: the HTTP method.
      path_and_query: the raw path plus `?query` when present (TF Serving matches both).

    Returns:
      The route.

    Raises:
      ServingError: INVALID_ARGUMENT "Malformed request: ..." or "Missing model name in
        request."; EmptyBodyError for a version that overflows int64.
    """
    if method == "POST":
        match = _PREDICTION_RE.fullmatch(path_and_query)
        if match is None:
            raise _malformed(method, path_and_query)
        name, version, label, action = match.groups()
        if action not in (PREDICT, CLASSIFY, REGRESS):
            raise _malformed(method, path_and_query)
        return Route(action, unquote(name), _version(version), unquote(label) if label else None)
    if method == "GET":
        if path_and_query == "/v1/models":
            # tfrelay addition: TF Serving answers 400 "Missing model name" here (#795).
            return Route(LIST_MODELS)
        match = _STATUS_RE.fullmatch(path_and_query)
        if match is None:
            raise _malformed(method, path_and_query)
        name, version, label, subresource = match.groups()
        if not name:
            raise errors.invalid_argument("Missing model name in request.")
        action = METADATA if subresource == "metadata" else STATUS
        return Route(action, unquote(name), _version(version), unquote(label) if label else None)
    raise _malformed(method, path_and_query)
