"""The model server: wires storage, source, manager and front ends, and runs them.

Lifecycle (as KServe's ModelServer): `start()` loads the config and starts the background
threads, `serve()` runs the front ends until `stop()` or a signal, `stop()` unloads everything.
The server answers as soon as it starts; models become available as they load (TF Serving blocks
until every model has loaded, #979).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn

from tfrelay.serving.config.model_config import (
    ConfigError,
    ModelConfig,
    PolicyKind,
    read_model_config_file,
    single_model_config,
)
from tfrelay.serving.core.manager import ManagerOptions, ServableManager
from tfrelay.serving.core.source import StorageSource
from tfrelay.serving.core.states import VersionState
from tfrelay.serving.core.version_loader import VersionLoader
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.rest.app import RestApi
from tfrelay.serving.servables.saved_model import SessionOptions
from tfrelay.serving.storage.model_storage import ModelStorage
from tfrelay.version import __version__

logger = logging.getLogger(__name__)


class _UvicornServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the ModelServer owns shutdown for all fronts."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ModelServer:
    """A running tfrelay model server.

    Args:
      options: the server settings.

    Raises:
      ConfigError: (from `start`) the model config is missing, unreadable or invalid.
    """

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self._executor = ThreadPoolExecutor(
            options.inference_threads, thread_name_prefix="tfrelay-infer"
        )
        self.loader = VersionLoader(
            SessionOptions(
                tags=[t for t in options.saved_model_tags.split(",") if t],
                intra_op_threads=options.intra_op_threads,
                inter_op_threads=options.inter_op_threads,
                run_timeout_ms=options.rest_api_timeout_in_ms,
            ),
            cache_dir=options.model_cache_dir or None,
        )
        self.manager = ServableManager(
            self.loader.load,
            self.loader.unload,
            ManagerOptions(
                num_load_threads=options.num_load_threads,
                num_unload_threads=options.num_unload_threads,
                max_num_load_retries=options.max_num_load_retries,
                load_retry_interval_seconds=options.load_retry_interval_micros / 1e6,
                allow_version_labels_for_unavailable_models=(
                    options.allow_version_labels_for_unavailable_models
                ),
                max_ended_versions=options.max_ended_versions_in_status,
            ),
        )
        self.source = StorageSource(
            self.manager,
            poll_wait_seconds=options.file_system_poll_wait_seconds,
            incomplete_version_timeout_seconds=options.incomplete_version_timeout_seconds,
            storage_factory=lambda path: ModelStorage(path, options.environ),
        )
        self.rest = RestApi(
            self.manager,
            self._executor,
            describe_models=self.describe_models,
            extra_routes={"/healthz": self._healthz, "/readyz": self._readyz},
        )
        self._models: list[ModelConfig] = []
        self._config_lock = threading.Lock()
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._config_watcher: threading.Thread | None = None
        self._watcher_stop = threading.Event()
        self.started = threading.Event()

    # -- configuration -----------------------------------------------------------------------

    def _read_config(self) -> list[ModelConfig]:
        if self.options.model_config_file:
            return read_model_config_file(self.options.model_config_file)
        return single_model_config(self.options.model_name, self.options.model_base_path)

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
            self._models = list(models)
        self.source.poll_now()

    @property
    def models(self) -> list[ModelConfig]:
        with self._config_lock:
            return list(self._models)

    def _watch_config_file(self) -> None:
        interval = self.options.model_config_file_poll_wait_seconds
        while not self._watcher_stop.wait(interval):
            try:
                models = read_model_config_file(self.options.model_config_file)
            except ConfigError as err:
                logger.error(
                    "Ignoring the new model config (the running one keeps serving): %s", err
                )
                continue
            if models == self.models:
                continue
            try:
                self.apply_models(models)
                logger.info("Reloaded model config: %s", ", ".join(m.name for m in models))
            except Exception as err:  # noqa: BLE001 - a rejected reload keeps the old config
                logger.error(
                    "Rejected the new model config (the running one keeps serving): %s", err
                )

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Reads the config and starts loading; returns at once (models load in the background).

        Raises:
          ConfigError: the config is missing, unreadable or invalid.
        """
        models = self._read_config()
        self.manager.start()
        self.apply_models(models, initial=True)
        self.source.start()
        if self.options.model_config_file and self.options.model_config_file_poll_wait_seconds > 0:
            self._config_watcher = threading.Thread(
                target=self._watch_config_file, name="tfrelay-config", daemon=True
            )
            self._config_watcher.start()

    async def serve(self) -> None:
        """Runs the front ends until `request_stop()` or SIGINT/SIGTERM."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self.request_stop)
        fronts: list[asyncio.Task] = []
        rest_server = None
        if self.options.rest_api_port:
            if self.options.rest_api_port == self.options.port:
                logger.error(
                    "--rest_api_port and --port are both %d; REST is not started (as TF Serving)",
                    self.options.port,
                )
            else:
                rest_server = _UvicornServer(
                    uvicorn.Config(
                        self.rest,
                        host=self.options.host,
                        port=self.options.rest_api_port,
                        loop="none",
                        http="httptools",
                        lifespan="off",
                        access_log=False,
                        log_level="warning",
                    )
                )
                fronts.append(asyncio.create_task(rest_server.serve()))
                logger.info(
                    "Exporting HTTP/REST API at:%s:%d ...",
                    self.options.host,
                    self.options.rest_api_port,
                )
        self.started.set()
        await self._stop_event.wait()
        if rest_server is not None:
            rest_server.should_exit = True
        for task in fronts:
            with contextlib.suppress(Exception):
                await task

    def request_stop(self) -> None:
        """Asks `serve()` to return (thread-safe)."""
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)

    def stop(self) -> None:
        """Stops polling and unloads every model (waits for in-flight requests)."""
        self._watcher_stop.set()
        self.source.stop()
        self.manager.stop()
        self._executor.shutdown(wait=True)
        self.loader.close()

    def run(self) -> None:
        """start() + serve() + stop(), for the command line."""
        self.start()
        try:
            try:
                import uvloop

                runner = uvloop.run
            except ImportError:  # pragma: no cover - uvloop is a serving dependency
                runner = asyncio.run
            runner(self.serve())
        finally:
            self.stop()

    # -- tfrelay endpoints ------------------------------------------------------------------------

    def describe_models(self) -> dict[str, Any]:
        """`GET /v1/models`: every model, its base path, versions and labels."""
        described = []
        for model in self.models:
            try:
                statuses = self.manager.status(model.name)
            except Exception:  # noqa: BLE001 - a model with no versions yet
                statuses = []
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
                        }
                        for s in statuses
                    ],
                    "incomplete_versions": [
                        str(v) for v in sorted(self.source.pending_versions(model.name))
                    ],
                }
            )
        return {"models": described}

    def ready_models(self) -> dict[str, bool]:
        """{model: has at least one AVAILABLE version}."""
        ready = {}
        for model in self.models:
            try:
                statuses = self.manager.status(model.name)
            except Exception:  # noqa: BLE001
                statuses = []
            ready[model.name] = any(s.state == VersionState.AVAILABLE for s in statuses)
        return ready

    async def _healthz(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return 200, [(b"content-type", b"application/json")], b'{"status":"ok"}'

    async def _readyz(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        import orjson

        ready = self.ready_models()
        ok = bool(ready) and all(ready.values())
        body = orjson.dumps({"ready": ok, "models": ready})
        return (200 if ok else 503), [(b"content-type", b"application/json")], body


def version_banner() -> str:
    """What `--version` prints."""
    import tensorflow as tf

    return f"tfrelay ModelServer: {__version__}\nTensorFlow Library: {tf.__version__}"
