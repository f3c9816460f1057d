"""ServerCore: the models a server serves, their config and status, apart from the front ends.

As TF Serving's `ServerCore` (model_servers/server_core.h) holds the manager, the sources and the
model config while `Server` only builds the gRPC and HTTP front ends, tfrelay's ServerCore owns:

- loading: the VersionLoader, TF's load metrics and the warmup replay (`ServableLoading`,
  servable_loading.py);
- the manager and the storage source;
- the model config: `apply_models`, `reload_config` (`HandleReloadConfigRequest`) and the
  `--model_config_file` watcher (`ConfigFileWatcher`, config_file_watcher.py; TF Serving
  polls it in `Server`);
- status: readiness, the `/v1/models` listing and the `:tfrelay:serving:*` gauges.

Readiness and the loaded_versions gauge read a `VersionStateMonitor` (version_state_monitor.py)
that follows the manager's version events (TF Serving's ServableStateMonitor on the EventBus), so a
scrape or a readiness probe takes no manager lock and never waits behind a reconcile or a config
reload (issue 15; before, each one called `manager.status` for every model under the manager's
lock).

`ModelServer` (serving/server.py) constructs a ServerCore, hands its manager to the front ends and
starts and stops it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tfrelay.serving.config.model_config import (
    ModelConfig,
    PolicyKind,
    read_model_config_file,
    single_model_config,
)
from tfrelay.serving.core.config_file_watcher import ConfigFileWatcher
from tfrelay.serving.core.manager import (
    ManagerOptions,
    ServableManager,
)
from tfrelay.serving.core.servable_loading import ServableLoading
from tfrelay.serving.core.source import StorageSource
from tfrelay.serving.core.states import VersionState
from tfrelay.serving.core.version_loader import VersionLoader
from tfrelay.serving.core.version_state_monitor import VersionStateMonitor
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.metrics import ObservedGauge, ServingMetrics
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.request_log.files import RotationPolicy
from tfrelay.serving.request_log.logger import RequestLogger, RequestLogOptions
from tfrelay.serving.storage.model_storage import ModelStorage

logger = logging.getLogger(__name__)


def manager_options(options: ServerOptions) -> ManagerOptions:
    """The manager's tuning from the server flags of the same names.

    Args:
      options: the server settings.

    Returns:
      The ManagerOptions.
    """
    return ManagerOptions(
        num_load_threads=options.num_load_threads,
        num_unload_threads=options.num_unload_threads,
        max_num_load_retries=options.max_num_load_retries,
        load_retry_interval_seconds=options.load_retry_interval_micros / 1e6,
        allow_version_labels_for_unavailable_models=(
            options.allow_version_labels_for_unavailable_models
        ),
        max_ended_versions=options.max_ended_versions_in_status,
        # Storage failures retry at least once a poll: a version serves within a poll of storage
        # coming back, however long the outage (issue 13).
        storage_retry_max_seconds=max(1.0, options.file_system_poll_wait_seconds)
        if options.file_system_poll_wait_seconds > 0
        else 30.0,
    )


class ServerCore:
    """The served models: config, loading, status and readiness (TF Serving's ServerCore).

    Lifecycle: `ServerCore(options, metrics)` builds everything and starts nothing; `start()`
    reads the model config and starts loading (returns at once); `stop()` stops the watcher and
    the source and unloads every version; `close()` then removes the loader's cache.

    Attributes:
      options: the server settings.
      metrics: the server's metrics (the core records load metrics and adds the tfrelay gauges).
      loading: how versions load (VersionLoader, load metrics, warmup).
      manager: every version of every model; the front ends look versions up here.
      source: polls each model's base path and tells the manager what to load.
      monitor: AVAILABLE versions per model, from the manager's events.
      request_log: the sampled request logging the model config asks for.

    Args:
      options: the server settings.
      metrics: where the core's metrics go.

    Raises:
      ConfigError: `--tensorflow_session_config_file` is unreadable or invalid.
    """

    def __init__(self, options: ServerOptions, metrics: ServingMetrics) -> None:
        self.options = options
        self.metrics = metrics
        self.loading = ServableLoading(options, metrics)
        self.manager = ServableManager(
            self.loading.load, self.loading.unload, manager_options(options)
        )
        self.source = StorageSource(
            self.manager,
            poll_wait_seconds=options.file_system_poll_wait_seconds,
            prefer_tflite=options.prefer_tflite_model,
            incomplete_version_timeout_seconds=options.incomplete_version_timeout_seconds,
            storage_factory=lambda path: ModelStorage(
                path, options.environ, options.storage_timeout_seconds
            ),
        )
        self.monitor = VersionStateMonitor()
        self.monitor.attach(self.manager)
        # TF Serving's ServerRequestLogger lives in its ServerCore too: configured per model by
        # the model config, written to by both front ends through the data plane.
        self.request_log = RequestLogger(
            RequestLogOptions(
                max_queued_bytes=options.request_log_max_queued_bytes,
                rotation=RotationPolicy(
                    options.request_log_file_max_bytes, options.request_log_file_max_seconds
                ),
                spool_dir=options.request_log_spool_dir,
                storage_timeout_seconds=options.storage_timeout_seconds,
            ),
            metrics,
        )
        # The served config, replaced whole under _config_lock: readers (readiness, the gauges,
        # possibly called from an event under the manager's lock) read it without any lock, so
        # they can never deadlock against apply_models (which takes config, then manager lock).
        self._models: tuple[ModelConfig, ...] = ()
        self._config_lock = threading.Lock()
        self._watcher: ConfigFileWatcher | None = None
        self._observe_state()

    @property
    def loader(self) -> VersionLoader:
        """The VersionLoader (cache directory, session options)."""
        return self.loading.loader

    # -- configuration -----------------------------------------------------------------------

    def read_config(self) -> list[ModelConfig]:
        """The startup model config: `--model_config_file`, or the single-model flags.

        Returns:
          The model list.

        Raises:
          ConfigError: the config is missing, unreadable or invalid.
        """
        if self.options.model_config_file:
            return read_model_config_file(self.options.model_config_file)
        return single_model_config(self.options.model_name, self.options.model_base_path)

    @property
    def models(self) -> list[ModelConfig]:
        """The config being served."""
        return list(self._models)

    def apply_models(self, models: Sequence[ModelConfig], initial: bool = False) -> None:
        """Serves exactly these models from now on (TF Serving's config reload semantics).

        Args:
          models: the new model list.
          initial: the startup config (labels cannot be checked against loaded versions yet).

        Raises:
          ServingError: FAILED_PRECONDITION when a label names a version that is not available;
            the running config is kept.
        """
        with self._config_lock:
            self.manager.set_models(
                {m.name: m.labels for m in models},
                pinned={
                    m.name: m.policy.versions
                    for m in models
                    if m.policy.kind is PolicyKind.SPECIFIC
                },
                validate_labels=not initial,
            )
            self.source.set_models(models)
            self._models = tuple(models)
            self.request_log.update({m.name: m.logging for m in models if m.logging is not None})
        self.source.poll_now()

    def reload_config(self, models: Sequence[ModelConfig], timeout: float | None = None) -> None:
        """`HandleReloadConfigRequest`: serves exactly `models`, then waits for the new ones.

        As ServerCore::ReloadConfig, the call returns once every model that was added (or
        whose base path changed) has an AVAILABLE version. An immediate poll runs first, so new
        versions are found even when polling is slow or off (TF Serving #1519).

        Args:
          models: the new model list.
          timeout: seconds to wait at most (the client's deadline); None waits as TF does.

        Raises:
          ServingError: FAILED_PRECONDITION for a label that is not allowed (nothing changes);
            the load error of a new model that failed for good; DEADLINE_EXCEEDED.
        """
        before = {m.name: m.base_path for m in self._models}
        self.apply_models(models)
        added = [m.name for m in models if before.get(m.name) != m.base_path]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            outcome = self._reload_outcome(added)
            if outcome is True:
                return
            if isinstance(outcome, ServingError):
                raise outcome
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ServingError(
                    Code.DEADLINE_EXCEEDED,
                    "The new config was applied, but these models are not available yet: "
                    + ", ".join(added),
                )
            self.manager.wait_for(
                lambda: self._reload_outcome(added) is not None,
                1.0 if remaining is None else min(remaining, 1.0),
            )

    def _reload_outcome(self, names: Sequence[str]) -> bool | ServingError | None:
        """True when every model has an AVAILABLE version, the error of one that failed for
        good, or None while some are still loading."""
        for name in names:
            try:
                statuses = self.manager.status(name)
            except ServingError:
                return None
            if any(s.state == VersionState.AVAILABLE for s in statuses):
                continue
            failed = [s for s in statuses if s.state == VersionState.END and s.error_code]
            if statuses and len(failed) == len(statuses):
                return ServingError(failed[0].error_code, failed[0].error_message)
            return None
        return True

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Reads the model config and starts loading; returns at once.

        Raises:
          ConfigError: the config is missing, unreadable or invalid.
        """
        models = self.read_config()
        _create_tensorflow_thread_pools()
        self.manager.start()
        self.apply_models(models, initial=True)
        self.source.start()
        if self.options.model_config_file and self.options.model_config_file_poll_wait_seconds > 0:
            self._watcher = ConfigFileWatcher(
                self.options.model_config_file,
                self.options.model_config_file_poll_wait_seconds,
                current=lambda: self._models,
                apply=self.apply_models,
            )
            self._watcher.start()

    def stop(self) -> None:
        """Stops the config watcher and polling, and unloads every model (waits for in-flight
        requests)."""
        if self._watcher is not None:
            self._watcher.stop()
        self.source.stop()
        self.manager.stop()
        # The manager unloads at stop without publishing events: nothing is loaded any more.
        self.monitor.detach()
        # Requests have finished: write what they logged and publish every open log file.
        self.request_log.close()

    def close(self) -> None:
        """Removes the loader's cache directory; call after `stop()` and after the inference
        pool has drained (a request still running may read cached files)."""
        self.loading.close()

    # -- status -------------------------------------------------------------------------------

    def ready_models(self) -> dict[str, bool]:
        """{configured model: has at least one AVAILABLE version}, from the manager's events.

        Returns:
          One entry per configured model.
        """
        models = self._models
        counts = self.monitor.available_counts([m.name for m in models])
        return {name: count > 0 for name, count in counts.items()}

    def is_ready(self) -> bool:
        """Whether at least one model is configured and every one has an AVAILABLE version."""
        ready = self.ready_models()
        return bool(ready) and all(ready.values())

    def describe_models(self) -> dict[str, Any]:
        """`GET /v1/models`: every model, its base path, versions and labels.

        Returns:
          {"models": [...]}, one entry per configured model with its version statuses.
        """
        described = []
        for model in self._models:
            try:
                statuses = self.manager.status(model.name)
            except Exception:  # noqa: BLE001 - a model with no versions yet
                statuses = []
            details = self.manager.version_details(model.name)
            described.append(
                {
                    "name": model.name,
                    "base_path": model.base_path,
                    "version_policy": model.policy.kind.value,
                    "labels": {k: str(v) for k, v in model.labels.items()},
                    "model_version_status": [
                        {
                            "version": str(s.version),
                            "state": s.state.name,
                            "status": {
                                "error_code": s.error_code.name,
                                "error_message": s.error_message,
                            },
                            **details.get(s.version, {}),
                        }
                        for s in statuses
                    ],
                    "incomplete_versions": [
                        str(v) for v in sorted(self.source.pending_versions(model.name))
                    ],
                }
            )
        return {"models": described}

    # -- tfrelay gauges -----------------------------------------------------------------------

    def _observe_state(self) -> None:
        """tfrelay's own metrics: loaded versions from the monitor, storage from the source."""

        def loaded_versions() -> dict[tuple[str, ...], float]:
            counts = self.monitor.available_counts([m.name for m in self._models])
            return {(name,): float(count) for name, count in counts.items()}

        def storage(read: Callable[[str, Any], Mapping[tuple[str, ...], float]]):
            return {
                key: value
                for name, watch in self.source.watched().items()
                for key, value in read(name, watch).items()
            }

        self.metrics.observe(
            ObservedGauge(
                ":tfrelay:serving:loaded_versions",
                "Versions AVAILABLE per model.",
                ["model_name"],
                loaded_versions,
            )
        )
        self.metrics.observe(
            ObservedGauge(
                ":tfrelay:serving:storage_polls",
                "Polls of each model's base path.",
                ["model_name"],
                lambda: storage(lambda name, watch: {(name,): watch.polls}),
                kind="counter",
            )
        )
        self.metrics.observe(
            ObservedGauge(
                ":tfrelay:serving:storage_listings",
                "Storage listings per model: delimiter (one per poll), recursive (new versions) or "
                "head (the publish marker of each aspired version, once a poll).",
                ["model_name", "kind"],
                lambda: storage(
                    lambda name, watch: {
                        (name, "delimiter"): watch.storage.stats.listings,
                        (name, "recursive"): watch.storage.stats.recursive_listings,
                        # One HEAD per aspired version per poll (replaced files, issue 13).
                        (name, "head"): watch.storage.stats.heads,
                    }
                ),
                kind="counter",
            )
        )
        self.metrics.observe(
            ObservedGauge(
                ":tfrelay:serving:storage_bytes_copied",
                "Bytes copied from remote storage into the local cache per model.",
                ["model_name"],
                lambda: storage(lambda name, watch: {(name,): watch.storage.stats.bytes_copied}),
                kind="counter",
            )
        )
        self.metrics.observe(
            ObservedGauge(
                ":tfrelay:serving:storage_errors",
                "Failed or timed-out storage calls per model and kind (timeout, connection, "
                "server_error, short_read, mismatch, changed, not_found, denied, other).",
                ["model_name", "kind"],
                lambda: storage(
                    lambda name, watch: {
                        (name, kind): count
                        for kind, count in watch.storage.calls.errors_by_kind().items()
                    }
                ),
                kind="counter",
            )
        )


def _create_tensorflow_thread_pools() -> None:
    """Creates TensorFlow's process-wide thread pools from this (normal-priority) thread.

    The first Session creates them, and new threads inherit their creator's scheduling
    priority: if a (lower-priority) load thread created them, every model call's intra-op work
    would run at that priority too.
    """
    import tensorflow as tf

    tf.compat.v1.Session(graph=tf.Graph()).close()
