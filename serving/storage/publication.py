"""The bucket contract's publication rules, apart from the storage calls: the version numbering,
the push record's states and encoding, the idempotency key, the file order that keeps a version
unpublished until it is complete, and what a publication found and did. Pure functions and
values (one reads the local model directory), shared by the writer (`bucket_writer.py`), the
pusher and the CLI.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tfrelay.serving.storage import bucket

logger = logging.getLogger(__name__)

VERSIONING_NEXT_INTEGER = "next_integer"
VERSIONING_UNIX_TIMESTAMP = "unix_timestamp"
VERSIONING_CHOICES = (VERSIONING_NEXT_INTEGER, VERSIONING_UNIX_TIMESTAMP)

# The push record's "status": it is first written as a claim on the version directory (so that a
# retry of an interrupted push can find it) and rewritten once every other file is uploaded.
STATUS_UPLOADING = "uploading"
STATUS_UPLOADED = "uploaded"

# Partially written local files carry this in their name, so a resumed push can clear them.
TEMP_INFIX = ".tfrelay-tmp-"


class PushError(RuntimeError):
    """A push could not be completed; the message says what happened and what to do next."""


# -- the model's files ----------------------------------------------------------------------------


def list_model_files(model_dir: str) -> dict[str, int]:
    """Lists a local model directory.

    Args:
      model_dir: a local directory holding a SavedModel or a TFLite model.

    Returns:
      {relative posix path: size in bytes} for every file, except a push record the directory may
      carry from an earlier push (the writer writes its own).

    Raises:
      PushError: the directory is missing, empty or has no publish marker.
    """
    if not os.path.isdir(model_dir):
        raise PushError(
            f"The model directory {model_dir} does not exist: the Model artifact should hold the "
            "exported SavedModel in Format-Serving/ (or at its root)."
        )
    files: dict[str, int] = {}
    for directory, _, names in os.walk(model_dir):
        for name in names:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, model_dir).replace(os.sep, "/")
            if relative == bucket.PUSH_RECORD_FILE:
                logger.warning("Not pushing %s: the pusher writes a fresh push record", path)
                continue
            files[relative] = os.path.getsize(path)
    if not any(marker in files for marker in bucket.PUBLISH_MARKERS):
        found = ", ".join(sorted(files)[:8]) or "no files"
        raise PushError(
            f"{model_dir} is not a servable model: it has no {' or '.join(bucket.PUBLISH_MARKERS)} "
            f"(found: {found}). Export the model with tf.saved_model.save or a TFLite converter."
        )
    return files


def idempotency_key(run_id: str | None, checksum: str) -> str:
    """Identifies one run's push of one model: a retry of the run has the same key.

    Args:
      run_id: what retries of one push share (the pipeline run id), or None.
      checksum: the model's `bucket.model_checksum`.

    Returns:
      "<run id>/<checksum>", or the checksum alone without a run id.
    """
    return f"{run_id}/{checksum}" if run_id else checksum


def upload_order(files: Mapping[str, int]) -> list[str]:
    """The order in which a version's files are written, push record included.

    Every file that is not a publish marker goes first, then the push record, then the markers,
    the preferred one (`saved_model.pb`) last. Because the record lists every file including each
    marker, a model carrying both `model.tflite` and `saved_model.pb` is not complete for a reader
    until the last of them lands, whichever it prefers.

    Args:
      files: the model's listing.

    Returns:
      Relative paths, in write order.
    """
    markers = [marker for marker in bucket.PUBLISH_MARKERS if marker in files]
    others = sorted(path for path in files if path not in markers)
    return [*others, bucket.PUSH_RECORD_FILE, *reversed(markers)]


def next_version(
    versions: Mapping[int, str],
    versioning: str,
    clock: Callable[[], float],
    high_water_mark: int = 0,
) -> int:
    """The number a new version takes.

    Every directory counts, published or not, so a new version never lands in a directory another
    writer is still filling, and the server's "latest" policy picks it; and so does every number
    used before (the high-water mark), so a deleted number is never reused (issue 13).

    Args:
      versions: the base path's version directories, {number: name}.
      versioning: VERSIONING_NEXT_INTEGER or VERSIONING_UNIX_TIMESTAMP.
      clock: seconds since the epoch.
      high_water_mark: the highest number ever used here.

    Returns:
      The version number.
    """
    highest = max(max(versions, default=0), high_water_mark)
    if versioning == VERSIONING_UNIX_TIMESTAMP:
        return max(int(clock()), highest + 1)
    return highest + 1


def encode_record(record: Mapping) -> bytes:
    """A push record (or the high-water mark) as written: sorted, indented JSON and a newline."""
    return json.dumps(record, indent=2, sort_keys=True).encode() + b"\n"


def human_bytes(size: float) -> str:
    """`size` bytes for a progress line, e.g. "1.5 MB" (decimal units)."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


# -- what a publication found and did ---------------------------------------------------------


@dataclass(frozen=True)
class VersionState:
    """One version directory as the writer sees it.

    Attributes:
      number: the version number.
      name: its directory name.
      markers: the publish markers present (empty: not published).
      record: its push record when it has a valid one, else None.
    """

    number: int
    name: str
    markers: tuple[str, ...]
    record: dict | None

    @property
    def published(self) -> bool:
        return bool(self.markers)


@dataclass(frozen=True)
class Publication:
    """What `BucketWriter.publish` did.

    Attributes:
      version: the version that now holds the model.
      destination: that version directory's URL.
      record: the push record that describes it (the existing one when `already_published`).
      already_published: True when the newest published version already held this model.
      resumed: True when an interrupted attempt with the same idempotency key was completed.
      deleted_versions: versions removed by retention, oldest first.
    """

    version: int
    destination: str
    record: dict
    already_published: bool = False
    resumed: bool = False
    deleted_versions: tuple[int, ...] = ()
