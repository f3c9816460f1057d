"""The one storage error type, and the one place that decides what a storage failure was.

Every call `ModelStorage` makes to a file system goes through `StorageCalls`, which turns any
exception into a `StorageError` with a `kind` from `classify`. The manager relies on that type:
a load that failed with a transient `StorageError` (TRANSIENT_KINDS) was not the model's fault,
so it does not use up `--max_num_load_retries` and is retried until storage answers again
(issue 13; TF Serving #1738 turns a long outage into a permanently failed version). NOT_FOUND,
DENIED and OTHER use the budget.
"""

from __future__ import annotations

import errno
import re

from tfrelay.serving.errors import Code, ServingError

# The kinds a storage failure is counted and logged under (the `kind` label of
# `:tfrelay:serving:storage_errors`).
TIMEOUT = "timeout"
CONNECTION = "connection"
SERVER_ERROR = "server_error"
SHORT_READ = "short_read"
MISMATCH = "mismatch"
CHANGED = "changed"
NOT_FOUND = "not_found"
DENIED = "denied"
OTHER = "other"

KINDS = (
    TIMEOUT,
    CONNECTION,
    SERVER_ERROR,
    SHORT_READ,
    MISMATCH,
    CHANGED,
    NOT_FOUND,
    DENIED,
    OTHER,
)


# Kinds that are storage's passing trouble: a load that failed so is retried without using up
# --max_num_load_retries, until storage answers. NOT_FOUND, DENIED (a wrong path or missing
# permission needs an operator, not patience) and OTHER (which includes a bug in tfrelay's own
# call) use the budget like a broken model (issue 13 review).
TRANSIENT_KINDS = frozenset({TIMEOUT, CONNECTION, SERVER_ERROR, SHORT_READ, MISMATCH, CHANGED})


class StorageError(ServingError):
    """Storage could not give us a version's files (or its listing) intact.

    It is a ServingError with code UNAVAILABLE, so it maps at the edges like any other error.

    Attributes:
      kind: one of KINDS.
    """

    def __init__(self, message: str, kind: str = OTHER) -> None:
        super().__init__(Code.UNAVAILABLE, message)
        self.kind = kind

    @property
    def transient(self) -> bool:
        """Whether retrying without a budget makes sense (kind in TRANSIENT_KINDS)."""
        return self.kind in TRANSIENT_KINDS


# Exception class names (anywhere in the cause chain) and the kind they stand for. Matched by
# name so this module needs neither botocore nor aiohttp installed.
_KIND_OF_TYPE_NAME = (
    ("Timeout", TIMEOUT),
    ("IncompleteRead", SHORT_READ),
    ("ResponseStreamingError", SHORT_READ),
    ("ContentLengthError", SHORT_READ),
    ("ClientPayloadError", SHORT_READ),
    ("EndpointConnectionError", CONNECTION),
    ("ConnectionClosedError", CONNECTION),
    ("ServerDisconnectedError", CONNECTION),
    ("ClientConnectorError", CONNECTION),
    ("ClientOSError", CONNECTION),
    ("ConnectionError", CONNECTION),
    ("ProtocolError", CONNECTION),
)
# Error codes object stores send with a 5xx (or 429-like throttling): S3's and GCS's names.
_SERVER_ERROR_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}
)
_DENIED_CODES = frozenset({"AccessDenied", "Forbidden", "InvalidAccessKeyId", "AllBucketsDenied"})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404", "NotFound"})
# Text fallbacks, matched as whole tokens: "(InternalError)" in botocore's message, or a bare
# status code not inside a path or number ("/m/1500/" is not a 500; issue 13 review).
_SERVER_ERROR_TEXT = re.compile(
    r"(?<![\w/.-])(?:500|502|503|504|SlowDown|ServiceUnavailable|InternalError)(?![\w/.-])"
)
_CONNECTION_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
}


def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in seen and len(seen) < 10:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _status_and_code(item: BaseException) -> tuple[int | None, str | None]:
    """The HTTP status and error code an exception carries (botocore's ClientError `response`,
    aiohttp's `status`, gcsfs's HttpError `code`), by attribute so no client is imported."""
    response = getattr(item, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        meta = response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode")
        code = error.get("Code")
        return (status if isinstance(status, int) else None), (str(code) if code else None)
    for attribute in ("status", "code"):
        value = getattr(item, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value, None
    return None, None


def classify(err: BaseException) -> str:
    """Names the kind of a storage failure.

    Exception types and the status codes exceptions carry decide; message text only as a last
    resort and then as whole tokens, since messages contain paths (issue 13 review).

    Args:
      err: whatever a file system call raised.

    Returns:
      One of KINDS.
    """
    if isinstance(err, StorageError):
        return err.kind
    chain = _chain(err)
    for item in chain:
        if isinstance(item, TimeoutError):
            return TIMEOUT
        names = [cls.__name__ for cls in type(item).__mro__]
        for fragment, kind in _KIND_OF_TYPE_NAME:
            if any(fragment in name for name in names):
                return kind
        if isinstance(item, OSError) and item.errno in _CONNECTION_ERRNOS:
            return CONNECTION
    for item in chain:
        status, code = _status_and_code(item)
        if code in _SERVER_ERROR_CODES or (status is not None and (status >= 500 or status == 429)):
            return SERVER_ERROR
        if code in _DENIED_CODES or status in (401, 403):
            return DENIED
        if code in _NOT_FOUND_CODES or status == 404:
            return NOT_FOUND
    for item in chain:
        if isinstance(item, FileNotFoundError):
            return NOT_FOUND
        if isinstance(item, PermissionError):
            return DENIED
    text = " ".join(str(item) for item in chain)
    if _SERVER_ERROR_TEXT.search(text):
        return SERVER_ERROR
    if "AccessDenied" in text:
        return DENIED
    return OTHER


def as_storage_error(err: BaseException, doing: str) -> StorageError:
    """Wraps what a file system call raised as a StorageError.

    Args:
      err: the exception.
      doing: what was being done, e.g. "list s3://bucket/models/m".

    Returns:
      A StorageError whose message names the call and the underlying error.
    """
    if isinstance(err, StorageError):
        return err
    kind = classify(err)
    detail = str(err) or type(err).__name__
    return StorageError(f"Could not {doing} ({kind}): {type(err).__name__}: {detail}", kind)
