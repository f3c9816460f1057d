"""The bucket contract's writer: publishing one model directory as a new version of a base path.

`bucket.py` states the contract and `model_storage.py` reads it for the model server; this module
writes it, for the BucketPusher and `tfrelay push` (issue 15: the writer lived inside the pusher,
with a second implementation of the version listing). It lists versions and version files with
`ModelStorage`, the server's own code, so writer and reader cannot disagree on what a version
is. `BucketWriter.publish` does, in order:

The numbering, record and ordering rules it follows are in `publication.py`.

1. List the model's files (`list_model_files`), compute their checksum (`bucket.model_checksum`,
   the definition the server verifies) and the push's idempotency key (run id + checksum).
2. Scan the base path from the newest version down to the newest *published* one (a version is
   published once its publish marker, `saved_model.pb` or `model.tflite`, is present).
3. If the newest published version holds the same checksum, stop: the model is already served.
4. If an unpublished version above it carries a push record with the same idempotency key, it is
   an interrupted attempt of this same run: resume into it. Otherwise claim a new version
   (`next_integer`: one more than the highest version present *or ever used*; `unix_timestamp`:
   now, bumped above both). "Ever used" is the high-water mark
   (`<base_path>/.tfrelay_high_water_mark`, `bucket.HIGH_WATER_MARK_FILE`): a number once
   published is never published again, also after its version was deleted for a rollback, so
   no server can mistake new files for an old version (issue 13).
5. Raise the high-water mark to the claimed number, then write the push record with status
   "uploading" (the claim a retry looks for), then every file that is not a publish marker,
   then the final push record, then the publish marker(s) last.
6. Apply retention (`keep_last`): delete the oldest published versions beyond the newest N,
   marker first.

Steps 2 to 6 are `publish_files`, which takes the files from any source: `publish` uploads a local
directory through it, `tfrelay models rollback` (`serving/admin/rollback.py`) republishes an
older version's files with server-side copies (`copy_file`), under its own idempotency key.

Only one writer should write a given base path at a time: object stores offer no atomic "create
directory", so two concurrent pushes of different models could pick the same number (local file
systems are protected by an exclusive mkdir). This module imports neither TFX nor TensorFlow.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping

import fsspec

from tfrelay.serving.storage import bucket, errors
from tfrelay.serving.storage.calls import DEFAULT_TIMEOUT_SECONDS
from tfrelay.serving.storage.errors import StorageError
from tfrelay.serving.storage.filesystem import filesystem_for, split_url
from tfrelay.serving.storage.model_storage import ModelStorage
from tfrelay.serving.storage.publication import (
    STATUS_UPLOADED,
    STATUS_UPLOADING,
    TEMP_INFIX,
    VERSIONING_NEXT_INTEGER,
    Publication,
    PushError,
    VersionState,
    encode_record,
    human_bytes,
    idempotency_key,
    list_model_files,
    next_version,
    upload_order,
)
from tfrelay.version import __version__

logger = logging.getLogger(__name__)

# Local version numbers taken by a concurrent writer between our listing and our mkdir.
_MAX_CLAIM_ATTEMPTS = 100
# A copy without a server-side one streams through this much memory at a time.
_COPY_CHUNK_BYTES = 8 << 20
# The record fields the writer owns; a caller's description cannot override them.
_CONTRACT_FIELDS = frozenset(
    {"model_name", "version", "pushed_at", "status", "checksum", "idempotency_key", "files"}
)


# -- the writer ------------------------------------------------------------------------------------


class BucketWriter:
    """Publishes versions under one model base path, following the bucket contract.

    Args:
      base_path: the model's base path, the directory holding the integer version directories
        (what the server's --model_base_path points to).
      fs: its file system; by default `filesystem_for(base_path, environ)`. Credentials are never
        arguments: `filesystem_for` reads the environment (AWS_* / S3_ENDPOINT / S3_USE_HTTPS for
        s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://).
      environ: the environment that configures storage access; defaults to `os.environ`.
      clock: seconds since the epoch (for `unix_timestamp` versions and `pushed_at`).
      timeout_seconds: the deadline of each listing and small read, as the server's
        --storage_timeout_seconds (reads get more in proportion to their size). Writes have
        none: an upload takes as long as its size needs.
    """

    def __init__(
        self,
        base_path: str,
        fs: fsspec.AbstractFileSystem | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.url = base_path.rstrip("/") or base_path
        self.protocol, self.root = split_url(base_path)
        self.fs = fs if fs is not None else filesystem_for(base_path, environ)
        # Listings and record reads go through the server's ModelStorage (issue 15: one listing
        # implementation), with its deadline: a hung LIST now ends the push with a PushError
        # (retrying resumes) instead of blocking it for as long as the client retries.
        self.storage = ModelStorage(self.url, environ, timeout_seconds=timeout_seconds, fs=self.fs)
        self._clock = clock

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def version_url(self, name: str) -> str:
        """The user-facing URL of a version directory."""
        return self.storage.version_url(name)

    def path(self, name: str, relative: str = "") -> str:
        """The file system path of a version directory, or of a file in it."""
        root = self.storage.version_path(name)
        return f"{root}/{relative}" if relative else root

    # -- reading (through ModelStorage, the server's listing) ----------------------------------

    def list_versions(self) -> dict[int, str]:
        """{version: directory name}, with the server's listing; a missing base path is empty.

        Raises:
          StorageError: the base path could not be listed.
        """
        return self.storage.list_versions(missing_ok=True)

    def inspect(self, number: int, name: str) -> VersionState:
        """A version's publish markers and push record (one recursive listing, one small read).

        Raises:
          StorageError: the listing or the read failed.
        """
        try:
            files = self.storage.list_version_files(name)
        except StorageError as err:
            if err.kind != errors.NOT_FOUND:
                raise
            files = {}
        markers = tuple(marker for marker in bucket.PUBLISH_MARKERS if marker in files)
        info = files.get(bucket.PUSH_RECORD_FILE)
        record = self._read_record(name, info.size) if info is not None else None
        return VersionState(number, name, markers, record)

    def _read_record(self, name: str, size: int) -> dict | None:
        try:
            if size > bucket.MAX_PUSH_RECORD_BYTES:
                raise ValueError(f"{size} bytes, more than {bucket.MAX_PUSH_RECORD_BYTES}")
            data = self.storage.read_file(name, bucket.PUSH_RECORD_FILE, size)
            # The server's own parser, so writer and server agree on what a record is.
            return dict(bucket.parse_push_record(data).raw)
        except ValueError as err:
            logger.warning(
                "Ignoring an unreadable push record in %s: %s", self.version_url(name), err
            )
            return None

    def scan(
        self, versions: Mapping[int, str], key: str
    ) -> tuple[VersionState | None, VersionState | None]:
        """(newest published version, an unpublished attempt with idempotency `key` above it).

        Args:
          versions: the base path's listing, as `list_versions` returns it.
          key: the push's idempotency key.

        Raises:
          StorageError: a listing or read failed.
        """
        resumable = None
        for number in sorted(versions, reverse=True):
            version = self.inspect(number, versions[number])
            if version.published:
                return version, resumable
            if (
                resumable is None
                and version.record
                and version.record.get("idempotency_key") == key
            ):
                resumable = version
        return None, resumable

    # -- the high-water mark -------------------------------------------------------------------

    def read_high_water_mark(self) -> int:
        """The highest version number ever used under this base path (0 when none recorded).

        Raises:
          PushError: the mark exists but is unreadable (a number could be reused).
        """
        path = f"{self.root.rstrip('/')}/{bucket.HIGH_WATER_MARK_FILE}"
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

        Args:
          number: the version number just claimed.

        Raises:
          PushError: the mark exists but is unreadable.
        """
        number = max(number, self.read_high_water_mark())
        data = encode_record(
            {
                "version": number,
                "updated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"
                ),
                "pusher": f"tfrelay {__version__}",
            }
        )
        path = f"{self.root.rstrip('/')}/{bucket.HIGH_WATER_MARK_FILE}"
        if not self.is_local:
            self.fs.pipe_file(path, data)
            return
        os.makedirs(self.root, exist_ok=True)
        temporary = f"{path}{TEMP_INFIX}{uuid.uuid4().hex[:8]}"
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
            raise

    # -- writing -------------------------------------------------------------------------------

    def claim(self, number: int) -> str:
        """Reserves a new version directory; on local disks an exclusive mkdir makes it ours.

        Args:
          number: the version number.

        Returns:
          The directory name.

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
                if TEMP_INFIX in file_name:
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
        directory, file_name = target.rsplit("/", 1)
        os.makedirs(directory, exist_ok=True)
        temporary = f"{directory}/.{file_name}{TEMP_INFIX}{uuid.uuid4().hex[:8]}"
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

    def copy_file(self, source_name: str, relative: str, name: str) -> None:
        """Copies one file of version `source_name` into version `name` of this base path.

        The copy is the file system's own (`cp_file`): server-side on S3 (CopyObject) and GCS
        (rewrite), so no byte passes through this process; a file system without one streams
        through `_COPY_CHUNK_BYTES` of memory. Like `write`, the file appears whole or not at all.

        Args:
          source_name: the directory name of the version copied from.
          relative: the file's path relative to the version directory.
          name: the directory name of the version copied to.
        """
        source = self.path(source_name, relative)
        target = self.path(name, relative)
        if not self.is_local:
            self._copy(source, target)
            return
        directory, file_name = target.rsplit("/", 1)
        os.makedirs(directory, exist_ok=True)
        temporary = f"{directory}/.{file_name}{TEMP_INFIX}{uuid.uuid4().hex[:8]}"
        try:
            self._copy(source, temporary)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
            raise

    def _copy(self, source: str, target: str) -> None:
        try:
            self.fs.cp_file(source, target)
            return
        except NotImplementedError:
            pass
        with self.fs.open(source, "rb") as reader, self.fs.open(target, "wb") as writer:
            for chunk in iter(lambda: reader.read(_COPY_CHUNK_BYTES), b""):
                writer.write(chunk)

    def delete(self, version: VersionState) -> None:
        """Deletes a version: its publish markers first, so readers stop treating it as whole."""
        for marker in version.markers:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self.path(version.name, marker))
        self.fs.rm(self.path(version.name), recursive=True)

    # -- publishing ----------------------------------------------------------------------------

    def publish(
        self,
        model_dir: str,
        model_name: str,
        *,
        run_id: str | None = None,
        description: Mapping[str, object] | None = None,
        versioning: str = VERSIONING_NEXT_INTEGER,
        keep_last: int = 0,
    ) -> Publication:
        """Publishes a local model directory as a version of this base path (the module's steps).

        Args:
          model_dir: a local directory holding a SavedModel or a TFLite model.
          model_name: recorded in the push record and logged.
          run_id: shared by retries of this push (the pipeline run id): part of the idempotency
            key, so a retry resumes its own interrupted attempt; None: the checksum alone.
          description: more push record fields (lineage, metrics, blessing, why this model);
            the contract's own fields (version, status, files, checksum, ...) cannot be set.
          versioning: VERSIONING_NEXT_INTEGER or VERSIONING_UNIX_TIMESTAMP.
          keep_last: 0 keeps every version; N > 0 keeps only the newest N published versions.

        Returns:
          What was done: the version holding the model, and whether it was new, resumed or there
          already.

        Raises:
          ValueError: `description` sets a contract field.
          PushError: the model is not servable, or storage failed; nothing half-written is ever
            published, and publishing the same model with the same run id again resumes it.
        """
        files = list_model_files(model_dir)
        return self.publish_files(
            files,
            bucket.model_checksum(model_dir, files),
            model_name,
            lambda name, relative: self.write(
                name, relative, source=os.path.join(model_dir, *relative.split("/"))
            ),
            source=model_dir,
            run_id=run_id,
            description=description,
            versioning=versioning,
            keep_last=keep_last,
        )

    def publish_files(
        self,
        files: Mapping[str, int],
        checksum: str,
        model_name: str,
        put: Callable[[str, str], None],
        *,
        source: str,
        run_id: str | None = None,
        description: Mapping[str, object] | None = None,
        versioning: str = VERSIONING_NEXT_INTEGER,
        keep_last: int = 0,
    ) -> Publication:
        """Publishes a model whose files `put` writes, by the same steps as `publish`.

        `publish` uploads a local directory through it; `tfrelay models rollback` republishes
        a version's files with server-side copies (issue 16), so both claim numbers, write the
        record and the markers, resume and stop early by one implementation.

        Args:
          files: {relative posix path: size in bytes}, the push record excluded.
          checksum: the model's `bucket.model_checksum` over exactly these files.
          model_name: recorded in the push record and logged.
          put: writes one file into a version: `put(version directory name, relative path)`;
            each file must appear whole or not at all (as `write` and `copy_file` do).
          source: where the files come from, for log lines.
          run_id: what retries of this publication share (part of the idempotency key).
          description: more push record fields (see `publish`).
          versioning: VERSIONING_NEXT_INTEGER or VERSIONING_UNIX_TIMESTAMP.
          keep_last: 0 keeps every version; N > 0 keeps only the newest N published versions.

        Returns:
          What was done (see `publish`).

        Raises:
          ValueError: `description` sets a contract field.
          PushError: storage failed; nothing half-written is ever published.
        """
        description = dict(description or {})
        overridden = sorted(_CONTRACT_FIELDS & set(description))
        if overridden:
            raise ValueError(f"the push record's {overridden} are the writer's to set")
        key = idempotency_key(run_id, checksum)
        try:
            versions = self.list_versions()
            newest, resumable = self.scan(versions, key)
            mark = self.read_high_water_mark()
        except PushError:
            raise
        except Exception as err:
            raise self.storage_error(err, f"list the versions in {self.url}") from err

        if newest is not None and newest.record and newest.record.get("checksum") == checksum:
            return self._already_published(newest, keep_last)

        if resumable is not None:
            number, name = resumable.number, resumable.name
            logger.info(
                "Resuming the interrupted push of this run into %s (idempotency key %s)",
                self.version_url(name),
                key,
            )
        else:
            number, name = self._claim_new_version(versions, versioning, mark)
        if number > mark:
            # Before any file of the version: once a reader can see the number, it is used.
            try:
                self.write_high_water_mark(number)
            except PushError:
                raise
            except Exception as err:
                raise self.storage_error(
                    err,
                    f"record version {number} in the high-water mark "
                    f"{self.url}/{bucket.HIGH_WATER_MARK_FILE}",
                    after="Nothing was published; run the push again.",
                ) from err
        record = {
            **description,
            "model_name": model_name,
            "version": number,
            "pushed_at": datetime.datetime.fromtimestamp(
                self._clock(), tz=datetime.timezone.utc
            ).isoformat(timespec="seconds"),
            "status": STATUS_UPLOADED,
            "checksum": checksum,
            "idempotency_key": key,
            # Every file but the record itself, marker included: the server's completeness rule
            # checks exactly these sizes.
            "files": dict(sorted(files.items())),
            "pusher": f"tfrelay {__version__}",
        }
        self._upload(source, files, name, record, put, resumed=resumable is not None)
        return Publication(
            version=number,
            destination=self.version_url(name),
            record=record,
            resumed=resumable is not None,
            deleted_versions=self.apply_retention(keep_last, protect=number),
        )

    def _already_published(self, newest: VersionState, keep_last: int) -> Publication:
        record = newest.record or {}
        logger.info(
            "%s already holds this model (checksum %s, pushed at %s by run %s); not pushing again",
            self.version_url(newest.name),
            record.get("checksum"),
            record.get("pushed_at"),
            record.get("pipeline_run_id"),
        )
        return Publication(
            version=newest.number,
            destination=self.version_url(newest.name),
            record=record,
            already_published=True,
            # Retention still runs, so a retry after a crash between publishing and retention
            # converges.
            deleted_versions=self.apply_retention(keep_last, protect=newest.number),
        )

    def _claim_new_version(
        self, versions: Mapping[int, str], versioning: str, high_water_mark: int
    ) -> tuple[int, str]:
        number = next_version(versions, versioning, self._clock, high_water_mark)
        for _ in range(_MAX_CLAIM_ATTEMPTS):
            try:
                return number, self.claim(number)
            except FileExistsError:
                number += 1
            except Exception as err:
                raise self.storage_error(err, f"create version {number} in {self.url}") from err
        raise PushError(
            f"Could not claim a new version directory in {self.url}: {_MAX_CLAIM_ATTEMPTS} "
            f"numbers from {number - _MAX_CLAIM_ATTEMPTS} on were taken while trying. Is another "
            "pusher writing the same base path in a loop?"
        )

    def _upload(
        self,
        source: str,
        files: Mapping[str, int],
        name: str,
        record: Mapping[str, object],
        put: Callable[[str, str], None],
        resumed: bool,
    ) -> None:
        """Writes the claim, every file, the final record and the marker(s) last."""
        number = record["version"]
        destination = self.version_url(name)
        final_bytes = encode_record(record)
        order = upload_order(files)
        total_bytes = sum(files.values()) + len(final_bytes)
        not_published = (
            f"Nothing was published: {destination} has no publish marker, so no model server "
            "loads it. Running the same pipeline run again resumes into it."
        )
        try:
            if resumed:
                # Re-checked just before writing: never touch a version someone has since
                # published.
                if self.inspect(number, name).published:
                    raise PushError(
                        f"{destination} was published by another writer while this push was "
                        "resuming it; not overwriting it. Run the push again to take a new "
                        "version."
                    )
                self.remove_stale_temporaries(name)
            claim = encode_record({**record, "status": STATUS_UPLOADING})
            self.write(name, bucket.PUSH_RECORD_FILE, data=claim)
        except PushError:
            raise
        except Exception as err:
            raise self.storage_error(err, f"claim version {number} at {destination}") from err
        logger.info(
            "Pushing %s (%d files, %s) to %s",
            source,
            len(order),
            human_bytes(total_bytes),
            destination,
        )

        started = time.monotonic()
        done_bytes = 0
        for index, relative in enumerate(order, start=1):
            try:
                if relative == bucket.PUSH_RECORD_FILE:
                    self.write(name, relative, data=final_bytes)
                    size = len(final_bytes)
                else:
                    put(name, relative)
                    size = files[relative]
            except Exception as err:
                raise self.storage_error(
                    err,
                    f"upload {relative} (file {index} of {len(order)}) to {destination}",
                    after=not_published,
                ) from err
            done_bytes += size
            logger.info(
                "uploaded %d/%d files, %s of %s: %s",
                index,
                len(order),
                human_bytes(done_bytes),
                human_bytes(total_bytes),
                relative,
            )
        logger.info(
            "Published %s version %d at %s: %d files, %s in %.1f s (checksum %s)",
            record["model_name"],
            number,
            destination,
            len(order),
            human_bytes(total_bytes),
            time.monotonic() - started,
            record["checksum"],
        )

    def apply_retention(self, keep_last: int, protect: int) -> tuple[int, ...]:
        """Deletes the oldest published versions beyond the newest `keep_last`, never `protect`.

        Unpublished directories are left alone: they may be another writer's push in progress.
        A failure here is logged, not raised: the model is published and served either way.

        Args:
          keep_last: 0 deletes nothing; N > 0 keeps the newest N published versions.
          protect: the version just published (or found), never deleted.

        Returns:
          The deleted version numbers, oldest first.
        """
        if keep_last <= 0:
            return ()
        deleted: list[int] = []
        try:
            versions = self.list_versions()
            published = [
                version
                for version in (
                    self.inspect(n, versions[n]) for n in sorted(versions, reverse=True)
                )
                if version.published
            ]
            doomed = [version for version in published[keep_last:] if version.number != protect]
            for version in reversed(doomed):
                self.delete(version)
                deleted.append(version.number)
                logger.info(
                    "Retention (keep_last=%d): deleted version %d at %s",
                    keep_last,
                    version.number,
                    self.version_url(version.name),
                )
        except Exception as err:  # noqa: BLE001 - the push itself succeeded; see the docstring
            logger.warning(
                "Retention (keep_last=%d) stopped after deleting %s: %s",
                keep_last,
                deleted or "nothing",
                self.storage_error(err, f"delete old versions in {self.url}"),
            )
        return tuple(deleted)

    # -- errors --------------------------------------------------------------------------------

    def environment_hint(self) -> str:
        """Which environment variables and permissions this base path's storage needs."""
        if self.protocol == "s3":
            bucket_name = self.root.split("/", 1)[0]
            return (
                "The pusher reads S3 settings from the environment: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or give the pod an IAM role) and AWS_REGION; for MinIO or "
                "another S3-compatible store also S3_ENDPOINT=host:port and S3_USE_HTTPS=0 if it "
                f"speaks plain HTTP. Check that bucket {bucket_name!r} exists and that these "
                "credentials may list, write and delete objects in it."
            )
        if self.protocol == "gs":
            bucket_name = self.root.split("/", 1)[0]
            return (
                "The pusher reads GCS credentials from the environment: set "
                "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file (or use workload "
                "identity), or STORAGE_EMULATOR_HOST for an emulator. Check that bucket "
                f"{bucket_name!r} exists and that the account may list, write and delete objects "
                "in it."
            )
        return f"Check that {self.root} is on a mounted file system writable by this process."

    def storage_error(self, err: BaseException, doing: str, after: str = "") -> PushError:
        """A PushError for a failed storage call: what failed, why, and what to check.

        Args:
          err: what the call raised; a StorageError from `ModelStorage` is unwrapped to the
            client's own exception, so the message names it as before issue 15.
          doing: what was being done, e.g. "list the versions in s3://b/m".
          after: a sentence on the state the failure left (e.g. nothing was published).

        Returns:
          The error to raise.
        """
        while isinstance(err, StorageError) and err.__cause__ is not None:
            err = err.__cause__
        message = f"Could not {doing}: {type(err).__name__}: {str(err).rstrip('.')}."
        if after:
            message += f" {after}"
        return PushError(f"{message} {self.environment_hint()}")
