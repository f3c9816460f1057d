"""The request log (TF Serving's ServerRequestLogger): which calls are sampled, a bounded queue, and
one writer thread that turns them into PredictionLog records in rotated TFRecord files.

Logging never slows or fails a request. The request path does a dict lookup and a random draw
(`sample`), and for a sampled call appends to a deque under a lock (`submit`); it never waits: a
call that would take the queue past `--request_log_max_queued_bytes` is dropped and counted. The
records are encoded, framed and written on the writer thread, at a lower scheduling priority.
Files are closed and published on rotation, when a model's config stops naming their prefix, and
on shutdown (`close`), which drains the queue first.
"""

from __future__ import annotations

import collections
import logging
import os
import random
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tfrelay.serving.core.thread_priority import lower_thread_priority
from tfrelay.serving.metrics import ServingMetrics
from tfrelay.serving.request_log import records, tfrecord
from tfrelay.serving.request_log.config import RequestLogConfig
from tfrelay.serving.request_log.files import ClosedFile, LogFiles, RotationPolicy

logger = logging.getLogger(__name__)

# How often the writer wakes up to rotate files by age when no record arrives.
_TICK_SECONDS = 1.0
# Wait for the queue to drain at shutdown at most this long.
_CLOSE_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class RequestLogOptions:
    """The request log's limits (the `--request_log_*` flags).

    Attributes:
      max_queued_bytes: memory the queue may hold.
      rotation: when files are closed.
      spool_dir: where bucket-bound files wait for their upload ("" for a private temp dir).
      storage_timeout_seconds: the deadline of storage calls.
    """

    max_queued_bytes: int
    rotation: RotationPolicy
    spool_dir: str = ""
    storage_timeout_seconds: float = 60.0


class RequestLogger:
    """Samples successful calls and writes them as PredictionLog records.

    Args:
      options: limits and rotation.
      metrics: where records, drops and files are counted (None: not counted).
      draw: a uniform random number in [0, 1) per call (tests give a fixed sequence).
    """

    def __init__(
        self,
        options: RequestLogOptions,
        metrics: ServingMetrics | None = None,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._options = options
        self._metrics = metrics
        self._draw = draw
        # Replaced whole by `update`: the request path reads it without a lock.
        self._configs: Mapping[str, RequestLogConfig] = {}
        self._queue: collections.deque[tuple[records.LoggedCall, RequestLogConfig, int]] = (
            collections.deque()
        )
        self._queued_bytes = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._thread: threading.Thread | None = None
        self._files: dict[str, LogFiles] = {}
        self._spool_dir = options.spool_dir
        self._own_spool: tempfile.TemporaryDirectory | None = None

    @property
    def enabled(self) -> bool:
        """Whether any model logs requests."""
        return bool(self._configs)

    def update(self, configs: Mapping[str, RequestLogConfig]) -> None:
        """Serves a new set of logging configs (a model config load or reload).

        Args:
          configs: {model name: its logging config}, for the models that log.
        """
        self._configs = dict(configs)
        if self._configs:
            self._start()
        with self._wake:
            self._wake.notify()  # the writer closes files no config names any more

    def sample(self, model_name: str) -> RequestLogConfig | None:
        """Decides whether one call of `model_name` is logged (the request path's only cost when
        it is not).

        Args:
          model_name: the model the call addressed.

        Returns:
          Its logging config when this call is sampled, else None.
        """
        config = self._configs.get(model_name)
        if config is None:
            return None
        if config.sampling_rate < 1.0 and self._draw() >= config.sampling_rate:
            return None
        return config

    def submit(self, call: records.LoggedCall, config: RequestLogConfig) -> None:
        """Queues a sampled call for the writer, or drops it when the queue is full.

        Args:
          call: the call, holding references to its (no longer mutated) inputs and outputs.
          config: its model's logging config (from `sample`).
        """
        size = call.held_bytes()
        with self._lock:
            if self._closing or self._queued_bytes + size > self._options.max_queued_bytes:
                dropped = True
            else:
                dropped = False
                self._queue.append((call, config, size))
                self._queued_bytes += size
                if len(self._queue) == 1:
                    self._wake.notify()
        if dropped and self._metrics is not None:
            self._metrics.request_log_dropped.inc(call.model_name, "queue_full")

    def close(self) -> None:
        """Writes what is queued, closes and publishes every file, and stops the writer."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(_CLOSE_TIMEOUT_SECONDS)
            if self._thread.is_alive():
                logger.warning(
                    "The request log writer did not finish within %.0f s; its open files are "
                    "left under their temporary names",
                    _CLOSE_TIMEOUT_SECONDS,
                )
        if self._own_spool is not None:
            self._own_spool.cleanup()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closing:
                return
            if not self._spool_dir:
                self._own_spool = tempfile.TemporaryDirectory(prefix="tfrelay-request-log-")
                self._spool_dir = self._own_spool.name
            self._thread = threading.Thread(
                target=self._run, name="tfrelay-request-log", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        lower_thread_priority()
        while True:
            with self._wake:
                if not self._queue and not self._closing:
                    self._wake.wait(_TICK_SECONDS)
                batch = list(self._queue)
                self._queue.clear()
                self._queued_bytes = 0
                closing = self._closing
            for call, config, _ in batch:
                self._write(call, config)
            self._rotate()
            if closing and not batch:
                for files in self._files.values():
                    files.close()
                self._files.clear()
                return

    def _write(self, call: records.LoggedCall, config: RequestLogConfig) -> None:
        try:
            framed = tfrecord.frame(records.prediction_log(call, config))
        except Exception as err:  # noqa: BLE001 (the call was answered; its record is dropped)
            logger.debug("Not logging a %s call: %s", call.model_name, err)
            self._count_drop(call.model_name, "encode_error")
            return
        files = self._files.get(config.filename_prefix)
        if files is None:
            files = LogFiles(
                config.filename_prefix,
                self._options.rotation,
                os.path.join(self._spool_dir, str(len(self._files))),
                self._options.storage_timeout_seconds,
                self._file_closed,
            )
            self._files[config.filename_prefix] = files
        try:
            files.write(framed)
        except OSError as err:
            logger.warning("Could not write the request log %s: %s", config.filename_prefix, err)
            self._count_drop(call.model_name, "write_error")
            return
        if self._metrics is not None:
            self._metrics.request_log_records.inc(call.model_name)

    def _rotate(self) -> None:
        prefixes = {config.filename_prefix for config in self._configs.values()}
        for prefix, files in list(self._files.items()):
            if prefix not in prefixes:
                files.close()
                del self._files[prefix]
            else:
                files.rotate_if_due()

    def _file_closed(self, closed: ClosedFile) -> None:
        if closed.error:
            logger.warning("Request log file lost (%d records): %s", closed.records, closed.error)
        elif closed.records:
            logger.info("Request log %s: %d records", closed.url, closed.records)
        if self._metrics is not None:
            self._metrics.request_log_files.inc("lost" if closed.error else "published")

    def _count_drop(self, model_name: str, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.request_log_dropped.inc(model_name, reason)
