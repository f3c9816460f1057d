"""Turns a complete version candidate into a loaded servable, and back.

Local versions load in place; remote ones are first copied into a local cache directory (removed
again on unload), each load into a fresh directory, so a number reused with other content never
loads from an earlier copy. Either way the version's listing is compared before and after, so
files that were still being written are never loaded as if whole; remote copies are also
verified against the listing's sizes and the push record (sizes, checksum). Any storage problem
raises a `StorageError`, which the manager retries without using up the load-retry budget.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable

from tfrelay.serving.core.source import VersionCandidate
from tfrelay.serving.servables.base import Servable
from tfrelay.serving.servables.saved_model import SavedModelServable, SessionOptions
from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.model_storage import VersionChanged

logger = logging.getLogger(__name__)

# Hook run on a freshly loaded servable before it becomes AVAILABLE (e.g. warmup).
PrepareFn = Callable[[Servable], None]


class VersionLoader:
    """Loads and unloads versions for the manager.

    Args:
      session_options: how SavedModel sessions are built.
      cache_dir: where remote versions are copied; a private temp dir when None.
      prepare: run after load and before the version serves (warmup); raising fails the load.
      servable_factories: {publish marker: factory} overriding the built-in formats.
    """

    def __init__(
        self,
        session_options: SessionOptions | None = None,
        cache_dir: str | None = None,
        prepare: PrepareFn | None = None,
        servable_factories: dict[str, Callable[[str, int, str], Servable]] | None = None,
    ) -> None:
        self._session_options = session_options or SessionOptions()
        self._owns_cache = cache_dir is None
        self.cache_dir = cache_dir or tempfile.mkdtemp(prefix="tfrelay-cache-")
        os.makedirs(self.cache_dir, exist_ok=True)
        self._prepare = prepare
        self._factories: dict[str, Callable[[str, int, str], Servable]] = {
            bucket.SAVED_MODEL_PB: self._saved_model,
            bucket.SAVED_MODEL_PBTXT: self._saved_model,
        }
        self._factories.update(servable_factories or {})
        self._cache_paths: dict[int, str] = {}

    def _saved_model(self, model_name: str, version: int, path: str) -> Servable:
        return SavedModelServable(model_name, version, path, self._session_options)

    def load(self, model_name: str, version: int, candidate: VersionCandidate) -> Servable:
        """Loads one version (manager's load_fn).

        Raises:
          StorageError: storage failed, or the copy does not match the listing or the push
            record (retried by the manager without using up --max_num_load_retries).
          VersionChanged: the files changed during the load (a StorageError too).
          ValueError: the version's format is not servable, or its push record is invalid.
          Exception: whatever the model format's loader raised.
        """
        factory = self._factories.get(candidate.marker)
        if factory is None:
            raise ValueError(
                f"{candidate.storage.version_url(candidate.version_dir)} has a {candidate.marker} "
                "but this server cannot serve that format (for model.tflite, pass "
                "--prefer_tflite_model)"
            )
        storage = candidate.storage
        if storage.is_local:
            path = storage.local_version_path(candidate.version_dir)
            cache_path = None
        else:
            cache_path = os.path.join(
                self.cache_dir, model_name, f"{candidate.version_dir}-{uuid.uuid4().hex[:8]}"
            )
            os.makedirs(os.path.dirname(cache_path), exist_ok=True)
            logger.info(
                "Copying %s (%d files, %d bytes) to %s",
                storage.version_url(candidate.version_dir),
                len(candidate.files),
                sum(info.size for info in candidate.files.values()),
                cache_path,
            )
            path = storage.copy_version(candidate.version_dir, cache_path, candidate.files)
        servable = factory(model_name, version, path)
        try:
            # Inside the try: a bad record (ValueError) must not leak the cache copy.
            servable.push_record = _read_push_record(path)
            servable.load()
            if storage.is_local and storage.list_version_files(candidate.version_dir) != dict(
                candidate.files
            ):
                raise VersionChanged(
                    f"{storage.version_url(candidate.version_dir)} changed while it was loading"
                )
            if self._prepare is not None:
                self._prepare(servable)
        except BaseException:
            servable.unload()
            if cache_path:
                shutil.rmtree(cache_path, ignore_errors=True)
            raise
        if cache_path:
            self._cache_paths[id(servable)] = cache_path
        return servable

    def unload(self, servable: Servable) -> None:
        """Releases a servable and its cache copy (manager's unload_fn)."""
        servable.unload()
        cache_path = self._cache_paths.pop(id(servable), None)
        if cache_path:
            shutil.rmtree(cache_path, ignore_errors=True)

    def close(self) -> None:
        """Removes the cache directory if this loader created it."""
        if self._owns_cache:
            shutil.rmtree(self.cache_dir, ignore_errors=True)


def _read_push_record(version_path: str) -> dict | None:
    """The push record of a version about to load (push lineage for the model listing).

    Returns:
      The record, or None when the version has none.

    Raises:
      ValueError: the record is present but not a valid push record (`bucket.parse_push_record`):
        the version is broken and never serves (issue 13 review).
    """
    path = os.path.join(version_path, *bucket.PUSH_RECORD_FILE.split("/"))
    try:
        with open(path, "rb") as f:
            data = f.read(bucket.MAX_PUSH_RECORD_BYTES + 1)
    except FileNotFoundError:
        return None
    return dict(bucket.parse_push_record(data).raw)
