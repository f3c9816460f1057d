"""The Manager: loads and unloads versions on its own threads and answers request lookups.

The source says which versions each model should have (`set_aspired_versions`); a reconcile
thread applies TF Serving's availability-preserving policy one action at a time; loads and
unloads run on their own pools so requests never wait for them. Lookups read an immutable
snapshot that is swapped whole after each change, so the request path takes no manager lock.

Status readers (readiness, gauges) subscribe to the manager's version events (`subscribe`, as TF
Serving's ServableStateMonitor listens on the manager's EventBus) instead of asking it: an event
is published on the thread that changed the state, never on the request path (issue 15).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Set
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tfrelay.serving import errors
from tfrelay.serving.core import policy
from tfrelay.serving.core.handles import LoadedVersion
from tfrelay.serving.core.states import VersionState, VersionStatus
from tfrelay.serving.core.thread_priority import lower_thread_priority
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.servables.base import Servable
from tfrelay.serving.storage.errors import StorageError

logger = logging.getLogger(__name__)

# Loads a version described by the source's candidate; raises on failure.
LoadFn = Callable[[str, int, object], Servable]
# Releases a servable and whatever the load created (cache copies).
UnloadFn = Callable[[Servable], None]


@dataclass(frozen=True)
class ManagerOptions:
    """Manager tuning, from the server flags of the same names.

    Attributes:
      num_load_threads: concurrent loads across models (TF's 0 means "in the manager thread";
        here it means one dedicated load thread, so requests never wait on a load).
      num_unload_threads: concurrent unloads, same convention.
      max_num_load_retries: retries after the first failed load.
      load_retry_interval_seconds: wait before the first retry; doubles for each further retry,
        capped at `max_retry_backoff_factor` times this value.
      allow_version_labels_for_unavailable_models: lets a new label name a version not loaded.
      max_ended_versions: END records kept per model in the status (TF keeps all, #1488).
      storage_retry_initial_seconds: wait before retrying a load that failed because of storage
        (a StorageError); doubles per failure up to `storage_retry_max_seconds`. Such failures do
        not count against `max_num_load_retries` (issue 13, TF Serving #1738).
      storage_retry_max_seconds: the longest wait between storage retries; the server sets it to
        the poll interval, so a version serves within a poll of storage coming back.
    """

    num_load_threads: int = 0
    num_unload_threads: int = 0
    max_num_load_retries: int = 5
    load_retry_interval_seconds: float = 60.0
    max_retry_backoff_factor: float = 8.0
    allow_version_labels_for_unavailable_models: bool = False
    max_ended_versions: int = 10
    storage_retry_initial_seconds: float = 1.0
    storage_retry_max_seconds: float = 30.0


# What the status says about a version whose last load failed.
FAILURE_STORAGE = "storage"
FAILURE_MODEL = "model"


def _waits_for_storage(error: object) -> bool:
    """Whether a failed load is retried without using up --max_num_load_retries: only for
    storage's passing trouble (timeouts, connections, 5xx, short reads, changing files), not for
    a denied or missing path, nor an unclassified error (issue 13 review)."""
    return isinstance(error, StorageError) and error.transient


def _identity(candidate: object) -> str | None:
    return getattr(candidate, "identity", None)


@dataclass
class _VersionRecord:
    version: int
    state: VersionState = VersionState.START
    aspired: bool = True
    candidate: object = None
    attempts: int = 0
    next_attempt_at: float = 0.0
    loaded: LoadedVersion | None = None
    error: ServingError | None = None
    ended_at: float = 0.0
    load_seconds: float | None = None
    # The error of the last failed attempt while retries remain (TF's status stays OK then).
    last_error: ServingError | None = None
    # The content identity of the candidate loaded (or being loaded), kept after END.
    identity: str | None = None
    # Other content under the same number, loaded once the old files are unloaded.
    replacement: object = None
    # Failed attempts caused by storage (they do not use up the retry budget).
    storage_failures: int = 0

    def status(self) -> VersionStatus:
        if self.error is not None:
            return VersionStatus(self.version, self.state, self.error.code, self.error.message)
        if self.state == VersionState.START and _waits_for_storage(self.last_error):
            # Not TF Serving's (its status stays OK while a retry waits), but the one thing an
            # operator needs in an outage: this version waits for storage, not for a fix.
            return VersionStatus(
                self.version,
                self.state,
                self.last_error.code,
                f"Waiting for storage (retried every poll until it answers; does not use up "
                f"--max_num_load_retries; {self.storage_failures} failed attempts): "
                f"{self.last_error.message}",
            )
        return VersionStatus(self.version, self.state)

    @property
    def failure(self) -> str | None:
        """FAILURE_STORAGE or FAILURE_MODEL for the last failed attempt, or None."""
        error = self.error or self.last_error
        if error is None:
            return None
        return FAILURE_STORAGE if isinstance(error, StorageError) else FAILURE_MODEL

    def rearm(self, candidate: object) -> None:
        """Makes an ended (or never loaded) version a fresh candidate again."""
        self.state = VersionState.START
        self.aspired = True
        self.candidate = candidate
        self.identity = _identity(candidate)
        self.replacement = None
        self.attempts = 0
        self.storage_failures = 0
        self.next_attempt_at = 0.0
        self.error = None
        self.last_error = None
        self.load_seconds = None


@dataclass
class _ModelRecord:
    name: str
    versions: dict[int, _VersionRecord] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)
    pinned: frozenset[int] = frozenset()
    configured: bool = True


@dataclass(frozen=True)
class ModelServing:
    """The request path's immutable view of one model.

    Attributes:
      name: the model name.
      versions: AVAILABLE versions by number.
      latest: the highest AVAILABLE version, or None.
      labels: version labels from the config.
    """

    name: str
    versions: Mapping[int, LoadedVersion]
    latest: LoadedVersion | None
    labels: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class VersionEvent:
    """One version's change of state, as the manager publishes it (TF Serving's ServableState).

    Attributes:
      model_name: the model.
      status: the version's status after the change: its new state and, for a load that failed
        (for good, or while it waits to be retried), the error.
    """

    model_name: str
    status: VersionStatus

    @property
    def version(self) -> int:
        """The version number."""
        return self.status.version

    @property
    def state(self) -> VersionState:
        """The version's new state."""
        return self.status.state


# Receives every VersionEvent; see `ServableManager.subscribe` for where and when it runs.
VersionSubscriber = Callable[[VersionEvent], None]


class Subscription:
    """A subscriber registered with `ServableManager.subscribe`; `cancel()` ends its events.

    Attributes:
      callback: the subscriber.
    """

    __slots__ = ("_manager", "callback")

    def __init__(self, manager: ServableManager, callback: VersionSubscriber) -> None:
        self._manager = manager
        self.callback = callback

    def cancel(self) -> None:
        """Stops delivering events to this subscriber (idempotent; takes the manager's lock)."""
        self._manager._unsubscribe(self)


def describe_request(model: str, version: int | None, label: str | None) -> str:
    """TF Serving's rendering of a servable request in "not found" errors."""
    if version is not None:
        return f"Specific({model}, {version})"
    if label is not None:
        return f"Label({model}, {label})"
    return f"Latest({model})"


class ServableManager:
    """Owns every loaded version of every model.

    Args:
      load_fn: loads a version; called on a load thread with (model, version, candidate).
      unload_fn: releases a servable; called on an unload thread after requests drained.
      options: tuning; see ManagerOptions.
      clock: monotonic clock, injectable so retry timing is testable without sleeping.
    """

    def __init__(
        self,
        load_fn: LoadFn,
        unload_fn: UnloadFn,
        options: ManagerOptions | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load_fn = load_fn
        self._unload_fn = unload_fn
        self._options = options or ManagerOptions()
        self._clock = clock
        self._lock = threading.Condition()
        self._models: dict[str, _ModelRecord] = {}
        self._serving: dict[str, ModelServing] = {}
        self._loaders = ThreadPoolExecutor(
            max(1, self._options.num_load_threads),
            thread_name_prefix="tfrelay-load",
            initializer=lower_thread_priority,
        )
        self._unloaders = ThreadPoolExecutor(
            max(1, self._options.num_unload_threads),
            thread_name_prefix="tfrelay-unload",
            initializer=lower_thread_priority,
        )
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tfrelay-manager", daemon=True)
        # Replaced whole on (un)subscribe, so publishing iterates a tuple nobody mutates.
        self._subscriptions: tuple[Subscription, ...] = ()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the reconcile thread."""
        self._thread.start()

    def stop(self, unload: bool = True) -> None:
        """Stops reconciling and, by default, unloads every version.

        Args:
          unload: release loaded servables (waits for in-flight requests to finish).
        """
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if self._thread.is_alive():
            self._thread.join()
        self._loaders.shutdown(wait=True)
        if unload:
            with self._lock:
                loaded = [
                    record.loaded
                    for model in self._models.values()
                    for record in model.versions.values()
                    if record.loaded is not None
                ]
                self._serving = {}
            for handle in loaded:
                handle.retire_and_wait(timeout=30)
                self._unload_fn(handle.servable)
        self._unloaders.shutdown(wait=True)

    def add_listener(self, listener: Callable[[str, int, VersionState], None]) -> Subscription:
        """Registers a callback for state changes (model, version, new state).

        The untyped form of `subscribe(..., replay=False)`, kept for existing callers.

        Args:
          listener: called as `subscribe` calls its subscribers.

        Returns:
          The subscription.
        """
        return self.subscribe(
            lambda event: listener(event.model_name, event.version, event.state), replay=False
        )

    # -- version events ------------------------------------------------------------------------

    def subscribe(self, callback: VersionSubscriber, replay: bool = True) -> Subscription:
        """Delivers every version's changes of state to `callback` from now on.

        Events are published under the manager's lock, on the thread that changed the state (the
        reconcile, load or unload threads, or a config or source call), in the order the states
        changed. The request path never publishes: lookups read the swapped snapshot as before.
        A subscriber must therefore be quick and must not wait for another thread that needs the
        manager; an exception it raises is logged and the other subscribers still run.
        `stop()` unloads whatever is still loaded without publishing events (the manager is
        gone then).

        Args:
          callback: receives each VersionEvent.
          replay: first deliver the current status of every known version (before any later
            event), so a subscriber that starts late misses nothing.

        Returns:
          The subscription; `cancel()` it to stop the events.
        """
        subscription = Subscription(self, callback)
        with self._lock:
            if replay:
                for model in list(self._models.values()):
                    for _, record in sorted(model.versions.items()):
                        self._deliver(subscription, VersionEvent(model.name, record.status()))
            self._subscriptions = (*self._subscriptions, subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    @staticmethod
    def _deliver(subscription: Subscription, event: VersionEvent) -> None:
        try:
            subscription.callback(event)
        except Exception:
            logger.exception("version event subscriber failed on %s", event)

    # -- inputs from the source and the config -------------------------------------------------

    def set_models(
        self,
        labels: Mapping[str, Mapping[str, int]],
        pinned: Mapping[str, Set[int]] | None = None,
        validate_labels: bool = True,
    ) -> None:
        """Makes the manager serve exactly these models (a config load or reload).

        Models missing from `labels` get no aspired versions, so they are unloaded.

        Args:
          labels: {model name: {label: version}} for every configured model.
          pinned: {model name: versions of its `specific` policy} (never unloaded for a swap).
          validate_labels: apply TF Serving's label rules (off for the initial config, whose
            versions cannot be loaded yet because the server answers before loading).

        Raises:
          ServingError: FAILED_PRECONDITION if a label names a version that is not AVAILABLE
            (and that is not allowed); nothing changes then.
        """
        pinned = pinned or {}
        with self._lock:
            if validate_labels:
                for name, model_labels in labels.items():
                    self._validate_labels(name, model_labels)
            for name, model_labels in labels.items():
                model = self._models.setdefault(name, _ModelRecord(name))
                model.configured = True
                model.labels = dict(model_labels)
                model.pinned = frozenset(pinned.get(name, ()))
            for name, model in self._models.items():
                if name not in labels:
                    model.configured = False
                    model.labels = {}
                    for record in model.versions.values():
                        record.aspired = False
            self._publish_locked()
            self._lock.notify_all()

    def _validate_labels(self, name: str, new_labels: Mapping[str, int]) -> None:
        model = self._models.get(name)
        existing = model.labels if model else {}
        for label, version in new_labels.items():
            record = model.versions.get(version) if model else None
            available = record is not None and record.state == VersionState.AVAILABLE
            if available:
                continue
            # TF Serving lets only *new* labels point at unavailable versions, and only with
            # --allow_version_labels_for_unavailable_models (server_core.cc).
            if self._options.allow_version_labels_for_unavailable_models and (
                label not in existing or existing[label] == version
            ):
                continue
            raise errors.failed_precondition(
                f"Request to assign label to version {version} of model {name}, which is not "
                "currently available for inference"
            )

    def set_aspired_versions(self, model_name: str, candidates: Mapping[int, object]) -> None:
        """The source's latest word on which versions a model should have loaded.

        Args:
          model_name: the model.
          candidates: {version: opaque candidate handed back to `load_fn`}; versions not listed
            are no longer aspired and will be unloaded once that preserves availability.
        """
        with self._lock:
            model = self._models.get(model_name)
            if model is None or not model.configured:
                return
            for version, candidate in candidates.items():
                record = model.versions.get(version)
                if record is None:
                    model.versions[version] = _VersionRecord(
                        version, candidate=candidate, identity=_identity(candidate)
                    )
                    continue
                self._aspire_again_locked(model, record, candidate)
            for version, record in model.versions.items():
                if version not in candidates:
                    record.replacement = None
                    if record.aspired and record.state in (
                        VersionState.LOADING,
                        VersionState.AVAILABLE,
                    ):
                        logger.info(
                            "%s version %d is no longer aspired (gone from storage, or beyond "
                            "the version policy): it is unloaded once an aspired version is "
                            "AVAILABLE",
                            model_name,
                            version,
                        )
                    record.aspired = False
                    if record.state == VersionState.START:
                        # Never started loading: it simply ends (it disappeared from storage).
                        self._end_locked(model, record, None)
            self._lock.notify_all()

    def _aspire_again_locked(
        self, model: _ModelRecord, record: _VersionRecord, candidate: object
    ) -> None:
        """Applies a known version number's latest candidate from the source."""
        new_identity = _identity(candidate)
        changed = (
            new_identity is not None
            and record.identity is not None
            and new_identity != record.identity
        )
        if record.state == VersionState.START:
            record.aspired = True
            record.candidate = candidate
            if changed:
                # Other files under the same number: a new candidate with a fresh budget.
                record.rearm(candidate)
            return
        if record.state == VersionState.END:
            # TF Serving loads a version again when it is aspired again (a deleted version put
            # back, a wider policy). One that failed for good stays END until its content
            # changes, or --max_num_load_retries would mean nothing.
            if record.error is None or changed:
                if changed:
                    logger.info(
                        "%s version %d holds new content (%s, was %s): loading it as a new "
                        "candidate",
                        model.name,
                        record.version,
                        new_identity,
                        record.identity,
                    )
                record.rearm(candidate)
            return
        if changed:
            # LOADING / AVAILABLE / UNLOADING with other files: the old files are in no bucket
            # any more. They are unloaded (as if the version vanished) and the new content
            # loads afterwards; never served from the old files.
            if record.replacement is None:
                logger.warning(
                    "%s version %d was replaced in storage by other content (%s, was %s): "
                    "unloading the old files, then loading the new ones",
                    model.name,
                    record.version,
                    new_identity,
                    record.identity,
                )
            record.replacement = candidate
            record.aspired = False
            return
        record.replacement = None
        record.aspired = True

    def report_unloadable(self, model_name: str, version: int, error: ServingError) -> None:
        """Records a version the source will never aspire (e.g. incomplete for too long)."""
        with self._lock:
            model = self._models.get(model_name)
            if model is None:
                return
            record = model.versions.get(version)
            if record is not None and record.state != VersionState.START:
                return
            record = record or _VersionRecord(version)
            model.versions[version] = record
            record.aspired = False
            self._end_locked(model, record, error)

    def forget_unloadable(self, model_name: str, version: int) -> None:
        """Drops an END record made by `report_unloadable` (the version changed; re-judge it)."""
        with self._lock:
            model = self._models.get(model_name)
            record = model.versions.get(version) if model else None
            if record is not None and record.state == VersionState.END and record.loaded is None:
                del model.versions[version]

    def held_identity(self, model_name: str, version: int) -> str | None:
        """The content identity of the files the manager holds for a version (loading, serving
        or unloading), or None when it holds none."""
        with self._lock:
            model = self._models.get(model_name)
            record = model.versions.get(version) if model else None
            if record is None or record.state in (VersionState.START, VersionState.END):
                return None
            return record.identity

    def waits_for_storage(self, model_name: str, version: int) -> bool:
        """Whether a version waits to retry a load that failed because of storage."""
        with self._lock:
            model = self._models.get(model_name)
            record = model.versions.get(version) if model else None
            return (
                record is not None
                and record.state == VersionState.START
                and _waits_for_storage(record.last_error)
            )

    # -- request path ----------------------------------------------------------------------------

    def acquire(
        self, model_name: str, version: int | None = None, label: str | None = None
    ) -> LoadedVersion:
        """Finds and pins the version a request addresses. Release it (or use `with`) after use.

        Args:
          model_name: the model.
          version: a specific version, or None.
          label: a version label, or None (at most one of version and label).

        Returns:
          An acquired handle.

        Raises:
          ServingError: NOT_FOUND for an unknown model, version or label target; INVALID_ARGUMENT
            for an unknown label.
        """
        for _ in range(8):
            serving = self._serving.get(model_name)
            if serving is None:
                raise errors.not_found(
                    f"Servable not found for request: {describe_request(model_name, version, label)}"
                )
            target = version
            if label is not None:
                target = serving.labels.get(label)
                if target is None:
                    raise errors.invalid_argument(f"Unrecognized servable version label: {label}")
            handle = serving.latest if target is None else serving.versions.get(target)
            if handle is None:
                raise errors.not_found(
                    f"Servable not found for request: {describe_request(model_name, version, label)}"
                )
            if handle.acquire():
                return handle
            # Retired between the snapshot read and acquire(): read the newer snapshot.
        raise ServingError(Code.UNAVAILABLE, f"Model {model_name} is being swapped; retry")

    # -- status --------------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        """Configured model names, sorted."""
        with self._lock:
            return sorted(name for name, m in self._models.items() if m.configured)

    def labels(self, model_name: str) -> dict[str, int]:
        with self._lock:
            model = self._models.get(model_name)
            return dict(model.labels) if model else {}

    def status(
        self, model_name: str, version: int | None = None, label: str | None = None
    ) -> list[VersionStatus]:
        """The status API's answer for a model, optionally one version or label.

        Raises:
          ServingError: NOT_FOUND for an unknown model or version, INVALID_ARGUMENT for an
            unknown label.
        """
        with self._lock:
            model = self._models.get(model_name)
            # TF Serving's get_model_status_impl answers NOT_FOUND for a model without any
            # version too, whether it is configured or not (issue 13).
            if model is None or not model.versions:
                raise errors.not_found(f"Could not find any versions of model {model_name}")
            if label is not None:
                if label not in model.labels:
                    raise errors.invalid_argument(f"Unrecognized servable version label: {label}")
                version = model.labels[label]
            if version is not None:
                record = model.versions.get(version)
                if record is None:
                    raise errors.not_found(
                        f"Could not find version {version} of model {model_name}"
                    )
                return [record.status()]
            return [r.status() for _, r in sorted(model.versions.items(), reverse=True)]

    def load_seconds(self, model_name: str, version: int) -> float | None:
        """How long the successful load of a version took (None if it never loaded)."""
        with self._lock:
            model = self._models.get(model_name)
            record = model.versions.get(version) if model else None
            return record.load_seconds if record else None

    def version_details(self, model_name: str) -> dict[int, dict]:
        """tfrelay's extra facts per version, for the model listing: load time, the last load
        error while retries remain, and the push record (lineage) of loaded versions."""
        with self._lock:
            model = self._models.get(model_name)
            if model is None:
                return {}
            details = {}
            for version, record in model.versions.items():
                extra: dict = {}
                if record.load_seconds is not None:
                    extra["load_seconds"] = round(record.load_seconds, 3)
                if record.last_error is not None and record.state in (
                    VersionState.START,
                    VersionState.LOADING,
                ):
                    extra["last_load_error"] = record.last_error.message
                if record.failure is not None and record.state != VersionState.AVAILABLE:
                    # "storage": retried until storage answers; "model": the files are broken
                    # (retried --max_num_load_retries times, then END).
                    extra["load_failure"] = record.failure
                    extra["load_attempts"] = record.attempts
                    extra["storage_failures"] = record.storage_failures
                if record.loaded is not None and record.loaded.servable.push_record:
                    extra["push"] = record.loaded.servable.push_record
                details[version] = extra
            return details

    def version_state(self, model_name: str, version: int) -> VersionStatus | None:
        with self._lock:
            model = self._models.get(model_name)
            record = model.versions.get(version) if model else None
            return record.status() if record else None

    def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float,
    ) -> bool:
        """Blocks until `predicate()` (evaluated under the manager lock) holds, or times out."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.2))
            return True

    # -- reconcile loop --------------------------------------------------------------------------

    def _run(self) -> None:
        with self._lock:
            while not self._stopping:
                next_wake = self._reconcile_locked()
                timeout = None if next_wake is None else max(0.0, next_wake - self._clock())
                self._lock.wait(timeout if timeout is None else min(timeout, 1.0))

    def _reconcile_locked(self) -> float | None:
        """Starts every action the policy allows now; returns when to look again for retries."""
        now = self._clock()
        next_wake: float | None = None
        for model in self._models.values():
            loading = any(r.state == VersionState.LOADING for r in model.versions.values())
            while True:
                snapshots = [
                    policy.VersionSnapshot(
                        r.version,
                        r.state,
                        r.aspired,
                        loadable=not loading and r.next_attempt_at <= now,
                    )
                    for r in model.versions.values()
                ]
                action = policy.next_action(snapshots, model.pinned)
                if action is None:
                    break
                kind, version = action
                record = model.versions[version]
                if kind is policy.Action.UNLOAD:
                    self._start_unload_locked(model, record)
                else:
                    self._start_load_locked(model, record)
                    loading = True
            for record in model.versions.values():
                if record.state == VersionState.START and record.next_attempt_at > now:
                    next_wake = min(next_wake or record.next_attempt_at, record.next_attempt_at)
        return next_wake

    def _set_state_locked(
        self, model: _ModelRecord, record: _VersionRecord, state: VersionState
    ) -> None:
        record.state = state
        subscriptions = self._subscriptions
        if subscriptions:
            event = VersionEvent(model.name, record.status())
            for subscription in subscriptions:
                self._deliver(subscription, event)
        self._lock.notify_all()

    def _start_load_locked(self, model: _ModelRecord, record: _VersionRecord) -> None:
        self._set_state_locked(model, record, VersionState.LOADING)
        record.attempts += 1
        candidate = record.candidate
        record.identity = _identity(candidate)
        logger.info(
            "Loading %s version %d (attempt %d)", model.name, record.version, record.attempts
        )
        self._loaders.submit(self._load, model.name, record.version, candidate)

    def _load(self, model_name: str, version: int, candidate: object) -> None:
        started = time.monotonic()
        try:
            servable = self._load_fn(model_name, version, candidate)
        except Exception as err:  # noqa: BLE001 - any load failure is reported in the status
            self._load_failed(model_name, version, err)
            return
        with self._lock:
            model = self._models.get(model_name)
            record = model.versions.get(version) if model else None
            if record is None or self._stopping:
                orphan = servable
            else:
                orphan = None
                record.loaded = LoadedVersion(servable)
                record.error = None
                record.last_error = None
                record.load_seconds = time.monotonic() - started
                self._set_state_locked(model, record, VersionState.AVAILABLE)
                self._publish_locked()
                logger.info(
                    "Successfully loaded %s version %d in %.2fs",
                    model_name,
                    version,
                    time.monotonic() - started,
                )
        if orphan is not None:
            self._unloaders.submit(self._unload_fn, orphan)

    def _load_failed(self, model_name: str, version: int, err: Exception) -> None:
        error = err if isinstance(err, ServingError) else _as_serving_error(err)
        with self._lock:
            model = self._models.get(model_name)
            record = model.versions.get(version) if model else None
            if record is None:
                return
            record.last_error = error
            if _waits_for_storage(error) and record.aspired:
                # Storage, not the model: give the attempt back and retry until storage answers
                # or a newer version supersedes this one (then it is no longer aspired). Denied,
                # not found and other storage errors use the budget (issue 13 review).
                record.attempts -= 1
                record.storage_failures += 1
                backoff = min(
                    self._options.storage_retry_initial_seconds
                    * 2 ** min(record.storage_failures - 1, 20),
                    self._options.storage_retry_max_seconds,
                )
                record.next_attempt_at = self._clock() + backoff
                log = logger.warning if record.storage_failures == 1 else logger.info
                log(
                    "Loading %s version %d failed because of storage (%s); retrying in %.1fs "
                    "(storage failure %d; this does not use up --max_num_load_retries)",
                    model_name,
                    version,
                    error.message,
                    backoff,
                    record.storage_failures,
                )
                self._set_state_locked(model, record, VersionState.START)
                return
            retries_used = record.attempts - 1
            if record.aspired and retries_used < self._options.max_num_load_retries:
                backoff = self._options.load_retry_interval_seconds * min(
                    2**retries_used, self._options.max_retry_backoff_factor
                )
                record.next_attempt_at = self._clock() + backoff
                logger.warning(
                    "Loading %s version %d failed (%s); retry %d of %d in %.1fs",
                    model_name,
                    version,
                    error.message,
                    retries_used + 1,
                    self._options.max_num_load_retries,
                    backoff,
                )
                self._set_state_locked(model, record, VersionState.START)
                return
            logger.error(
                "Loading %s version %d failed for good: %s. The previous version, if any, keeps "
                "serving; fix the files or push a new version.",
                model_name,
                version,
                error.message,
            )
            self._end_locked(model, record, error)

    def _start_unload_locked(self, model: _ModelRecord, record: _VersionRecord) -> None:
        self._set_state_locked(model, record, VersionState.UNLOADING)
        handle = record.loaded
        self._publish_locked()  # hide it from new lookups before draining
        self._unloaders.submit(self._unload, model.name, record.version, handle)

    def _unload(self, model_name: str, version: int, handle: LoadedVersion | None) -> None:
        if handle is not None:
            handle.retire_and_wait()
            try:
                self._unload_fn(handle.servable)
            except Exception:
                logger.exception("Unloading %s version %d failed", model_name, version)
        logger.info("Unloaded %s version %d", model_name, version)
        with self._lock:
            model = self._models.get(model_name)
            record = model.versions.get(version) if model else None
            if record is not None:
                record.loaded = None
                replacement = record.replacement
                self._end_locked(model, record, None)
                if replacement is not None and model.versions.get(version) is record:
                    record.rearm(replacement)
                    self._set_state_locked(model, record, VersionState.START)

    def _end_locked(
        self, model: _ModelRecord, record: _VersionRecord, error: ServingError | None
    ) -> None:
        record.error = error
        record.ended_at = self._clock()
        record.candidate = None
        self._set_state_locked(model, record, VersionState.END)
        ended = sorted(
            (r for r in model.versions.values() if r.state == VersionState.END),
            key=lambda r: (r.ended_at, r.version),
        )
        for stale in ended[: max(0, len(ended) - self._options.max_ended_versions)]:
            del model.versions[stale.version]
        if not model.configured and not model.versions:
            del self._models[model.name]
        self._publish_locked()

    def _publish_locked(self) -> None:
        serving: dict[str, ModelServing] = {}
        for name, model in self._models.items():
            if not model.configured:
                # Removed from the config: its versions unload, and no request reaches them.
                continue
            available = {
                v: r.loaded
                for v, r in model.versions.items()
                if r.state == VersionState.AVAILABLE and r.loaded is not None
            }
            latest = available[max(available)] if available else None
            serving[name] = ModelServing(name, available, latest, dict(model.labels))
        self._serving = serving


def _as_serving_error(err: Exception) -> ServingError:
    code = getattr(err, "error_code", None)
    if code is not None:
        return errors.from_tensorflow(err)
    if isinstance(err, FileNotFoundError):
        return ServingError(Code.NOT_FOUND, str(err))
    return ServingError(Code.UNKNOWN, f"{type(err).__name__}: {err}")
