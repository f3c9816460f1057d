"""The model server: wires storage, source, manager and front ends, and runs them.

Lifecycle (as KServe's ModelServer): `ModelServer(options)` reads every config file (model
configs excepted), `start()` loads the model config and starts the background threads, `serve()`
runs the front ends until `stop()` or a signal, `stop()` unloads everything. The server answers
as soon as it starts; models become available as they load (TF Serving blocks until every model
has loaded, #979).

Both front ends run in one asyncio loop in one process: REST through a lean HTTP/1.1 server, gRPC
through tfrelay's own HTTP/2 front end (grpc.aio with TLS). They share one manager, one inference thread pool, one batcher (with
`--enable_batching`) and one set of metrics. Versions are warmed up (their
`assets.extra/tf_serving_warmup_requests` replayed) before they become AVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import ssl
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tfrelay.serving import warmup
from tfrelay.serving.api.inference import InferenceRunner
from tfrelay.serving.batching.batcher import Batcher
from tfrelay.serving.config.batching import BatchingConfig, read_batching_parameters
from tfrelay.serving.config.model_config import (
    ConfigError,
    ModelConfig,
    PolicyKind,
    read_model_config_file,
    single_model_config,
)
from tfrelay.serving.config.monitoring import PrometheusSettings, read_monitoring_config
from tfrelay.serving.config.ssl import TlsSettings, read_ssl_config
from tfrelay.serving.core.manager import ManagerOptions, ServableManager
from tfrelay.serving.core.source import StorageSource, VersionCandidate
from tfrelay.serving.core.states import VersionState
from tfrelay.serving.core.version_loader import VersionLoader
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.metrics import TEXT_CONTENT_TYPE, ObservedGauge, ServingMetrics
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.rest.app import RestApi
from tfrelay.serving.rest.http_server import start_http_server
from tfrelay.serving.rest.limits import limits_from_options
from tfrelay.serving.security import TokenAuth
from tfrelay.serving.servables.base import Servable
from tfrelay.serving.servables.saved_model import SessionOptions
from tfrelay.serving.servables.tflite import TfLiteServable
from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.model_storage import ModelStorage
from tfrelay.version import __version__

logger = logging.getLogger(__name__)


class ModelServer:
    """A running tfrelay model server: REST (HTTP/1.1 on httptools) and gRPC (HTTP/2, or grpc.aio)
    on one event loop.

    Attributes:
      manager: every loaded version, shared by both front ends.
      runner: where model calls run (the shared pool, through `batcher` when batching is on).
      metrics: TF Serving's and tfrelay's Prometheus metrics (one registry per server).

    Args:
      options: the server settings.

    Raises:
      ConfigError: (from the constructor) a batching, monitoring, SSL, session or token file
        is unreadable or invalid; (from `start`) the model config is missing or invalid.
    """

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.metrics = ServingMetrics()
        # Every config file except the model config is read now, so a bad one stops the
        # server before it starts anything (tensorflow_model_server CHECK-fails on them).
        self.batching: BatchingConfig | None = None
        if options.enable_batching is not False:
            self.batching = (
                read_batching_parameters(options.batching_parameters_file)
                if options.batching_parameters_file
                else BatchingConfig()
            )
        self.prometheus = (
            read_monitoring_config(options.monitoring_config_file)
            if options.monitoring_config_file
            else PrometheusSettings()
        )
        self.tls: TlsSettings | None = (
            read_ssl_config(options.ssl_config_file) if options.ssl_config_file else None
        )
        self.auth: TokenAuth | None = (
            TokenAuth.from_file(options.auth_token_file) if options.auth_token_file else None
        )
        self._executor = ThreadPoolExecutor(
            options.inference_threads, thread_name_prefix="tfrelay-infer"
        )
        factories = {}
        if options.prefer_tflite_model:
            factories[bucket.TFLITE_MODEL] = self._tflite_servable
        self.loader = VersionLoader(
            SessionOptions(
                tags=[t for t in options.saved_model_tags.split(",") if t],
                intra_op_threads=options.intra_op_threads,
                inter_op_threads=options.inter_op_threads,
                run_timeout_ms=options.rest_api_timeout_in_ms,
                base_config=_session_config(options.tensorflow_session_config_file),
            ),
            cache_dir=options.model_cache_dir or None,
            prepare=self._warm_up if options.enable_model_warmup else None,
            servable_factories=factories,
        )
        self.manager = ServableManager(
            self._load_version,
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
                # Storage failures retry at least once a poll: a version serves within a poll
                # of storage coming back, however long the outage (issue 13).
                storage_retry_max_seconds=max(1.0, options.file_system_poll_wait_seconds)
                if options.file_system_poll_wait_seconds > 0
                else 30.0,
            ),
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
        self.batcher = (
            Batcher(
                self.batching,
                self._executor,
                self.metrics,
                # Batching the user did not ask for must not refuse what an unbatched server
                # answers.
                oversize_runs_alone=options.enable_batching is None
                and not options.batching_parameters_file,
            )
            if self.batching
            else None
        )
        self.runner = InferenceRunner(self._executor, self.metrics, self.batcher)
        extra_routes = {"/healthz": self._healthz, "/readyz": self._readyz}
        if self.prometheus.enabled:
            extra_routes[self.prometheus.path] = self._prometheus
        self.rest = RestApi(
            self.manager,
            self.runner,
            describe_models=self.describe_models,
            extra_routes=extra_routes,
            metrics=self.metrics,
            auth=self.auth,
            max_body_bytes=options.max_request_size_bytes,
        )
        self._observe_state()
        self.grpc_server = None
        self._tls_dir: str | None = None
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
        before = {m.name: m.base_path for m in self.models}
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
        _create_tensorflow_thread_pools()
        self.manager.start()
        self.apply_models(models, initial=True)
        self.source.start()
        if self.options.model_config_file and self.options.model_config_file_poll_wait_seconds > 0:
            self._config_watcher = threading.Thread(
                target=self._watch_config_file, name="tfrelay-config", daemon=True
            )
            self._config_watcher.start()

    async def serve(self) -> None:
        """Runs the front ends until `request_stop()` or SIGINT/SIGTERM.

        Raises:
          RuntimeError: the gRPC port cannot be bound.
        """
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self.request_stop)
        rest_server: asyncio.AbstractServer | None = None
        if self.options.port or self.options.grpc_socket_path:
            self.grpc_server = self._build_grpc()
            await self.grpc_server.start()
            logger.info(
                "Running gRPC ModelServer at %s:%d%s ...",
                self.options.host,
                self.options.port,
                " (TLS)" if self.tls else "",
            )
        if self.prometheus.enabled and not self.options.rest_api_port:
            logger.warning(
                "--monitoring_config_file enables Prometheus, but metrics are served on the REST "
                "port and --rest_api_port is 0"
            )
        if self.options.rest_api_port:
            if self.options.rest_api_port == self.options.port:
                logger.error(
                    "--rest_api_port and --port are both %d; REST is not started (as TF Serving)",
                    self.options.port,
                )
            else:
                rest_server = await start_http_server(
                    self.rest.respond,
                    self.options.host,
                    self.options.rest_api_port,
                    self.rest.max_body_bytes,
                    self.rest.too_large,
                    ssl_context=self._rest_ssl_context(),
                    limits=limits_from_options(self.options),
                )
                logger.info(
                    "Exporting HTTP/REST API at:%s:%d ...",
                    self.options.host,
                    self.options.rest_api_port,
                )
        self.started.set()
        await self._stop_event.wait()
        if rest_server is not None:
            rest_server.close()
        if self.grpc_server is not None:
            await self.grpc_server.stop(grace=5)

    def _build_grpc(self):
        from tfrelay.serving.grpc.model_service import ModelService
        from tfrelay.serving.grpc.prediction_service import PredictionService
        from tfrelay.serving.grpc.server import (
            GrpcSettings,
            build_server,
            parse_channel_arguments,
            uses_unary_server,
        )

        settings = GrpcSettings(
            host=self.options.host,
            port=self.options.port,
            socket_path=self.options.grpc_socket_path,
            channel_arguments=parse_channel_arguments(self.options.grpc_channel_arguments),
            max_concurrent_rpcs=self.options.grpc_max_threads or None,
            max_receive_bytes=self.options.max_request_size_bytes,
            tls=self.tls,
            auth=self.auth,
            implementation=self.options.grpc_implementation,
        )
        prediction = PredictionService(
            self.manager,
            self.runner,
            self.metrics,
            tensor_content=self.options.enable_serialization_as_tensor_content,
            preserialized_responses=uses_unary_server(settings),
        )
        return build_server(settings, prediction, ModelService(self.manager, self.reload_config))

    def _rest_ssl_context(self) -> ssl.SSLContext | None:
        """TLS for REST from the SSLConfig (TF Serving's REST is plaintext, #1503)."""
        if self.tls is None:
            return None
        # ssl.SSLContext loads the key and certificate only from files.
        self._tls_dir = tempfile.mkdtemp(prefix="tfrelay-tls-")
        os.chmod(self._tls_dir, 0o700)

        def write(name: str, text: str) -> str:
            path = os.path.join(self._tls_dir, name)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(text)
            return path

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(
            write("server.crt", self.tls.server_cert), write("server.key", self.tls.server_key)
        )
        if self.tls.custom_ca:
            context.load_verify_locations(cadata=self.tls.custom_ca)
        context.verify_mode = ssl.CERT_REQUIRED if self.tls.client_verify else ssl.CERT_NONE
        return context

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
        if self._tls_dir:
            shutil.rmtree(self._tls_dir, ignore_errors=True)

    def run(self) -> None:
        """start() + serve() + stop(), for the command line."""
        self.start()
        # Everything imported and built so far (TensorFlow's modules alone are millions of
        # objects) lives as long as the server: move it out of the cyclic collector's reach.
        # Without this, each full collection walks it all and stalls every request for
        # ~130 ms about once a second under load (measured p99 at 64 connections: 123 ms).
        # Objects created later (models, requests) are collected as usual.
        gc.collect()
        gc.freeze()
        try:
            try:
                import uvloop

                runner = uvloop.run
            except ImportError:  # pragma: no cover - uvloop is a serving dependency
                runner = asyncio.run
            runner(self.serve())
        finally:
            self.stop()

    # -- loading, warmup and metrics -------------------------------------------------------------

    def _tflite_servable(self, model_name: str, version: int, path: str) -> Servable:
        return TfLiteServable(model_name, version, path, self.options.tflite_interpreters)

    def _load_version(self, model_name: str, version: int, candidate: VersionCandidate) -> Servable:
        """The manager's load function: VersionLoader.load plus TF's load metrics."""
        model_path = candidate.storage.version_url(candidate.version_dir)
        started = time.perf_counter()
        try:
            servable = self.loader.load(model_name, version, candidate)
        except BaseException:
            self.metrics.load_attempt_count.inc(model_path, "fail")
            self.metrics.load_failures.inc(model_name)
            raise
        self.metrics.load_attempt_count.inc(model_path, "success")
        self.metrics.load_latency.inc(model_path, amount=(time.perf_counter() - started) * 1e6)
        return servable

    def _warm_up(self, servable: Servable) -> None:
        """VersionLoader's prepare hook: replays the version's warmup records before it serves.

        Raises:
          ServingError: a record failed; the load fails, as in TF Serving.
        """
        started = time.perf_counter()
        try:
            records, _ = warmup.replay(servable, self.options.num_request_iterations_for_warmup)
        except ServingError as err:
            self.metrics.model_warmup_latency.observe(
                (time.perf_counter() - started) * 1e6, servable.path, err.code.name
            )
            logger.error(
                "Warmup of %s version %d failed: %s", servable.model_name, servable.version, err
            )
            raise
        if records:
            self.metrics.model_warmup_latency.observe(
                (time.perf_counter() - started) * 1e6, servable.path, "OK"
            )
            logger.info(
                "Warmed up %s version %d with %d records",
                servable.model_name,
                servable.version,
                records,
            )

    def _observe_state(self) -> None:
        """tfrelay's own metrics, read from the manager and the source at scrape time."""

        def loaded_versions() -> dict[tuple[str, ...], float]:
            counts: dict[tuple[str, ...], float] = {}
            for name in self.manager.model_names():
                try:
                    statuses = self.manager.status(name)
                except ServingError:
                    statuses = []
                counts[(name,)] = sum(s.state == VersionState.AVAILABLE for s in statuses)
            return counts

        def storage(read) -> dict[tuple[str, ...], float]:
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

    async def _prometheus(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return 200, [(b"content-type", TEXT_CONTENT_TYPE)], self.metrics.exposition()

    # -- tfrelay endpoints ------------------------------------------------------------------------

    def describe_models(self) -> dict[str, Any]:
        """`GET /v1/models`: every model, its base path, versions and labels."""
        described = []
        for model in self.models:
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


def _session_config(path: str):
    """Reads `--tensorflow_session_config_file` (a ConfigProto text proto), or None.

    Raises:
      ConfigError: unreadable or unparseable.
    """
    if not path:
        return None
    from tensorflow.core.protobuf import config_pb2

    from tfrelay.serving.config.text_proto import read_text_proto

    return read_text_proto(path, config_pb2.ConfigProto(), "tensorflow_session_config_file")


def _create_tensorflow_thread_pools() -> None:
    """Creates TensorFlow's process-wide thread pools from this (normal-priority) thread.

    The first Session creates them, and new threads inherit their creator's scheduling
    priority: if a (lower-priority) load thread created them, every model call's intra-op work
    would run at that priority too.
    """
    import tensorflow as tf

    tf.compat.v1.Session(graph=tf.Graph()).close()


def version_banner() -> str:
    """What `--version` prints."""
    import tensorflow as tf

    return f"tfrelay ModelServer: {__version__}\nTensorFlow Library: {tf.__version__}"
