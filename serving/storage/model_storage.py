"""Reading one model's base path: version discovery, completeness checks and consistent copies.

Every call that touches storage goes through `ModelStorage`, which counts listings and bytes so
the poll cost promised in DESIGN.md ("one delimiter listing per model per poll") is measurable.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import fsspec

from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.filesystem import filesystem_for, split_url

logger = logging.getLogger(__name__)


class StorageUnavailable(Exception):
    """The base path could not be read (missing, permission, network); retried on the next poll."""


class VersionChanged(Exception):
    """A version's files changed while it was being copied: a writer is still at work."""


@dataclass
class StorageStats:
    """Counters for the storage cost of serving one model (exported as metrics)."""

    listings: int = 0
    recursive_listings: int = 0
    bytes_copied: int = 0
    files_copied: int = 0


@dataclass(frozen=True)
class FileInfo:
    size: int
    # A change marker beyond size: mtime on local disks, ETag/generation on object stores.
    stamp: str


def _stamp(info: Mapping) -> str:
    for key in ("mtime", "ETag", "etag", "generation", "LastModified", "updated"):
        if key in info and info[key] is not None:
            return str(info[key])
    return ""


class ModelStorage:
    """One model's base path on any supported storage.

    Args:
      base_path: the model's base path (excluding the version), e.g. `s3://bucket/models/m`.
      environ: environment for S3/GCS configuration; defaults to `os.environ`.
    """

    def __init__(self, base_path: str, environ: Mapping[str, str] | None = None) -> None:
        self.base_path = base_path
        self.protocol, self._root = split_url(base_path)
        self._fs: fsspec.AbstractFileSystem = filesystem_for(base_path, environ)
        self.stats = StorageStats()
        self._stats_lock = threading.Lock()

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

    def list_versions(self) -> dict[int, str]:
        """Lists the version directories with one non-recursive (delimiter) listing.

        Returns:
          {version number: directory name}. If two names parse to the same number (`7` and
          `007`), the first in sorted order wins and a warning is logged, like TF Serving.

        Raises:
          StorageUnavailable: the base path does not exist or cannot be listed.
        """
        with self._stats_lock:
            self.stats.listings += 1
        try:
            entries = self._fs.ls(self._root, detail=True)
        except FileNotFoundError as err:
            raise StorageUnavailable(f"base path {self.base_path} does not exist") from err
        except Exception as err:
            raise StorageUnavailable(f"cannot list {self.base_path}: {err}") from err
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
        """
        with self._stats_lock:
            self.stats.recursive_listings += 1
        root = self.version_path(version_dir)
        found = self._fs.find(root, detail=True)
        files: dict[str, FileInfo] = {}
        prefix = root.rstrip("/") + "/"
        for path, info in found.items():
            if info.get("type") == "directory":
                continue
            relative = path[len(prefix) :] if path.startswith(prefix) else path
            files[relative] = FileInfo(int(info.get("size") or 0), _stamp(info))
        return files

    def read_file(self, version_dir: str, relative_path: str) -> bytes:
        """Reads one file of a version."""
        with self._fs.open(posixpath.join(self.version_path(version_dir), relative_path)) as f:
            data = f.read()
        return data

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
        """
        files = self.list_version_files(version_dir)
        verdict = bucket.check_complete(
            {path: info.size for path, info in files.items()},
            lambda relative: self.read_file(version_dir, relative),
            prefer_tflite=prefer_tflite,
        )
        return verdict, files

    def copy_version(
        self, version_dir: str, destination: str, files: Mapping[str, FileInfo]
    ) -> str:
        """Copies a version into a local directory and proves the copy is a consistent snapshot.

        Args:
          version_dir: the version's directory name.
          destination: a local directory that must not exist yet.
          files: the listing the completeness check approved.

        Returns:
          `destination`.

        Raises:
          VersionChanged: the version's files differ from `files` after the copy (a writer is
            still at work); the partial copy is removed.
        """
        os.makedirs(destination)
        try:
            source_root = self.version_path(version_dir)
            for relative, info in sorted(files.items()):
                target = os.path.join(destination, *relative.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                self._fs.get_file(posixpath.join(source_root, relative), target)
                with self._stats_lock:
                    self.stats.bytes_copied += info.size
                    self.stats.files_copied += 1
            after = self.list_version_files(version_dir)
            if after != dict(files):
                raise VersionChanged(
                    f"{self.version_url(version_dir)} changed while it was being copied"
                )
        except BaseException:
            shutil.rmtree(destination, ignore_errors=True)
            raise
        return destination
