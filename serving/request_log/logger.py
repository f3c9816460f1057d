"""The request log (TF Serving's ServerRequestLogger): which calls are sampled, a bounded queue of
encoded records, and one writer thread that appends them to rotated TFRecord files.

Logging never fails a request and adds little to its latency. The request path does a dict
lookup and a random draw (`sample`) and appends a sampled call to a list (`submit_predict`: a
tuple). Sampled calls are encoded in batches on the event loop, between requests
(`loop.call_later`), and each framed record joins a queue bounded in bytes (`--request_log_max_queued_bytes`; past it a record is dropped
and counted, the request is never held). The writer thread only writes: it wakes every
_FLUSH_SECONDS (or when the queue passes _WAKE_BYTES) and appends each file's batch in one
call, which releases the GIL for the system call.

Why encode on the loop rather than on the writer thread (issue 16, measured in `make bench`'s
features scenario, half_plus_two at 64 connections, the server on one core): with the encoding
on a second Python thread, each request log cost a GIL hand-off between it and the event loop
(the loop returned from epoll to find the writer holding the GIL for up to the 5 ms switch
interval), and throughput fell to 0.69-0.75x; on the loop the cost is the encoding's CPU alone.
Files are closed and published on rotation, when a model's config stops naming their prefix,
and on shutdown (`close`), which writes what is queued first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tfrelay.serving.core.thread_priority import lower_thread_priority
from tfrelay.serving.metrics import ServingMetrics
from tfrelay.serving.request_log import batch_encoding, records
from tfrelay.serving.request_log.config import RequestLogConfig
from tfrelay.serving.request_log.files import ClosedFile, LogFiles, RotationPolicy

logger = logging.getLogger(__name__)

# The writer wakes this often and writes what queued meanwhile; a queue past _WAKE_BYTES wakes
# it at once. Records reach their file within this delay.
_FLUSH_SECONDS = 0.05
_ENCODE_DELAY_SECONDS = 0.005
_ENCODE_AT_ONCE = 1024
_WAKE_BYTES = 4 * 1024 * 1024
# Wait for the queue to drain at shutdown at most this long.
_CLOSE_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class RequestLogOptions:
    """The request log's limits (the `--request_log_*` flags).

    Attributes:
      max_queued_bytes: encoded records waiting for the writer may take this many bytes.
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
      clock: seconds since the epoch, stamped on `submit_predict`'s records when encoded.
    """

    def __init__(
        self,
        options: RequestLogOptions,
        metrics: ServingMetrics | None = None,
        draw: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._options = options
        self._metrics = metrics
        self._draw = draw
        self._clock = clock
        # Replaced whole by `update`: the request path reads it without a lock.
        self._configs: Mapping[str, RequestLogConfig] = {}
        # Whether any model logs requests (read on every call: a plain attribute).
        self.enabled = False
        # Encoded chunks by filename prefix.
        self._queue: dict[str, list[batch_encoding.Chunk]] = {}
        self._queued_bytes = 0
        self._encoder = batch_encoding.BatchEncoder()
        # Sampled calls waiting for the event loop's next turn (touched on the loop only): whole
        # calls, and Predict calls as the request path handed them over.
        self._pending: list[records.LoggedCall] = []
        self._pending_predicts: list[batch_encoding.PredictEntry] = []
        self._timer: asyncio.TimerHandle | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._thread: threading.Thread | None = None
        self._files: dict[str, LogFiles] = {}
        self._spool_dir = options.spool_dir
        self._own_spool: tempfile.TemporaryDirectory | None = None

    def update(self, configs: Mapping[str, RequestLogConfig]) -> None:
        """Serves a new set of logging configs (a model config load or reload).

        Args:
          configs: {model name: its logging config}, for the models that log.
        """
        self._configs = dict(configs)
        self.enabled = bool(self._configs)
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

    def submit_predict(
        self,
        config: RequestLogConfig,
        model_name: str,
        version: int,
        signature_name: str,
        saved_model_tags: tuple[str, ...],
        target: tuple[int | None, str | None],
        request: object | None,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str],
    ) -> None:
        """Logs a sampled Predict call (the data plane's hot path): one tuple appended,
        everything else done in the batch (`batch_encoding.PredictEntry`).

        Args:
          config: the logging config `sample` returned.
          model_name, version, signature_name, saved_model_tags, target: the record's model
            specs and metadata, as `LoggedCall`'s fields.
          request: the request message as received (gRPC), or None (REST).
          inputs: the decoded inputs, {alias: array}.
          outputs: the outputs, {alias: array}.
          output_keys: the outputs answered, in order.
        """
        entry = (
            config, model_name, version, signature_name, saved_model_tags, target, request,
            inputs, outputs, output_keys,
        )  # fmt: skip
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._enqueue([], [entry])
            return
        self._pending_predicts.append(entry)
        self._count_pending(loop)

    def submit(self, call: records.LoggedCall) -> None:
        """Logs a sampled call: encoded once the event loop is done with the current request
        (or at once off the loop), then queued for the writer unless the queue is full.

        Args:
          call: the call, holding references to its (no longer mutated) inputs and outputs, and
            the config `sample` returned.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._enqueue([call], [])
            return
        self._pending.append(call)
        self._count_pending(loop)

    def _count_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        # One loop callback, _ENCODE_DELAY_SECONDS later, encodes every call logged meanwhile:
        # a template fill is a few numpy calls per batch, so at 20k requests/s a batch of ~100
        # costs ~1 us of CPU per call where one call per batch cost 11 us. A burst past
        # _ENCODE_AT_ONCE calls is encoded at the loop's next turn.
        pending = len(self._pending) + len(self._pending_predicts)
        if pending == 1:
            self._timer = loop.call_later(_ENCODE_DELAY_SECONDS, self._encode_pending)
        elif pending == _ENCODE_AT_ONCE:
            self._timer.cancel()
            loop.call_soon(self._encode_pending)

    def _encode_pending(self) -> None:
        calls, self._pending = self._pending, []
        predicts, self._pending_predicts = self._pending_predicts, []
        self._enqueue(calls, predicts)

    def _enqueue(
        self, calls: list[records.LoggedCall], predicts: list[batch_encoding.PredictEntry]
    ) -> None:
        chunks, failed = self._encoder.encode(calls, predicts, int(self._clock()))
        for model_name, err in failed:
            logger.debug("Not logging a %s call: %s", model_name, err)
            self._count_drop(model_name, "encode_error")
        dropped = []
        with self._lock:
            for chunk in chunks:
                size = len(chunk.data)
                if self._closing or self._queued_bytes + size > self._options.max_queued_bytes:
                    dropped.append(chunk)
                    continue
                self._queue.setdefault(chunk.prefix, []).append(chunk)
                self._queued_bytes += size
            if self._queued_bytes >= _WAKE_BYTES:
                self._wake.notify()
        for chunk in dropped:
            self._count_drop(chunk.model_name, "queue_full", chunk.records)

    def close(self) -> None:
        """Writes what is queued, closes and publishes every file, and stops the writer (call
        once the event loop has stopped: calls it had not encoded yet are encoded here)."""
        if self._pending or self._pending_predicts:
            self._encode_pending()
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
                if not self._closing:
                    self._wake.wait(_FLUSH_SECONDS)
                batch, self._queue = self._queue, {}
                closing = self._closing
            size = 0
            for prefix, chunks in batch.items():
                size += sum(len(chunk.data) for chunk in chunks)
                self._write(prefix, chunks)
            with self._lock:
                # Counted until written, so the bound holds for the batch in hand too.
                self._queued_bytes -= size
            self._rotate()
            if closing and not batch:
                for files in self._files.values():
                    files.close()
                self._files.clear()
                return

    def _write(self, prefix: str, chunks: list[batch_encoding.Chunk]) -> None:
        files = self._files.get(prefix)
        if files is None:
            files = LogFiles(
                prefix,
                self._options.rotation,
                os.path.join(self._spool_dir, str(len(self._files))),
                self._options.storage_timeout_seconds,
                self._file_closed,
            )
            self._files[prefix] = files
        try:
            files.write([(chunk.data, chunk.records) for chunk in chunks])
        except OSError as err:
            logger.warning("Could not write the request log %s: %s", prefix, err)
            for chunk in chunks:
                self._count_drop(chunk.model_name, "write_error", chunk.records)
            return
        if self._metrics is not None:
            for chunk in chunks:
                self._metrics.request_log_records.inc(chunk.model_name, amount=chunk.records)

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

    def _count_drop(self, model_name: str, reason: str, count: int = 1) -> None:
        if self._metrics is not None:
            self._metrics.request_log_dropped.inc(model_name, reason, amount=count)
