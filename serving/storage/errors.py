"""The one storage error type, and the one place that decides what a storage failure was.

Every call `ModelStorage` makes to a file system goes through `StorageCalls`, which turns any
exception into a `StorageError` with a `kind` from `classify`. The manager relies on that type:
a load that failed with a `StorageError` was not the model's fault, so it does not use up
`--max_num_load_retries` and is retried until storage answers again (issue 13; TF Serving #1738
turns a long outage into a permanently failed version).
"""

from __future__ import annotations

import errno

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


class StorageError(ServingError):
    """Storage could not give us a version's files (or its listing) intact.

    It is a ServingError with code UNAVAILABLE, so it maps at the edges like any other error.

    Attributes:
      kind: one of KINDS.
    """

    def __init__(self, message: str, kind: str = OTHER) -> None:
        super().__init__(Code.UNAVAILABLE, message)
        self.kind = kind


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
_SERVER_ERROR_WORDS = (
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "503",
    "500",
    "502",
    "504",
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


def classify(err: BaseException) -> str:
    """Names the kind of a storage failure.

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
    text = " ".join(str(item) for item in chain)
    if any(word in text for word in _SERVER_ERROR_WORDS):
        return SERVER_ERROR
    for item in chain:
        if isinstance(item, FileNotFoundError):
            return NOT_FOUND
        if isinstance(item, PermissionError) or "AccessDenied" in str(item):
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
