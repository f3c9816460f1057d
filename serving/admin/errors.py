"""The one error `tfrelay models` reports, and how a storage failure is worded for it.

Every failure the command expects (a missing or unpublished version, no permission, an
unreachable endpoint, a malformed config) becomes an `AdminError`: one line saying what happened
and what to do next, exit code 2, no traceback. Storage failures are classified by the storage
layer's own `errors.classify`, as the server classifies them.
"""

from __future__ import annotations

from tfrelay.serving.storage import errors as storage_errors
from tfrelay.serving.storage.errors import StorageError
from tfrelay.serving.storage.filesystem import split_url


class AdminError(Exception):
    """An expected failure of `tfrelay models`; the message is the one line the user sees."""


def _root_cause(err: BaseException) -> BaseException:
    """The client library's own exception under our wrappers (StorageError, PushError)."""
    seen = 0
    while err.__cause__ is not None and seen < 10 and not isinstance(err, OSError):
        err = err.__cause__
        seen += 1
    return err


def _permission_hint(url: str) -> str:
    protocol, root = split_url(url)
    if protocol == "s3":
        bucket_name = root.split("/", 1)[0]
        return (
            f"Use credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the pod's IAM role) "
            f"that may list, read and write objects in bucket {bucket_name!r}, then run the same "
            "command again."
        )
    if protocol == "gs":
        bucket_name = root.split("/", 1)[0]
        return (
            "Use a service account (GOOGLE_APPLICATION_CREDENTIALS) that may list, read and "
            f"write objects in bucket {bucket_name!r}, then run the same command again."
        )
    return (
        f"Run as a user that may read and write {root} (and check it is not read-only or "
        "immutable), then run the same command again."
    )


def storage_failure(err: BaseException, doing: str, url: str) -> AdminError:
    """Words a failed storage call as an AdminError.

    Args:
      err: what the call raised (a client exception, a StorageError or a PushError).
      doing: what was being done, e.g. "list the versions in s3://b/m".
      url: the base path or file involved (decides the permission hint).

    Returns:
      The error to raise: permission problems name the credentials to fix, everything else the
      failure's kind and that running the command again is safe.
    """
    kind = err.kind if isinstance(err, StorageError) else storage_errors.classify(err)
    if kind == storage_errors.OTHER:
        kind = storage_errors.classify(_root_cause(err))
    cause = _root_cause(err)
    detail = f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause) else ''}"
    detail = detail.rstrip(": ")
    if kind == storage_errors.DENIED:
        return AdminError(
            f"permission denied: could not {doing} ({detail}). {_permission_hint(url)}"
        )
    if kind == storage_errors.NOT_FOUND:
        return AdminError(
            f"not found: could not {doing} ({detail}). Check the path (bucket, prefix, "
            "S3_ENDPOINT for MinIO) and run the command again."
        )
    return AdminError(
        f"storage failed ({kind}): could not {doing} ({detail}). Nothing half-written is ever "
        "served; check the storage endpoint and credentials and run the same command again."
    )
