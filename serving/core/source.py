"""The Source: polls each model's base path and tells the manager which versions to serve.

One poll costs one delimiter (non-recursive) listing per model. A version seen for the first time
also costs one recursive listing (and a read of its small `saved_model.pb`) per poll until it is
complete; after that it is never listed again. Incomplete versions are not aspired, so a
half-uploaded version never displaces a serving one; a version that stays incomplete and
unchanged for `incomplete_version_timeout_seconds` is reported as failed in the status.

A complete version is re-checked with one HEAD of its publish marker per poll while it is
aspired, so a version deleted and pushed again under the same number between two polls is seen
as the new content it is. Versions that vanish, or whose number now holds other content, are
not aspired: the manager loads the latest remaining version first and then unloads them, as TF
Serving does (issue 13). Models are polled on a pool of `POLL_THREADS` threads shared by all
models (not one thread each); a poll still running is skipped by the next round, and each
storage call has a deadline, so a hanging LIST of one model delays no other model, load or
request while fewer than `POLL_THREADS` models hang at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field

from tfrelay.serving.config.model_config import ModelConfig, PolicyKind
from tfrelay.serving.core.manager import ServableManager
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.errors import StorageError
from tfrelay.serving.storage.model_storage import (
    FileInfo,
    ModelStorage,
    StorageUnavailable,
    listing_identity,
)

logger = logging.getLogger(__name__)

# Threads polling models (shared by all models): more models than this whose storage hangs at
# the same time queue the others' polls until a storage deadline frees a thread.
POLL_THREADS = 8
# Polling an object store more often than this is logged as a cost warning (TF Serving #1291).
_REMOTE_POLL_COST_WARNING_SECONDS = 5.0


@dataclass(frozen=True)
class VersionCandidate:
    """A complete version the manager may load.

    Attributes:
      storage: the model's storage.
      version: the version number.
      version_dir: its directory name ("00000123").
      files: the listing the completeness check approved (the loader re-checks it).
      marker: the publish marker found (decides SavedModel or TFLite).
      identity: the content identity (push record checksum, else a listing digest); the
        manager treats other content under a known number as a new candidate.
    """

    storage: ModelStorage
    version: int
    version_dir: str
    files: Mapping[str, FileInfo]
    marker: str
    identity: str = ""


@dataclass
class _Pending:
    listing: Mapping[str, FileInfo]
    since: float
    reported: bool = False


@dataclass
class _ModelWatch:
    config: ModelConfig
    storage: ModelStorage
    complete: dict[str, VersionCandidate] = field(default_factory=dict)
    pending: dict[str, _Pending] = field(default_factory=dict)
    polls: int = 0
    last_problem: str | None = None
    # A poll of this model is running (on the poll pool); the next round skips it.
    busy: bool = False
    # Versions whose number now holds other content than the manager holds: {dir: identity}.
    replaced: dict[str, str] = field(default_factory=dict)
    # Versions whose judging raised unexpectedly: {dir: error}, so it is logged once (not every
    # poll) and the rest of the model keeps polling (issue 13 review).
    judge_errors: dict[str, str] = field(default_factory=dict)


class StorageSource:
    """Polls storage for every configured model.

    Args:
      manager: receives aspired versions.
      poll_wait_seconds: `--file_system_poll_wait_seconds`; 0 or less polls once at start.
      prefer_tflite: `--prefer_tflite_model` (a version with model.tflite serves it).
      incomplete_version_timeout_seconds: after this long incomplete and unchanged, a version is
        shown as failed in the status (it is re-judged if its files change later).
      storage_factory: builds a ModelStorage for a base path (injectable for tests).
      clock: monotonic clock.
    """

    def __init__(
        self,
        manager: ServableManager,
        poll_wait_seconds: float = 1.0,
        prefer_tflite: bool = False,
        incomplete_version_timeout_seconds: float = 300.0,
        storage_factory: Callable[[str], ModelStorage] = ModelStorage,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._manager = manager
        self._poll_wait = poll_wait_seconds
        self._prefer_tflite = prefer_tflite
        self._incomplete_timeout = incomplete_version_timeout_seconds
        self._storage_factory = storage_factory
        self._clock = clock
        self._lock = threading.Lock()
        self._watches: dict[str, _ModelWatch] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pollers = ThreadPoolExecutor(POLL_THREADS, thread_name_prefix="tfrelay-poll")
        self.poll_count = 0

    def set_models(self, models: Sequence[ModelConfig]) -> None:
        """Watches exactly these models (keeps state for models whose config is unchanged)."""
        with self._lock:
            watches: dict[str, _ModelWatch] = {}
            for model in models:
                old = self._watches.get(model.name)
                if old is not None and old.config.base_path == model.base_path:
                    old.config = model
                    watches[model.name] = old
                    continue
                storage = self._storage_factory(model.base_path)
                if not storage.is_local and 0 < self._poll_wait < _REMOTE_POLL_COST_WARNING_SECONDS:
                    logger.warning(
                        "Polling %s every %gs costs one LIST request per poll (%d a day). For "
                        "object stores consider --file_system_poll_wait_seconds=30 or more.",
                        model.base_path,
                        self._poll_wait,
                        int(86400 / self._poll_wait),
                    )
                watches[model.name] = _ModelWatch(model, storage)
            self._watches = watches

    def storage_of(self, model_name: str) -> ModelStorage | None:
        with self._lock:
            watch = self._watches.get(model_name)
            return watch.storage if watch else None

    def watched(self) -> dict[str, _ModelWatch]:
        with self._lock:
            return dict(self._watches)

    def pending_versions(self, model_name: str) -> dict[int, str]:
        """Versions present but incomplete: {version: what is missing} (for /v1/models)."""
        with self._lock:
            watch = self._watches.get(model_name)
            if watch is None:
                return {}
            return {bucket.parse_version(name): "incomplete" for name in watch.pending}

    # -- polling ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Polls once now (in the background) and then every poll interval."""
        self._thread = threading.Thread(target=self._run, name="tfrelay-source", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        # A poll stuck in a storage call ends at its timeout; nobody waits for it.
        self._pollers.shutdown(wait=False, cancel_futures=True)

    def poll_now(self) -> None:
        """Asks for an immediate poll (after a config reload), even when periodic polling is off."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self.poll_once()
            if self._poll_wait > 0:
                self._wake.wait(self._poll_wait)
            else:
                self._wake.wait()

    def poll_once(self) -> None:
        """Polls every watched model once, on the shared poll pool.

        Waits for the polls at most one poll interval (at least 1 s): a model whose storage
        hangs keeps its poll running in the background (bounded by --storage_timeout_seconds)
        and is skipped until it returns, while every other model is polled on time.
        """
        futures = []
        for watch in self.watched().values():
            if watch.busy:
                logger.debug("Poll of model %s still running; skipping it", watch.config.name)
                continue
            watch.busy = True
            futures.append(self._pollers.submit(self._poll_guarded, watch))
        if futures:
            wait_futures(futures, timeout=max(self._poll_wait, 1.0))
        self.poll_count += 1

    def _poll_guarded(self, watch: _ModelWatch) -> None:
        try:
            self._poll_model(watch)
        except Exception:
            if not self._stop.is_set():  # a poll outliving stop() may fail as things close
                logger.exception("Polling model %s failed", watch.config.name)
        finally:
            watch.busy = False

    def _log_problem(self, watch: _ModelWatch, message: str, level: int = logging.WARNING) -> None:
        # Said once until it changes: a missing base path would otherwise flood the log every
        # second (TF Serving #1693).
        if watch.last_problem != message:
            logger.log(level, message)
            watch.last_problem = message

    def _poll_model(self, watch: _ModelWatch) -> None:
        config = watch.config
        watch.polls += 1
        try:
            versions = watch.storage.list_versions()
        except StorageUnavailable as err:
            self._log_problem(
                watch,
                f"Model {config.name}: {err}; will retry every poll. Versions already loaded keep "
                "serving.",
            )
            return
        if not versions:
            self._log_problem(
                watch,
                f"No versions of servable {config.name} found under base path "
                f"{config.base_path}. Did you forget to name your leaf directory as a number "
                "(eg. '/1/')?",
            )
        else:
            watch.last_problem = None

        # Forget state about directories that disappeared. The manager keeps its own record of
        # a loaded version and unloads it once the latest remaining version serves; a number
        # that reappears is judged from scratch, with its new identity.
        present = set(versions.values())
        for name in list(watch.complete):
            if name not in present:
                logger.info(
                    "Model %s version %s is gone from %s: it will be unloaded once the latest "
                    "remaining version is AVAILABLE (as TF Serving does)",
                    config.name,
                    name,
                    config.base_path,
                )
                del watch.complete[name]
        for name in list(watch.pending):
            if name not in present:
                del watch.pending[name]
        for name in list(watch.replaced):
            if name not in present:
                del watch.replaced[name]
        for name in list(watch.judge_errors):
            if name not in present:
                del watch.judge_errors[name]

        aspired: dict[int, VersionCandidate] = {}
        policy = config.policy
        wanted = policy.num_versions if policy.kind is PolicyKind.LATEST else None
        for version in sorted(versions, reverse=True):
            if policy.kind is PolicyKind.SPECIFIC and version not in policy.versions:
                continue
            try:
                candidate = self._judge(watch, version, versions[version])
            except Exception as err:  # a bug or an input nobody foresaw: skip this version only
                message = f"{type(err).__name__}: {err}"[:500]
                if watch.judge_errors.get(versions[version]) != message:
                    watch.judge_errors[versions[version]] = message
                    logger.exception(
                        "Model %s version %d cannot be judged; not serving it", config.name, version
                    )
                continue
            watch.judge_errors.pop(versions[version], None)
            if candidate is None:
                continue
            if self._held_elsewhere(watch, candidate):
                continue
            aspired[version] = candidate
            if wanted is not None and len(aspired) >= wanted:
                break
        self._manager.set_aspired_versions(config.name, aspired)

    def _held_elsewhere(self, watch: _ModelWatch, candidate: VersionCandidate) -> bool:
        """Whether the manager still holds other content under this candidate's number.

        Such a version is treated as vanished until the manager has unloaded the old files
        (after the latest remaining version loaded); then the new content is aspired and the
        manager loads it as a new candidate. So no request is answered from files that are in
        no bucket, and the model stays available meanwhile.
        """
        held = self._manager.held_identity(watch.config.name, candidate.version)
        if held is None or not candidate.identity or held == candidate.identity:
            watch.replaced.pop(candidate.version_dir, None)
            return False
        if watch.replaced.get(candidate.version_dir) != candidate.identity:
            watch.replaced[candidate.version_dir] = candidate.identity
            logger.warning(
                "Model %s version %d at %s now holds other content (%s; the server holds %s): "
                "the number was reused. Unloading the old files once the latest remaining "
                "version serves, then loading the new content as a new candidate.",
                watch.config.name,
                candidate.version,
                candidate.storage.version_url(candidate.version_dir),
                candidate.identity,
                held,
            )
        return True

    def _still_same(self, watch: _ModelWatch, known: VersionCandidate) -> bool:
        """One HEAD of the publish marker: False when the version's files were replaced."""
        before = known.files.get(known.marker)
        try:
            now = watch.storage.stat_file(known.version_dir, known.marker)
        except StorageError:
            return True  # logged by the storage layer; judge again on a later poll
        return now == before

    def _judge(self, watch: _ModelWatch, version: int, version_dir: str) -> VersionCandidate | None:
        known = watch.complete.get(version_dir)
        # Its last load failed on storage (a short read, files changing under the copy): look
        # at the files again rather than retrying on a listing that may be stale.
        rejudge = known is not None and self._manager.waits_for_storage(watch.config.name, version)
        if known is not None and not rejudge:
            if self._still_same(watch, known):
                return known
            logger.info(
                "Model %s version %d changed in storage (its %s is new or gone); judging it again",
                watch.config.name,
                version,
                known.marker,
            )
            del watch.complete[version_dir]
        storage = watch.storage
        try:
            inspection = storage.inspect_version(version_dir, self._prefer_tflite)
        except ValueError as err:
            # Present but broken: let the loader try, so the status shows TensorFlow's own error
            # and the load is retried and ends like TF Serving's.
            logger.warning("Model %s version %d looks broken: %s", watch.config.name, version, err)
            try:
                files = storage.list_version_files(version_dir)
            except StorageError:
                return None
            candidate = VersionCandidate(
                storage,
                version,
                version_dir,
                files,
                bucket.SAVED_MODEL_PB,
                listing_identity(files),
            )
            watch.complete[version_dir] = candidate
            return candidate
        except StorageError as err:
            # Logged (at once, then rate-limited) by the storage layer; try again next poll.
            logger.debug("Cannot inspect %s: %s", storage.version_url(version_dir), err)
            # A version already judged stays aspired, so it keeps waiting for storage (and its
            # status says so) instead of looking gone.
            return known if rejudge else None
        if rejudge:
            del watch.complete[version_dir]
        verdict, files = inspection.verdict, inspection.files

        if verdict.complete:
            pending = watch.pending.pop(version_dir, None)
            if pending is not None and pending.reported:
                self._manager.forget_unloadable(watch.config.name, version)
            candidate = VersionCandidate(
                storage, version, version_dir, files, verdict.marker, inspection.identity
            )
            watch.complete[version_dir] = candidate
            return candidate

        now = self._clock()
        pending = watch.pending.get(version_dir)
        if pending is None or pending.listing != files:
            if pending is not None and pending.reported:
                self._manager.forget_unloadable(watch.config.name, version)
            logger.info(
                "Model %s version %d is not complete yet (%s); not serving it until it is",
                watch.config.name,
                version,
                verdict.describe(),
            )
            watch.pending[version_dir] = _Pending(files, now)
            return None
        if not pending.reported and now - pending.since >= self._incomplete_timeout:
            pending.reported = True
            names = ", ".join(sorted(files)[:8]) or "no files"
            message = (
                f"Version {version} of model {watch.config.name} at "
                f"{storage.version_url(version_dir)} has been incomplete for "
                f"{self._incomplete_timeout:g}s ({verdict.describe()}; found: {names}). It is "
                "not a loadable SavedModel or TFLite model; push a complete version."
            )
            logger.error(message)
            self._manager.report_unloadable(
                watch.config.name, version, ServingError(Code.NOT_FOUND, message)
            )
        return None
