"""Publishing a model directory as a new version under a model's base path (the bucket contract).

This is the BucketPusher's side effect, free of TFX types so it can be called and tested on its
own. `push_model` does, in order:

1. List the model's files, compute their checksum and the push's idempotency key (pipeline run id
   + checksum).
2. Scan the base path from the newest version down to the newest *published* one (a version is
   published once its publish marker, `saved_model.pb` or `model.tflite`, is present).
3. If the newest published version holds the same checksum, stop: the model is already served.
4. If an unpublished version above it carries a push record with the same idempotency key, it is
   an interrupted attempt of this same run: resume into it. Otherwise claim a new version
   (`next_integer`: one more than the highest version present *or ever used*; `unix_timestamp`:
   now, bumped above both). "Ever used" is the base path's high-water mark
   (`<base_path>/.tfrelay_high_water_mark`, `bucket.HIGH_WATER_MARK_FILE`): a number once
   published is never published again, also after its version was deleted for a rollback, so
   no server can mistake new files for an old version (issue 13).
5. Raise the high-water mark to the claimed number, then write the push record with status
   "uploading" (the claim a retry looks for), then every file that is not a publish marker,
   then the final push record, then the publish marker(s) last.
6. Apply retention (`keep_last`): delete the oldest published versions beyond the newest N,
   marker first.

Credentials are never arguments: the file system comes from `filesystem_for`, which reads the
environment (AWS_* / S3_ENDPOINT / S3_USE_HTTPS for s3://, GOOGLE_APPLICATION_CREDENTIALS for
gs://). Only one pusher should write a given base path at a time: object stores offer no atomic
"create directory", so two concurrent pushes of different models could pick the same number
(local file systems are protected by an exclusive mkdir).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import posixpath
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import fsspec

from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.filesystem import filesystem_for, split_url
from tfrelay.version import __version__

logger = logging.getLogger(__name__)

VERSIONING_NEXT_INTEGER = "next_integer"
VERSIONING_UNIX_TIMESTAMP = "unix_timestamp"
VERSIONING_CHOICES = (VERSIONING_NEXT_INTEGER, VERSIONING_UNIX_TIMESTAMP)

# Protocols as `split_url` names them (it maps file://, local:// and plain paths to "file").
SUPPORTED_PROTOCOLS = ("file", "s3", "gs")

# Which of the pusher's inputs a version holds (the push record's "selected_input").
SELECTED_MODEL = "model"
SELECTED_FALLBACK = "fallback_model"

# The push record's "status": it is first written as a claim on the version directory (so that a
# retry of an interrupted push can find it) and rewritten once every other file is uploaded.
STATUS_UPLOADING = "uploading"
STATUS_UPLOADED = "uploaded"

# Partially written local files carry this in their name, so a resumed push can clear them.
_TEMP_INFIX = ".tfrelay-tmp-"
# Local version numbers taken by a concurrent writer between our listing and our mkdir.
_MAX_CLAIM_ATTEMPTS = 100


class PushError(RuntimeError):
    """A push could not be completed; the message says what happened and what to do next."""


@dataclass(frozen=True)
class Lineage:
    """Which pipeline run pushed the model (each None when the orchestrator does not say).

    Attributes:
      pipeline_name: the pipeline's name.
      pipeline_run_id: the run's id; part of the idempotency key.
      component_id: the pusher's node id in the pipeline.
    """

    pipeline_name: str | None = None
    pipeline_run_id: str | None = None
    component_id: str | None = None


@dataclass(frozen=True)
class PushRequest:
    """What to push where.

    Attributes:
      model_dir: the SavedModel (or TFLite model) directory: a local path, or a URL that
        `filesystem_for` reads (it is downloaded to a temporary directory first).
      base_path: the model's base path, the directory holding the integer version directories.
      model_name: recorded in the push record.
      keep_last: 0 keeps every version; N > 0 keeps only the newest N published versions.
      versioning: VERSIONING_NEXT_INTEGER or VERSIONING_UNIX_TIMESTAMP.
      lineage: the pipeline run, for the push record and the idempotency key.
      source_model_uri: the Model artifact's URI, for the push record.
      metrics: the validator's metrics, for the push record.
      blessed: whether a validator blessed the model; None when none was consulted.
      selected_input: which of the pusher's inputs this is: SELECTED_MODEL, or SELECTED_FALLBACK
        when the model was not blessed and the pusher fell back.
      selection_reason: why this input was pushed, in one sentence.
    """

    model_dir: str
    base_path: str
    model_name: str
    keep_last: int = 0
    versioning: str = VERSIONING_NEXT_INTEGER
    lineage: Lineage = field(default_factory=Lineage)
    source_model_uri: str = ""
    metrics: Mapping[str, object] = field(default_factory=dict)
    blessed: bool | None = None
    selected_input: str = SELECTED_MODEL
    selection_reason: str = ""


@dataclass(frozen=True)
class PushResult:
    """What a push did.

    Attributes:
      version: the version that now holds the model.
      destination: that version directory's URL.
      record: the push record that describes it.
      reason: one human-readable sentence on what happened.
      already_pushed: True when the newest published version already held this model.
      resumed: True when an interrupted attempt of the same run was completed.
      deleted_versions: versions removed by retention, oldest first.
    """

    version: int
    destination: str
    record: dict
    reason: str
    already_pushed: bool = False
    resumed: bool = False
    deleted_versions: tuple[int, ...] = ()


# -- settings --------------------------------------------------------------------------------------


def validate_base_path(base_path: object) -> None:
    """Checks that `base_path` names a model base path the pusher can write.

    Args:
      base_path: the value given for the component's `base_path`.

    Raises:
      ValueError: empty, an unsupported scheme, no bucket, credentials in the URL, or a path that
        ends in a version directory; the message says how to fix it.
    """
    example = "'s3://my-bucket/models/penguins', 'gs://my-bucket/models/penguins' or '/srv/models/penguins'"
    if not isinstance(base_path, str) or not base_path.strip():
        raise ValueError(
            "base_path is required: the directory that holds the model's integer version "
            "directories, exactly what the model server's --model_base_path points to, e.g. "
            f"{example}."
        )
    protocol, path = split_url(base_path)
    if protocol not in SUPPORTED_PROTOCOLS:
        raise ValueError(
            f"base_path {base_path!r} uses the unsupported scheme {protocol!r}: the BucketPusher "
            f"writes local paths, file://, s3:// and gs://, e.g. {example}."
        )
    if protocol != "file":
        bucket_name = path.split("/", 1)[0]
        if not bucket_name:
            raise ValueError(
                f"base_path {base_path!r} names no bucket: use {protocol}://<bucket>/<prefix>, "
                f"e.g. {protocol}://my-bucket/models/penguins."
            )
        if "@" in bucket_name:
            raise ValueError(
                f"base_path {base_path!r} carries credentials: remove them from the URL; the "
                "pusher reads credentials from the environment (AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY for s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://)."
            )
    last = posixpath.basename(path.rstrip("/"))
    if bucket.parse_version(last) is not None:
        parent = base_path.rstrip("/").rsplit("/", 1)[0]
        raise ValueError(
            f"base_path {base_path!r} ends in what looks like a version directory ({last!r}): "
            f"point it at the directory that holds the versions (here probably {parent!r}), "
            "as --model_base_path does; the pusher creates the version directories itself."
        )


def validate_keep_last(keep_last: object) -> None:
    """Checks the retention setting.

    Args:
      keep_last: the value given for the component's `keep_last`.

    Raises:
      ValueError: not a whole number >= 0.
    """
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0:
        raise ValueError(
            f"keep_last must be a whole number >= 0, got {keep_last!r}: 0 keeps every version; "
            "N > 0 deletes the oldest published versions beyond the newest N after each push "
            "(2 or more lets the server keep serving the previous version while it swaps)."
        )


def validate_versioning(versioning: object) -> None:
    """Checks the versioning scheme.

    Args:
      versioning: the value given for the component's `versioning`.

    Raises:
      ValueError: not one of VERSIONING_CHOICES.
    """
    if versioning not in VERSIONING_CHOICES:
        raise ValueError(
            f"versioning must be {VERSIONING_NEXT_INTEGER!r} (one more than the highest version "
            f"directory; the default) or {VERSIONING_UNIX_TIMESTAMP!r} (seconds since the epoch, "
            f"as TFX's Pusher does), got {versioning!r}."
        )


def validate_model_name(model_name: object) -> None:
    """Checks an explicitly given model name (None means: derive it from the base path).

    Args:
      model_name: the value given for the component's `model_name`.

    Raises:
      ValueError: given but empty or not a string.
    """
    if model_name is not None and (not isinstance(model_name, str) or not model_name.strip()):
        raise ValueError(
            f"model_name must be a non-empty string, got {model_name!r}; leave it unset to use "
            "the last component of base_path."
        )


def default_model_name(base_path: str) -> str:
    """The model name used when none is given: the last path component of the base path.

    Args:
      base_path: a valid base path.

    Returns:
      e.g. "penguins" for "s3://bucket/models/penguins".
    """
    _, path = split_url(base_path)
    return posixpath.basename(path.rstrip("/")) or path


# -- the model's files ----------------------------------------------------------------------------


def list_model_files(model_dir: str) -> dict[str, int]:
    """Lists a local model directory.

    Args:
      model_dir: a local directory holding a SavedModel or a TFLite model.

    Returns:
      {relative posix path: size in bytes} for every file, except a push record the directory may
      carry from an earlier push (the pusher writes its own).

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


def model_checksum(model_dir: str, files: Mapping[str, int]) -> str:
    """The model's identity (`bucket.model_checksum`, the definition the server verifies).

    Args:
      model_dir: the local model directory.
      files: its listing, as `list_model_files` returns it.

    Returns:
      "sha256:<hex digest>".
    """
    return bucket.model_checksum(model_dir, files)


def idempotency_key(pipeline_run_id: str | None, checksum: str) -> str:
    """Identifies one run's push of one model: a retry of the run has the same key.

    Args:
      pipeline_run_id: the pipeline run id, or None when the orchestrator gives none.
      checksum: the model's `model_checksum`.

    Returns:
      "<run id>/<checksum>", or the checksum alone without a run id.
    """
    return f"{pipeline_run_id}/{checksum}" if pipeline_run_id else checksum


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


# -- blessing --------------------------------------------------------------------------------------


def parse_metrics(text: str | None) -> dict:
    """Parses a blessing's metrics property (a JSON object); anything else gives {}.

    Args:
      text: the property's value ("" when absent).

    Returns:
      {metric name: value}.
    """
    if not text:
        return {}
    try:
        metrics = json.loads(text)
    except ValueError:
        logger.warning("Ignoring metrics that are not JSON: %.200s", text)
        return {}
    if not isinstance(metrics, dict):
        logger.warning("Ignoring metrics that are not a JSON object: %.200s", text)
        return {}
    return metrics


def parse_failed_checks(text: str | None) -> list[str]:
    """Parses a blessing's failed-checks property (a JSON list of strings).

    Args:
      text: the property's value ("" when absent).

    Returns:
      The reasons; a value that is not a JSON list is kept as one reason.
    """
    if not text:
        return []
    try:
        checks = json.loads(text)
    except ValueError:
        return [text]
    if isinstance(checks, list):
        return [str(check) for check in checks]
    return [str(checks)]


def not_blessed_reason(blessing_uri: str, failed_checks: list[str]) -> str:
    """The PushedModel's reason when the model was not blessed.

    Args:
      blessing_uri: the ModelBlessing artifact's URI.
      failed_checks: why the validator refused it (may be empty).

    Returns:
      One sentence, naming the failed checks when known.
    """
    reason = f"not pushed: the model was not blessed (ModelBlessing {blessing_uri})"
    if failed_checks:
        reason += "; failed checks: " + "; ".join(failed_checks)
    return reason + ". The bucket was not touched; the serving version stays."


def selection_reason(blessing_uri: str | None) -> str:
    """Why `model` itself is pushed (it is blessed, or no blessing was wired).

    Args:
      blessing_uri: the ModelBlessing artifact's URI, or None when none was wired.

    Returns:
      One sentence.
    """
    if blessing_uri is None:
        return "model pushed without a blessing: no model_blessing was wired."
    return f"model pushed: it was blessed (ModelBlessing {blessing_uri})."


def fallback_reason(
    model_uri: str, blessing_uri: str, failed_checks: list[str], fallback_uri: str
) -> str:
    """Why the fallback model is pushed instead of `model`.

    Args:
      model_uri: the model that was not blessed.
      blessing_uri: its ModelBlessing's URI.
      failed_checks: why it was not blessed (may be empty).
      fallback_uri: the fallback Model artifact's URI.

    Returns:
      One sentence naming both models and the failed checks.
    """
    reason = (
        f"fallback_model {fallback_uri} pushed instead of model {model_uri}, which was not "
        f"blessed (ModelBlessing {blessing_uri})"
    )
    if failed_checks:
        reason += "; failed checks: " + "; ".join(failed_checks)
    return reason + "."


def fallback_not_blessed_reason(
    blessing_uri: str,
    failed_checks: list[str],
    fallback_blessing_uri: str,
    fallback_failed_checks: list[str],
) -> str:
    """The PushedModel's reason when neither the model nor its fallback was blessed.

    Returns:
      One sentence naming both blessings and their failed checks.
    """
    reason = not_blessed_reason(blessing_uri, failed_checks).split(". The bucket")[0]
    reason += f"; the fallback model was not blessed either (ModelBlessing {fallback_blessing_uri})"
    if fallback_failed_checks:
        reason += "; its failed checks: " + "; ".join(fallback_failed_checks)
    return reason + ". The bucket was not touched; the serving version stays."


# -- the base path ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Version:
    number: int
    name: str
    markers: tuple[str, ...]
    record: dict | None

    @property
    def published(self) -> bool:
        return bool(self.markers)


class _BasePath:
    """The model's base path on one fsspec file system (all storage I/O goes through `fs`)."""

    def __init__(self, url: str, fs: fsspec.AbstractFileSystem) -> None:
        self.url = url.rstrip("/") or url
        self.protocol, self.root = split_url(url)
        self.fs = fs

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def version_url(self, name: str) -> str:
        return f"{self.url.rstrip('/')}/{name}"

    def path(self, name: str, relative: str = "") -> str:
        return (
            posixpath.join(self.root, name, relative)
            if relative
            else posixpath.join(self.root, name)
        )

    def list_versions(self) -> dict[int, str]:
        """{version: directory name} with one delimiter listing; a missing base path is empty."""
        try:
            entries = self.fs.ls(self.root, detail=True)
        except FileNotFoundError:
            return {}
        versions: dict[int, str] = {}
        for entry in sorted(entries, key=lambda e: e["name"]):
            if entry.get("type") != "directory":
                continue
            name = posixpath.basename(entry["name"].rstrip("/"))
            number = bucket.parse_version(name)
            if number is not None:
                # "7" and "007" are the same version; readers use the first, as TF Serving does.
                versions.setdefault(number, name)
        return versions

    def inspect(self, number: int, name: str) -> _Version:
        """The version's publish markers (one delimiter listing) and push record (one read)."""
        try:
            entries = self.fs.ls(self.path(name), detail=True)
        except FileNotFoundError:
            entries = []
        present = {
            posixpath.basename(entry["name"].rstrip("/"))
            for entry in entries
            if entry.get("type") == "file"
        }
        markers = tuple(marker for marker in bucket.PUBLISH_MARKERS if marker in present)
        return _Version(number, name, markers, self.read_record(name))

    def read_record(self, name: str) -> dict | None:
        try:
            data = self.fs.cat_file(self.path(name, bucket.PUSH_RECORD_FILE))
        except FileNotFoundError:
            return None
        try:
            # The server's own parser, so pusher and server agree on what a record is.
            return dict(bucket.parse_push_record(data).raw)
        except ValueError as err:
            logger.warning(
                "Ignoring an unreadable push record in %s: %s", self.version_url(name), err
            )
            return None

    def read_high_water_mark(self) -> int:
        """The highest version number ever used under this base path (0 when none recorded).

        Raises:
          PushError: the mark exists but is unreadable (a number could be reused).
        """
        path = posixpath.join(self.root, bucket.HIGH_WATER_MARK_FILE)
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            return 0
        try:
            mark = json.loads(data)["version"]
            if isinstance(mark, bool) or not isinstance(mark, int) or mark < 0:
                raise ValueError(f"not a version number: {mark!r}")
        except (ValueError, KeyError, TypeError) as err:
            raise PushError(
                f"The high-water mark {self.url}/{bucket.HIGH_WATER_MARK_FILE} is unreadable "
                f"({err}). It must hold the highest version ever pushed, as "
                '{"version": N}; restore it (at least the highest version number ever '
                "published here), then push again."
            ) from err
        return mark

    def write_high_water_mark(self, number: int) -> None:
        """Records `number` as used (one small object, written whole); never lowers the mark.

        The mark is read again right before the write and the higher of the two is written:
        pusher B may have claimed 7 after pusher A read the mark and claimed 6, and A's blind
        write of 6 would let 7 be used twice (issue 13 review). Object stores without
        conditional writes leave a window between this read and the write; the claim itself
        (an exclusive mkdir on local disks) is what keeps two pushers off one number.

        Raises:
          PushError: the mark exists but is unreadable.
        """
        number = max(number, self.read_high_water_mark())
        data = _encode(
            {
                "version": number,
                "updated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"
                ),
                "pusher": f"tfrelay {__version__}",
            }
        )
        path = posixpath.join(self.root, bucket.HIGH_WATER_MARK_FILE)
        if not self.is_local:
            self.fs.pipe_file(path, data)
            return
        os.makedirs(self.root, exist_ok=True)
        temporary = f"{path}{_TEMP_INFIX}{uuid.uuid4().hex[:8]}"
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
            raise

    def claim(self, number: int) -> str:
        """Reserves a new version directory; on local disks an exclusive mkdir makes it ours.

        Raises:
          FileExistsError: a concurrent writer created it first (local only).
        """
        name = bucket.version_dir_name(number)
        if self.is_local:
            os.makedirs(self.root, exist_ok=True)
            os.mkdir(self.path(name))
        return name

    def remove_stale_temporaries(self, name: str) -> None:
        """Removes temporary files a killed local upload left behind in a resumed version."""
        if not self.is_local:
            return
        for directory, _, names in os.walk(self.path(name)):
            for file_name in names:
                if _TEMP_INFIX in file_name:
                    os.remove(os.path.join(directory, file_name))

    def write(
        self, name: str, relative: str, *, source: str | None = None, data: bytes | None = None
    ) -> None:
        """Writes one file of a version, from a local file (`source`) or from memory (`data`).

        Each file appears whole or not at all: an object store's PUT is atomic, and on local disks
        the bytes go to a temporary name in the same directory that os.replace moves into place.
        """
        target = self.path(name, relative)
        if not self.is_local:
            self._put(source, data, target)
            return
        directory, file_name = posixpath.split(target)
        os.makedirs(directory, exist_ok=True)
        temporary = posixpath.join(directory, f".{file_name}{_TEMP_INFIX}{uuid.uuid4().hex[:8]}")
        try:
            self._put(source, data, temporary)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
            raise

    def _put(self, source: str | None, data: bytes | None, target: str) -> None:
        if source is not None:
            self.fs.put_file(source, target)
        else:
            self.fs.pipe_file(target, data)

    def delete(self, version: _Version) -> None:
        """Deletes a version: its publish markers first, so readers stop treating it as whole."""
        for marker in version.markers:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path(version.name, marker))
        self.fs.rm(self.path(version.name), recursive=True)


# -- pushing ---------------------------------------------------------------------------------------


def _human_bytes(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _environment_hint(base: _BasePath) -> str:
    if base.protocol == "s3":
        bucket_name = base.root.split("/", 1)[0]
        return (
            "The pusher reads S3 settings from the environment: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or give the pod an IAM role) and AWS_REGION; for MinIO or "
            "another S3-compatible store also S3_ENDPOINT=host:port and S3_USE_HTTPS=0 if it "
            f"speaks plain HTTP. Check that bucket {bucket_name!r} exists and that these "
            "credentials may list, write and delete objects in it."
        )
    if base.protocol == "gs":
        bucket_name = base.root.split("/", 1)[0]
        return (
            "The pusher reads GCS credentials from the environment: set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (or use workload "
            "identity), or STORAGE_EMULATOR_HOST for an emulator. Check that bucket "
            f"{bucket_name!r} exists and that the account may list, write and delete objects in it."
        )
    return f"Check that {base.root} is on a mounted file system writable by this process."


def _storage_error(err: BaseException, base: _BasePath, doing: str, after: str = "") -> PushError:
    message = f"Could not {doing}: {type(err).__name__}: {str(err).rstrip('.')}."
    if after:
        message += f" {after}"
    return PushError(f"{message} {_environment_hint(base)}")


def _scan(
    base: _BasePath, versions: Mapping[int, str], key: str
) -> tuple[_Version | None, _Version | None]:
    """Returns (newest published version, resumable attempt of this push above it)."""
    resumable = None
    for number in sorted(versions, reverse=True):
        version = base.inspect(number, versions[number])
        if version.published:
            return version, resumable
        if resumable is None and version.record and version.record.get("idempotency_key") == key:
            resumable = version
    return None, resumable


def _next_version(
    versions: Mapping[int, str],
    versioning: str,
    clock: Callable[[], float],
    high_water_mark: int = 0,
) -> int:
    # Every directory counts, published or not, so a new version never lands in a directory
    # another writer is still filling, and the server's "latest" policy picks it; and so does
    # every number used before (the high-water mark), so a deleted number is never reused.
    highest = max(max(versions, default=0), high_water_mark)
    if versioning == VERSIONING_UNIX_TIMESTAMP:
        return max(int(clock()), highest + 1)
    return highest + 1


def _push_record(
    request: PushRequest,
    version: int,
    pushed_at: str,
    checksum: str,
    key: str,
    files: Mapping[str, int],
    status: str,
) -> dict:
    return {
        "model_name": request.model_name,
        "version": version,
        "pushed_at": pushed_at,
        "status": status,
        "pipeline_name": request.lineage.pipeline_name,
        "pipeline_run_id": request.lineage.pipeline_run_id,
        "component_id": request.lineage.component_id,
        "source_model_uri": request.source_model_uri,
        "checksum": checksum,
        "idempotency_key": key,
        # Every file but the record itself, marker included: the server's completeness rule
        # checks exactly these sizes.
        "files": dict(sorted(files.items())),
        "metrics": dict(request.metrics),
        "blessed": request.blessed,
        "selected_input": request.selected_input,
        "selection_reason": request.selection_reason,
        "pusher": f"tfrelay {__version__}",
    }


def _encode(record: Mapping) -> bytes:
    return json.dumps(record, indent=2, sort_keys=True).encode() + b"\n"


@contextlib.contextmanager
def _local_model_dir(model_dir: str, environ: Mapping[str, str] | None) -> Iterator[str]:
    """Yields a local copy of the model directory (itself when it is local already)."""
    protocol, path = split_url(model_dir)
    if protocol == "file":
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="tfrelay-push-") as scratch:
        local = os.path.join(scratch, "model")
        logger.info("Downloading the model from %s to %s", model_dir, local)
        try:
            filesystem_for(model_dir, environ).get(path.rstrip("/") + "/", local, recursive=True)
        except Exception as err:
            raise PushError(
                f"Could not download the model from {model_dir}: {type(err).__name__}: {err}. "
                "Check the storage credentials in the environment (AWS_* / S3_ENDPOINT for "
                "s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://)."
            ) from err
        yield local


def push_model(
    request: PushRequest,
    fs: fsspec.AbstractFileSystem | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> PushResult:
    """Publishes a model as a version of `request.base_path`, following the bucket contract.

    Args:
      request: what to push where.
      fs: the file system of the base path; by default `filesystem_for(base_path, environ)`.
      environ: the environment that configures storage access; defaults to `os.environ`.
      clock: seconds since the epoch (for `unix_timestamp` versions and `pushed_at`).

    Returns:
      What was done: the version holding the model, and whether it was new, resumed or there
      already.

    Raises:
      ValueError: invalid settings in `request`.
      PushError: the model is not servable, or storage failed; nothing half-written is ever
        published, and running the same push again resumes it.
    """
    validate_base_path(request.base_path)
    validate_model_name(request.model_name)
    validate_keep_last(request.keep_last)
    validate_versioning(request.versioning)
    with _local_model_dir(request.model_dir, environ) as model_dir:
        files = list_model_files(model_dir)
        checksum = model_checksum(model_dir, files)
        key = idempotency_key(request.lineage.pipeline_run_id, checksum)
        base = _BasePath(
            request.base_path, fs if fs is not None else filesystem_for(request.base_path, environ)
        )
        try:
            versions = base.list_versions()
            newest, resumable = _scan(base, versions, key)
            mark = base.read_high_water_mark()
        except PushError:
            raise
        except Exception as err:
            raise _storage_error(err, base, f"list the versions in {base.url}") from err

        if newest is not None and newest.record and newest.record.get("checksum") == checksum:
            return _already_pushed(request, base, newest)

        if resumable is not None:
            number, name = resumable.number, resumable.name
            logger.info(
                "Resuming the interrupted push of this run into %s (idempotency key %s)",
                base.version_url(name),
                key,
            )
        else:
            number, name = _claim_new_version(base, versions, request.versioning, clock, mark)
        if number > mark:
            # Before any file of the version: once a reader can see the number, it is used.
            try:
                base.write_high_water_mark(number)
            except PushError:
                raise
            except Exception as err:
                raise _storage_error(
                    err,
                    base,
                    f"record version {number} in the high-water mark "
                    f"{base.url}/{bucket.HIGH_WATER_MARK_FILE}",
                    after="Nothing was published; run the push again.",
                ) from err
        record = _upload(
            request, base, model_dir, files, number, name, checksum, key, clock, resumable
        )

    destination = base.version_url(name)
    deleted = _apply_retention(base, request.keep_last, protect=number)
    reason = (
        f"pushed: {request.model_name} version {number} published at {destination}"
        + (" (resumed an interrupted attempt of this run)" if resumable is not None else "")
        + (f"; retention removed versions {list(deleted)}" if deleted else "")
        + "."
    )
    return PushResult(
        version=number,
        destination=destination,
        record=record,
        reason=reason,
        resumed=resumable is not None,
        deleted_versions=deleted,
    )


def _already_pushed(request: PushRequest, base: _BasePath, newest: _Version) -> PushResult:
    record = newest.record or {}
    destination = base.version_url(newest.name)
    logger.info(
        "%s already holds this model (checksum %s, pushed at %s by run %s); not pushing again",
        destination,
        record.get("checksum"),
        record.get("pushed_at"),
        record.get("pipeline_run_id"),
    )
    # Retention still runs, so a retry after a crash between publishing and retention converges.
    deleted = _apply_retention(base, request.keep_last, protect=newest.number)
    reason = (
        f"already pushed: version {newest.number} at {destination} holds this exact model "
        f"(checksum {record.get('checksum')}, pushed at {record.get('pushed_at')} by run "
        f"{record.get('pipeline_run_id')}); nothing was uploaded."
    )
    return PushResult(
        version=newest.number,
        destination=destination,
        record=record,
        reason=reason,
        already_pushed=True,
        deleted_versions=deleted,
    )


def _claim_new_version(
    base: _BasePath,
    versions: Mapping[int, str],
    versioning: str,
    clock: Callable[[], float],
    high_water_mark: int = 0,
) -> tuple[int, str]:
    number = _next_version(versions, versioning, clock, high_water_mark)
    for _ in range(_MAX_CLAIM_ATTEMPTS):
        try:
            return number, base.claim(number)
        except FileExistsError:
            number += 1
        except Exception as err:
            raise _storage_error(err, base, f"create version {number} in {base.url}") from err
    raise PushError(
        f"Could not claim a new version directory in {base.url}: {_MAX_CLAIM_ATTEMPTS} numbers "
        f"from {number - _MAX_CLAIM_ATTEMPTS} on were taken while trying. Is another pusher "
        "writing the same base path in a loop?"
    )


def _upload(
    request: PushRequest,
    base: _BasePath,
    model_dir: str,
    files: Mapping[str, int],
    number: int,
    name: str,
    checksum: str,
    key: str,
    clock: Callable[[], float],
    resumed: _Version | None,
) -> dict:
    """Writes the claim, every file, the final record and the marker last; returns the record."""
    destination = base.version_url(name)
    pushed_at = datetime.datetime.fromtimestamp(clock(), tz=datetime.timezone.utc).isoformat(
        timespec="seconds"
    )
    final = _push_record(request, number, pushed_at, checksum, key, files, STATUS_UPLOADED)
    claim = _encode({**final, "status": STATUS_UPLOADING})
    final_bytes = _encode(final)
    order = upload_order(files)
    total_bytes = sum(files.values()) + len(final_bytes)
    not_published = (
        f"Nothing was published: {destination} has no publish marker, so no model server loads "
        "it. Running the same pipeline run again resumes into it."
    )

    try:
        if resumed is not None:
            # Re-checked just before writing: never touch a version someone has since published.
            if base.inspect(number, name).published:
                raise PushError(
                    f"{destination} was published by another writer while this push was "
                    "resuming it; not overwriting it. Run the push again to take a new version."
                )
            base.remove_stale_temporaries(name)
        base.write(name, bucket.PUSH_RECORD_FILE, data=claim)
    except PushError:
        raise
    except Exception as err:
        raise _storage_error(err, base, f"claim version {number} at {destination}") from err
    logger.info(
        "Pushing %s (%d files, %s) to %s",
        model_dir,
        len(order),
        _human_bytes(total_bytes),
        destination,
    )

    started = time.monotonic()
    done_bytes = 0
    for index, relative in enumerate(order, start=1):
        try:
            if relative == bucket.PUSH_RECORD_FILE:
                base.write(name, relative, data=final_bytes)
                size = len(final_bytes)
            else:
                source = os.path.join(model_dir, *relative.split("/"))
                base.write(name, relative, source=source)
                size = files[relative]
        except Exception as err:
            raise _storage_error(
                err,
                base,
                f"upload {relative} (file {index} of {len(order)}) to {destination}",
                after=not_published,
            ) from err
        done_bytes += size
        logger.info(
            "uploaded %d/%d files, %s of %s: %s",
            index,
            len(order),
            _human_bytes(done_bytes),
            _human_bytes(total_bytes),
            relative,
        )
    seconds = time.monotonic() - started
    logger.info(
        "Published %s version %d at %s: %d files, %s in %.1f s (checksum %s)",
        request.model_name,
        number,
        destination,
        len(order),
        _human_bytes(total_bytes),
        seconds,
        checksum,
    )
    return final


def _apply_retention(base: _BasePath, keep_last: int, protect: int) -> tuple[int, ...]:
    """Deletes the oldest published versions beyond the newest `keep_last`, never `protect`.

    Unpublished directories are left alone: they may be another writer's push in progress.
    A failure here is logged, not raised: the model is published and served either way.
    """
    if keep_last <= 0:
        return ()
    deleted: list[int] = []
    try:
        versions = base.list_versions()
        published = [
            version
            for version in (base.inspect(n, versions[n]) for n in sorted(versions, reverse=True))
            if version.published
        ]
        doomed = [version for version in published[keep_last:] if version.number != protect]
        for version in reversed(doomed):
            base.delete(version)
            deleted.append(version.number)
            logger.info(
                "Retention (keep_last=%d): deleted version %d at %s",
                keep_last,
                version.number,
                base.version_url(version.name),
            )
    except Exception as err:  # noqa: BLE001 - the push itself succeeded; see the docstring
        logger.warning(
            "Retention (keep_last=%d) stopped after deleting %s: %s",
            keep_last,
            deleted or "nothing",
            _storage_error(err, base, f"delete old versions in {base.url}"),
        )
    return tuple(deleted)
