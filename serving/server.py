"""The model server: builds the front ends around a ServerCore, and starts and stops them.

Lifecycle (as KServe's ModelServer): `ModelServer(options)` reads every config file (model
configs excepted), `start()` starts the core (it loads the model config and starts the
background threads), `serve()` runs the front ends until `stop()` or a signal, `stop()` unloads
everything. The server answers as soon as it starts; models become available as they load (TF
Serving blocks until every model has loaded, #979).

What is served (models, config reload, the `--model_config_file` watcher, status, readiness and
the tfrelay gauges) lives in `ServerCore` (serving/core/server_core.py), as in TF Serving's
ServerCore; the TLS material's files live with the SSL config (serving/config/ssl.py). This
module only wires and runs (issue 15).

Both front ends run in one asyncio loop in one process: REST through a lean HTTP/1.1 server,
gRPC through tfrelay's own HTTP/2 front end (grpc.aio with TLS). They share one manager, one
inference thread pool, one batcher (with `--enable_batching`) and one set of metrics. Versions
are warmed up (their `assets.extra/tf_serving_warmup_requests` replayed) before they become
AVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tfrelay.serving.api.data_plane import DataPlane
from tfrelay.serving.api.inference import InferenceRunner
from tfrelay.serving.api.response_cache import ResponseCache
from tfrelay.serving.batching.batcher import Batcher
from tfrelay.serving.config.batching import BatchingConfig, read_batching_parameters
from tfrelay.serving.config.model_config import ModelConfig
from tfrelay.serving.config.monitoring import PrometheusSettings, read_monitoring_config
from tfrelay.serving.config.ssl import TlsSettings, read_ssl_config, server_ssl_context
from tfrelay.serving.core.manager import ServableManager
from tfrelay.serving.core.server_core import ServerCore
from tfrelay.serving.core.source import StorageSource
from tfrelay.serving.core.version_loader import VersionLoader
from tfrelay.serving.metrics import TEXT_CONTENT_TYPE, ObservedGauge, ServingMetrics
from tfrelay.serving.options import ServerOptions
from tfrelay.serving.rest.app import RestApi
from tfrelay.serving.rest.http_server import start_http_server
from tfrelay.serving.rest.limits import limits_from_options
from tfrelay.serving.security import TokenAuth
from tfrelay.version import __version__

logger = logging.getLogger(__name__)


class ModelServer:
    """A running tfrelay model server: REST (HTTP/1.1 on httptools) and gRPC (HTTP/2, or grpc.aio)
    on one event loop, around one ServerCore.

    Attributes:
      core: the served models (config, loading, status, readiness).
      manager: every loaded version, shared by both front ends (`core.manager`).
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
        self.core = ServerCore(options, self.metrics)
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
        self.response_cache = None
        if options.response_cache_mb > 0:
            self.response_cache = ResponseCache(
                options.response_cache_mb * 1024 * 1024, self.metrics
            )
            self.response_cache.attach(self.manager)
            cache = self.response_cache
            self.metrics.observe(
                ObservedGauge(
                    ":tfrelay:serving:response_cache_bytes",
                    "Bytes the response cache holds (keys, answers, bookkeeping).",
                    [],
                    lambda: {(): cache.size_bytes},
                )
            )
        # One data plane for both front ends (issue 15): they keep only their codecs.
        self.data_plane = DataPlane(
            self.manager,
            self.runner,
            self.metrics,
            request_log=self.core.request_log,
            response_cache=self.response_cache,
        )
        extra_routes = {"/healthz": self._healthz, "/readyz": self._readyz}
        if self.prometheus.enabled:
            extra_routes[self.prometheus.path] = self._prometheus
        self.rest = RestApi(
            self.manager,
            self.runner,
            describe_models=self.core.describe_models,
            extra_routes=extra_routes,
            metrics=self.metrics,
            auth=self.auth,
            max_body_bytes=options.max_request_size_bytes,
            data_plane=self.data_plane,
        )
        self.grpc_server = None
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = threading.Event()

    # -- the core's parts and calls, for the front ends and the tests ---------------------------

    @property
    def manager(self) -> ServableManager:
        """The core's manager."""
        return self.core.manager

    @property
    def source(self) -> StorageSource:
        """The core's storage source."""
        return self.core.source

    @property
    def loader(self) -> VersionLoader:
        """The core's VersionLoader."""
        return self.core.loader

    @property
    def models(self) -> list[ModelConfig]:
        """The config being served (`ServerCore.models`)."""
        return self.core.models

    def apply_models(self, models: Sequence[ModelConfig], initial: bool = False) -> None:
        """`ServerCore.apply_models` (see there for Args and Raises)."""
        self.core.apply_models(models, initial=initial)

    def reload_config(self, models: Sequence[ModelConfig], timeout: float | None = None) -> None:
        """`ServerCore.reload_config`, the gRPC ModelService's HandleReloadConfigRequest (see
        there for Args and Raises)."""
        self.core.reload_config(models, timeout)

    def describe_models(self) -> dict[str, Any]:
        """`ServerCore.describe_models`: the `GET /v1/models` listing."""
        return self.core.describe_models()

    def ready_models(self) -> dict[str, bool]:
        """`ServerCore.ready_models`: {model: has at least one AVAILABLE version}."""
        return self.core.ready_models()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Starts the core: reads the config and starts loading; returns at once (models load
        in the background).

        Raises:
          ConfigError: the config is missing, unreadable or invalid.
        """
        self.core.start()

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
            data_plane=self.data_plane,
        )
        models = ModelService(self.manager, self.core.reload_config, self.data_plane)
        return build_server(settings, prediction, models)

    def _rest_ssl_context(self) -> ssl.SSLContext | None:
        """TLS for REST from the SSLConfig (TF Serving's REST is plaintext, #1503)."""
        return None if self.tls is None else server_ssl_context(self.tls)

    def request_stop(self) -> None:
        """Asks `serve()` to return (thread-safe)."""
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)

    def stop(self) -> None:
        """Stops polling and unloads every model (waits for in-flight requests)."""
        self.core.stop()
        self._executor.shutdown(wait=True)
        self.core.close()

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

    # -- tfrelay endpoints (REST routes) ----------------------------------------------------------

    async def _prometheus(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return 200, [(b"content-type", TEXT_CONTENT_TYPE)], self.metrics.exposition()

    async def _healthz(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return 200, [(b"content-type", b"application/json")], b'{"status":"ok"}'

    async def _readyz(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        import orjson

        ready = self.core.ready_models()
        ok = bool(ready) and all(ready.values())
        body = orjson.dumps({"ready": ok, "models": ready})
        return (200 if ok else 503), [(b"content-type", b"application/json")], body


def version_banner() -> str:
    """What `--version` prints."""
    import tensorflow as tf

    return f"tfrelay ModelServer: {__version__}\nTensorFlow Library: {tf.__version__}"
