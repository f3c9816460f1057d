"""Reading one model's base path: version discovery, completeness checks and consistent copies.

Every call that touches storage goes through `ModelStorage`, which counts listings and bytes so
the poll cost promised in DESIGN.md ("one delimiter listing per model per poll") is measurable.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import fsspec

from tfrelay.serving.storage import bucket, errors
from tfrelay.serving.storage.calls import DEFAULT_TIMEOUT_SECONDS, StorageCalls, copy_timeout
from tfrelay.serving.storage.errors import StorageError
from tfrelay.serving.storage.filesystem import filesystem_for, split_url

logger = logging.getLogger(__name__)

T = TypeVar("T")


class StorageUnavailable(StorageError):
    """The base path could not be read (missing, permission, network); retried on the next poll."""


class VersionChanged(StorageError):
    """A version's files changed while it was being copied: a writer is still at work."""

    def __init__(self, message: str) -> None:
        super().__init__(message, errors.CHANGED)


@dataclass
class StorageStats:
    """Counters for the storage cost of serving one model (exported as metrics)."""

    listings: int = 0
    recursive_listings: int = 0
    # One per aspired version per poll: the publish marker's HEAD that notices replaced files.
    heads: int = 0
    bytes_copied: int = 0
    files_copied: int = 0


@dataclass(frozen=True)
class FileInfo:
    size: int
    # A change marker beyond size: mtime on local disks, ETag/generation on object stores.
    stamp: str
    # A marker derived from the bytes alone: S3's ETag, GCS's md5Hash or crc32c; "" on local
    # disks. Unlike `stamp` it survives a touch, a `cp` without -p and a re-upload of the same
    # bytes, so it (with the size) is what names a version's content (issue 13 review).
    content: str = ""


def _stamp(info: Mapping) -> str:
    for key in ("mtime", "ETag", "etag", "generation", "LastModified", "updated"):
        if key in info and info[key] is not None:
            return str(info[key])
    return ""


# S3's "ETag" (s3fs spells it so) is the MD5 of the bytes (of the parts for multipart uploads);
# GCS's lower-case "etag" and "generation" change on any rewrite, so they are not used here.
_CONTENT_KEYS = ("md5Hash", "crc32c", "ETag")


def _content(info: Mapping) -> str:
    for key in _CONTENT_KEYS:
        if info.get(key):
            return f"{key}={info[key]}"
    return ""


def _file_info(info: Mapping) -> FileInfo:
    return FileInfo(int(info.get("size") or 0), _stamp(info), _content(info))


@dataclass(frozen=True)
class VersionInspection:
    """What one look at a version's files found.

    Attributes:
      verdict: the bucket contract's completeness verdict.
      files: the listing it was based on.
      identity: the version's content identity: the push record's checksum when it has one,
        else a digest of the listing's paths, sizes and content hashes (S3 ETag, GCS md5Hash;
        sizes only on local disks), never mtime or generation. A number that reappears with
        another identity is another model (issue 13).
    """

    verdict: bucket.Completeness
    files: dict[str, FileInfo]
    identity: str


# Files hashed into a listing identity when the storage gives no content hash (local disks):
# the graph, and the variables index, which holds a crc32c of every tensor, so new weights of the
# same shapes are other content. Both are small; larger ones are left to their sizes.
_HASHED_WHEN_NO_CONTENT = (bucket.SAVED_MODEL_PB, bucket.VARIABLES_INDEX)
_MAX_HASHED_BYTES = 64 << 20


def listing_identity(files: Mapping[str, FileInfo], hashes: Mapping[str, str] | None = None) -> str:
    """The identity of a version without a push record checksum: its listing's digest.

    Only content-derived fields count: a `touch` or a re-upload of the same bytes changed the
    mtime / generation, and the server used to take the serving version for a reused number,
    fall back to the one before and reload it (issue 13 review).

    Args:
      files: the version's listing.
      hashes: {relative path: digest of its bytes} for files whose listing has no content hash.
    """
    hashes = hashes or {}
    digest = hashlib.sha256()
    for path in sorted(files):
        info = files[path]
        content = info.content or hashes.get(path, "")
        digest.update(f"{path}\0{info.size}\0{content}\0".encode())
    return f"listing:{digest.hexdigest()[:32]}"


class ModelStorage:
    """One model's base path on any supported storage.

    Every file system call goes through `calls` (a deadline, slow/failure logs, error counts) and
    raises `StorageError` on any failure.

    Args:
      base_path: the model's base path (excluding the version), e.g. `s3://bucket/models/m`.
      environ: environment for S3/GCS configuration; defaults to `os.environ`.
      timeout_seconds: deadline of a LIST/HEAD/small read (`--storage_timeout_seconds`); copies
        get more in proportion to their size (`calls.copy_timeout`).
      fs: the file system to use instead of `filesystem_for(base_path, ...)`: the bucket writer
        lists through this class with the file system it writes with (issue 15: one listing).
    """

    def __init__(
        self,
        base_path: str,
        environ: Mapping[str, str] | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        fs: fsspec.AbstractFileSystem | None = None,
    ) -> None:
        self.base_path = base_path
        self.protocol, self._root = split_url(base_path)
        self._fs: fsspec.AbstractFileSystem = (
            fs
            if fs is not None
            else filesystem_for(base_path, environ, timeout_seconds=timeout_seconds)
        )
        self.stats = StorageStats()
        self._stats_lock = threading.Lock()
        self.calls = StorageCalls(base_path, timeout_seconds)

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def version_path(self, version_dir: str) -> str:
        """The storage path of a version directory (as the file system names it)."""
        return posixpath.join(self._root, version_dir)

    def version_url(self, version_dir: str) -> str:
        """The user-facing URL of a version directory, for logs and status."""
        return self.base_path.rstrip("/") + "/" + version_dir

    def local_version_path(self, version_dir: str) -> str:
        """The on-disk path of a version; only valid when `is_local`."""
        return os.path.join(self._root, version_dir)

    def _run(self, doing: str, fn: Callable[[], T], timeout: float | None = None) -> T:
        return self.calls.run(doing, fn, timeout)

    def list_versions(self, missing_ok: bool = False) -> dict[int, str]:
        """Lists the version directories with one non-recursive (delimiter) listing.

        Args:
          missing_ok: a base path that does not exist has no versions (the bucket writer's
            first push), instead of StorageUnavailable and a logged storage error.

        Returns:
          {version number: directory name}. If two names parse to the same number (`7` and
          `007`), the first in sorted order wins and a warning is logged, like TF Serving.

        Raises:
          StorageUnavailable: the base path does not exist (unless `missing_ok`) or cannot be
            listed (in time).
        """
        with self._stats_lock:
            self.stats.listings += 1

        def ls() -> list[dict]:
            try:
                return self._fs.ls(self._root, detail=True)
            except FileNotFoundError:
                if missing_ok:
                    return []
                raise

        try:
            entries = self._run(f"list {self.base_path}", ls)
        except StorageError as err:
            if err.kind == errors.NOT_FOUND:
                raise StorageUnavailable(
                    f"base path {self.base_path} does not exist", errors.NOT_FOUND
                ) from err
            raise StorageUnavailable(err.message, err.kind) from err
        versions: dict[int, str] = {}
        for entry in sorted(entries, key=lambda e: e["name"]):
            if entry.get("type") != "directory":
                continue
            name = posixpath.basename(entry["name"].rstrip("/"))
            version = bucket.parse_version(name)
            if version is None:
                continue
            if version in versions:
                logger.warning(
                    "Ignoring %s: version %d is already provided by %s",
                    self.version_url(name),
                    version,
                    versions[version],
                )
                continue
            versions[version] = name
        return versions

    def list_version_files(self, version_dir: str) -> dict[str, FileInfo]:
        """Lists every file of a version, recursively (used only for versions not yet loaded).

        Args:
          version_dir: the version's directory name.

        Returns:
          {relative posix path: FileInfo}.

        Raises:
          StorageError: the listing failed or timed out.
        """
        with self._stats_lock:
            self.stats.recursive_listings += 1
        root = self.version_path(version_dir)
        found = self._run(
            f"list {self.version_url(version_dir)} recursively",
            lambda: self._fs.find(root, detail=True),
        )
        files: dict[str, FileInfo] = {}
        prefix = root.rstrip("/") + "/"
        for path, info in found.items():
            if info.get("type") == "directory":
                continue
            relative = path[len(prefix) :] if path.startswith(prefix) else path
            files[relative] = _file_info(info)
        return files

    def stat_file(self, version_dir: str, relative_path: str) -> FileInfo | None:
        """One file's size and change stamp (one HEAD on object stores), None if it is gone.

        Raises:
          StorageError: the call failed (other than "not found") or timed out.
        """
        path = posixpath.join(self.version_path(version_dir), relative_path)
        with self._stats_lock:
            self.stats.heads += 1

        def stat() -> FileInfo | None:
            try:
                info = self._fs.info(path)
            except FileNotFoundError:
                return None
            return _file_info(info)

        return self._run(f"stat {self.version_url(version_dir)}/{relative_path}", stat)

    def read_file(
        self, version_dir: str, relative_path: str, expected_size: int | None = None
    ) -> bytes:
        """Reads one file of a version.

        Args:
          version_dir: the version's directory name.
          relative_path: the file, relative to it.
          expected_size: the size the listing gave; a body of another length is a storage
            error (a short read), not a broken model.

        Raises:
          StorageError: the read failed, timed out or returned the wrong number of bytes.
        """
        url = f"{self.version_url(version_dir)}/{relative_path}"
        path = posixpath.join(self.version_path(version_dir), relative_path)
        data = self._run(
            f"read {url}",
            lambda: self._fs.cat_file(path),
            copy_timeout(self.calls.timeout_seconds, expected_size or 0),
        )
        if expected_size is not None and len(data) != expected_size:
            error = StorageError(
                f"Read {len(data)} bytes of {url} but the listing says {expected_size} "
                "(a short or corrupted download); retrying",
                errors.SHORT_READ,
            )
            self.calls.record(error)
            raise error
        return data

    def inspect_version(self, version_dir: str, prefer_tflite: bool = False) -> VersionInspection:
        """Applies the bucket contract's completeness rule to a version and names its content.

        Args:
          version_dir: the version's directory name.
          prefer_tflite: whether `model.tflite` is the servable when present.

        Returns:
          The verdict, the listing and the content identity.

        Raises:
          ValueError: the version is present but broken (unparseable SavedModel or push record).
          StorageError: storage failed while looking (including a short read).
        """
        files = self.list_version_files(version_dir)
        cache: dict[str, bytes] = {}

        def read(relative: str) -> bytes:
            if relative not in cache:
                info = files.get(relative)
                cache[relative] = self.read_file(
                    version_dir, relative, info.size if info is not None else None
                )
            return cache[relative]

        verdict = bucket.check_complete(
            {path: info.size for path, info in files.items()}, read, prefer_tflite=prefer_tflite
        )
        identity = None
        if verdict.marker is not None and bucket.PUSH_RECORD_FILE in files:
            # Already validated by check_complete (which raised for a bad one).
            identity = bucket.parse_push_record(read(bucket.PUSH_RECORD_FILE)).checksum
        if identity is None:
            hashes = {}
            if verdict.complete:
                for relative in _HASHED_WHEN_NO_CONTENT:
                    info = files.get(relative)
                    if info is not None and not info.content and info.size <= _MAX_HASHED_BYTES:
                        # saved_model.pb is cached from the completeness check; the index is
                        # one small read, once per judged version (not per poll).
                        hashes[relative] = hashlib.sha256(read(relative)).hexdigest()
            identity = listing_identity(files, hashes)
        return VersionInspection(verdict, files, identity)

    def check_complete(
        self, version_dir: str, prefer_tflite: bool = False
    ) -> tuple[bucket.Completeness, dict[str, FileInfo]]:
        """Applies the bucket contract's completeness rule to a version.

        Args:
          version_dir: the version's directory name.
          prefer_tflite: whether `model.tflite` is the servable when present.

        Returns:
          The verdict and the listing it was based on.

        Raises:
          ValueError: the version is present but broken (unparseable SavedModel or push record).
          StorageError: storage failed while looking.
        """
        inspection = self.inspect_version(version_dir, prefer_tflite)
        return inspection.verdict, inspection.files

    def copy_version(
        self, version_dir: str, destination: str, files: Mapping[str, FileInfo]
    ) -> str:
        """Copies a version into a local directory and proves the copy is whole and consistent.

        The copy must match the listing (every size), the push record when there is one (every
        size it lists, and its checksum), and the version must list the same afterwards.

        Args:
          version_dir: the version's directory name.
          destination: a local directory that must not exist yet.
          files: the listing the completeness check approved.

        Returns:
          `destination`.

        Raises:
          StorageError: a file could not be copied (in time), or the copy does not match the
            listing or the push record (kind SHORT_READ / MISMATCH).
          VersionChanged: the version's files differ from `files` after the copy (a writer is
            still at work). The partial copy is removed in every case.
          ValueError: the copied push record is not a valid one (a broken version).
        """
        os.makedirs(destination)
        try:
            source_root = self.version_path(version_dir)
            for relative, info in sorted(files.items()):
                target = os.path.join(destination, *relative.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                source = posixpath.join(source_root, relative)
                self._run(
                    f"copy {self.version_url(version_dir)}/{relative} ({info.size} bytes)",
                    lambda source=source, target=target: self._fs.get_file(source, target),
                    copy_timeout(self.calls.timeout_seconds, info.size),
                )
                with self._stats_lock:
                    self.stats.bytes_copied += info.size
                    self.stats.files_copied += 1
            self._verify_copy(version_dir, destination, files)
            after = self.list_version_files(version_dir)
            if after != dict(files):
                raise VersionChanged(
                    f"{self.version_url(version_dir)} changed while it was being copied"
                )
        except BaseException:
            shutil.rmtree(destination, ignore_errors=True)
            raise
        return destination

    def _verify_copy(
        self, version_dir: str, destination: str, files: Mapping[str, FileInfo]
    ) -> None:
        url = self.version_url(version_dir)

        def fail(message: str, kind: str) -> None:
            error = StorageError(f"The copy of {url} {message}; not loading it, retrying", kind)
            self.calls.record(error)
            raise error

        for relative, info in files.items():
            local = os.path.join(destination, *relative.split("/"))
            size = os.path.getsize(local)
            if size != info.size:
                fail(
                    f"has {size} bytes of {relative}, the listing says {info.size}",
                    errors.SHORT_READ,
                )
        if bucket.PUSH_RECORD_FILE not in files:
            return
        with open(os.path.join(destination, *bucket.PUSH_RECORD_FILE.split("/")), "rb") as f:
            # A bad record is a broken version (ValueError, the model's fault), not storage's.
            record = bucket.parse_push_record(f.read(bucket.MAX_PUSH_RECORD_BYTES + 1))
        recorded = record.files
        for relative, size in recorded.items():
            # parse_push_record rejected "..", absolute paths and backslashes.
            local = os.path.join(destination, *relative.split("/"))
            actual = os.path.getsize(local) if os.path.isfile(local) else None
            if actual != size:
                fail(
                    f"has {actual} bytes of {relative}, the push record says {size}",
                    errors.MISMATCH,
                )
        checksum = record.checksum
        if checksum is not None and checksum.startswith("sha256:"):
            actual_checksum = bucket.model_checksum(destination, recorded)
            if actual_checksum != checksum:
                fail(
                    f"has checksum {actual_checksum}, the push record says {checksum}",
                    errors.MISMATCH,
                )
