"""Server-side request batching (`--enable_batching`), TF Serving's shared batch scheduler.

Requests for the same servable, signature, input and output aliases (and, so that answers stay
identical to unbatched ones, the same dtypes and per-row shapes) wait in one queue on the event
loop. A batch is handed to a batch thread when it is full (`max_batch_size` rows), when its first
request has waited `batch_timeout_micros`, or, with a timeout of 0, as soon as a batch thread is
free; so under light load nothing waits and under heavy load requests merge. At most
`num_batch_threads` merged runs are in flight; a queue holding `max_enqueued_batches` batches
refuses new requests at once (RESOURCE_EXHAUSTED, HTTP 429) instead of piling up latency.

A merged run concatenates the inputs with numpy, pads to the next `allowed_batch_sizes` entry
with copies of the first row, makes one model call on the shared executor, and splits the
outputs back by row counts (padding rows dropped).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from tfrelay.serving import errors
from tfrelay.serving.config.batching import BatchingConfig
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.metrics import ServingMetrics
from tfrelay.serving.servables.base import Servable, Signature

# shared_batch_scheduler.h's wording for a full queue.
QUEUE_FULL_MESSAGE = "The batch scheduling queue to which this task was submitted is full"
# With pad_variable_length_inputs, every request is padded to the largest inner dimensions in
# its batch: requests of shape [1, 4M, 1] and [1, 1, 4M] would pad to 16e12 elements each
# (issue 12). A request joins a batch only while the padded batch stays within this many bytes
# (the request size limit's default); otherwise it starts a batch of its own, so a hostile
# shape pads only itself and never fails the requests it would have been merged with.
MAX_PADDED_BATCH_BYTES = 256 * 1024 * 1024


@dataclass
class _Task:
    inputs: Mapping[str, np.ndarray]
    rows: int
    future: asyncio.Future
    enqueued: float


@dataclass
class _Batch:
    created: float
    tasks: list[_Task] = field(default_factory=list)
    rows: int = 0
    closed: bool = False
    # pad_variable_length_inputs only: {alias: largest inner dimensions so far}.
    inner_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def padded_bytes_with(self, inputs: Mapping[str, np.ndarray], rows: int) -> int:
        """The merged inputs' size if a request of `rows` rows joined (inner dims padded)."""
        total = 0
        for alias, tensor in inputs.items():
            inner = tensor.shape[1:]
            widest = self.inner_shapes.get(alias, inner)
            elements = self.rows + rows
            for have, new in zip(widest, inner, strict=True):
                elements *= max(have, new)
            total += elements * tensor.itemsize
        return total

    def add_inner_shapes(self, inputs: Mapping[str, np.ndarray]) -> None:
        for alias, tensor in inputs.items():
            inner = tensor.shape[1:]
            widest = self.inner_shapes.get(alias, inner)
            self.inner_shapes[alias] = tuple(map(max, widest, inner))


@dataclass
class _Queue:
    servable: Servable
    signature: Signature
    input_keys: tuple[str, ...]
    output_keys: tuple[str, ...]
    batches: collections.deque[_Batch] = field(default_factory=collections.deque)


class Batcher:
    """Merges concurrent model calls into batches.

    All queue state lives on the event loop (no locks); only the merged model call runs on the
    executor.

    Args:
      config: the batching parameters.
      executor: the shared inference thread pool.
      metrics: where batching metrics are recorded (optional).
      oversize_runs_alone: run a request over `max_batch_size` as its own batch instead of
        refusing it (when batching is tfrelay's default rather than the user's request).
    """

    def __init__(
        self,
        config: BatchingConfig,
        executor: Executor,
        metrics: ServingMetrics | None = None,
        oversize_runs_alone: bool = False,
    ) -> None:
        self.config = config
        self._oversize_runs_alone = oversize_runs_alone
        self._executor = executor
        self._metrics = metrics
        self._queues: dict[tuple, _Queue] = {}
        self._free_threads = config.num_batch_threads
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    async def run(
        self,
        servable: Servable,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str],
    ) -> dict[str, np.ndarray]:
        """Runs one request's model call as part of a batch.

        Args:
          servable: the pinned version (the caller holds its handle until this returns).
          signature: the signature to run.
          inputs: {alias: array}; every array must share its first dimension.
          output_keys: the outputs wanted.

        Returns:
          {output alias: this request's rows of the merged output}.

        Raises:
          ServingError: INVALID_ARGUMENT for inputs that cannot be batched or a request larger
            than `max_batch_size`; RESOURCE_EXHAUSTED when the queue is full; whatever the
            merged model call raised.
        """
        rows = _rows(inputs)
        loop = asyncio.get_running_loop()
        if rows > self.config.max_batch_size and self._oversize_runs_alone:
            return await self._run_alone(loop, servable, signature, inputs, output_keys, rows)
        if rows > self.config.max_batch_size:
            raise errors.invalid_argument(
                f"Task size {rows} is larger than maximum input batch size "
                f"{self.config.max_batch_size}"
            )
        key = self._key(servable, signature, inputs, output_keys)
        queue = self._queues.get(key)
        if (
            queue is None
            and self._free_threads > 0
            and self.config.batch_timeout_micros == 0
            and self.config.padded_size(rows) == rows
        ):
            # Nothing queued to merge with and a batch thread free: a batch of one, run at once
            # without the queue's bookkeeping, so batching costs nothing at low concurrency.
            return await self._run_alone(loop, servable, signature, inputs, output_keys, rows)
        if queue is None:
            queue = _Queue(servable, signature, tuple(sorted(inputs)), tuple(output_keys))
            self._queues[key] = queue
        now = time.perf_counter()
        batch = queue.batches[-1] if queue.batches else None
        pad = self.config.pad_variable_length_inputs
        if (
            batch is None
            or batch.closed
            or batch.rows + rows > self.config.max_batch_size
            or (
                pad
                and batch.tasks
                and batch.padded_bytes_with(inputs, rows) > MAX_PADDED_BATCH_BYTES
            )
        ):
            # As SharedBatchScheduler: the open batch counts against the queue, and a refused
            # request leaves it open.
            if len(queue.batches) >= self.config.max_enqueued_batches:
                raise ServingError(Code.RESOURCE_EXHAUSTED, QUEUE_FULL_MESSAGE)
            if batch is not None:
                batch.closed = True
            batch = _Batch(created=now)
            queue.batches.append(batch)
            if self.config.batch_timeout_micros > 0:
                self._arm_timer(loop, now + self.config.batch_timeout_seconds)
        task = _Task(inputs, rows, loop.create_future(), now)
        if pad:
            batch.add_inner_shapes(inputs)
        batch.tasks.append(task)
        batch.rows += rows
        if batch.rows >= self.config.max_batch_size:
            batch.closed = True
        if self._metrics is not None:
            self._metrics.input_batch_size.observe(rows, servable.model_name)
        self._schedule()
        return await task.future

    async def _run_alone(
        self,
        loop: asyncio.AbstractEventLoop,
        servable: Servable,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str],
        rows: int,
    ) -> dict[str, np.ndarray]:
        self._free_threads -= 1
        metrics = self._metrics
        if metrics is not None:
            name = servable.model_name
            metrics.input_batch_size.observe(rows, name)
            metrics.queuing_latency.observe(0.0, self.config.thread_pool_name)
            metrics.wrapped_run_count.inc()
            metrics.processed_batch_size.observe(rows, name)
            metrics.padding_size.observe(0, name, str(rows))
        try:
            return await loop.run_in_executor(
                self._executor, servable.run, signature, inputs, output_keys
            )
        finally:
            self._free_threads += 1
            self._schedule()

    # -- scheduling (event loop only) ----------------------------------------------------------

    def _key(
        self,
        servable: Servable,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_keys: Sequence[str],
    ) -> tuple:
        if self.config.pad_variable_length_inputs:
            layout = tuple((k, inputs[k].dtype.str, inputs[k].ndim) for k in sorted(inputs))
        else:
            layout = tuple((k, inputs[k].dtype.str, inputs[k].shape[1:]) for k in sorted(inputs))
        return (id(servable), signature.name, layout, tuple(output_keys))

    def _arm_timer(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = loop.call_later(max(0.0, when - time.perf_counter()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._schedule()

    def _ready(self, batch: _Batch, now: float) -> bool:
        if not batch.tasks:
            return False
        if batch.closed or self.config.batch_timeout_micros == 0:
            return True
        return now - batch.created >= self.config.batch_timeout_seconds

    def _schedule(self) -> None:
        now = time.perf_counter()
        next_deadline: float | None = None
        while self._free_threads > 0:
            picked = None
            for key, queue in self._queues.items():
                if queue.batches and self._ready(queue.batches[0], now):
                    picked = key
                    break
            if picked is None:
                break
            queue = self._queues.pop(picked)
            batch = queue.batches.popleft()
            if queue.batches:
                # Round robin: a queue that just ran goes to the back. An emptied queue is
                # dropped, so it stops pinning a servable that may be unloading.
                self._queues[picked] = queue
            self._free_threads -= 1
            self._start(queue, batch, now)
        if self.config.batch_timeout_micros > 0:
            for queue in self._queues.values():
                if queue.batches and queue.batches[0].tasks:
                    deadline = queue.batches[0].created + self.config.batch_timeout_seconds
                    if next_deadline is None or deadline < next_deadline:
                        next_deadline = deadline
            if next_deadline is not None and next_deadline > now:
                self._arm_timer(asyncio.get_running_loop(), next_deadline)

    def _start(self, queue: _Queue, batch: _Batch, now: float) -> None:
        metrics = self._metrics
        if metrics is not None:
            pool = self.config.thread_pool_name
            for task in batch.tasks:
                metrics.queuing_latency.observe((now - task.enqueued) * 1e6, pool)
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._process, queue, batch)
        future.add_done_callback(lambda done: self._finish(batch, done))

    def _finish(self, batch: _Batch, done: asyncio.Future) -> None:
        self._free_threads += 1
        error = done.exception()
        results = None if error is not None else done.result()
        for index, task in enumerate(batch.tasks):
            if task.future.done():  # the client went away
                continue
            if error is not None:
                task.future.set_exception(error)
            else:
                task.future.set_result(results[index])
        self._schedule()

    # -- the merged run (executor thread) -------------------------------------------------------

    def _process(self, queue: _Queue, batch: _Batch) -> list[dict[str, np.ndarray]]:
        tasks = batch.tasks
        padded_rows = self.config.padded_size(batch.rows)
        merged = {
            key: self._merge([t.inputs[key] for t in tasks], padded_rows - batch.rows)
            for key in queue.input_keys
        }
        metrics = self._metrics
        if metrics is not None:
            name = queue.servable.model_name
            metrics.wrapped_run_count.inc()
            metrics.processed_batch_size.observe(padded_rows, name)
            metrics.padding_size.observe(padded_rows - batch.rows, name, str(padded_rows))
        outputs = queue.servable.run(queue.signature, merged, queue.output_keys)
        for key, tensor in outputs.items():
            if tensor.ndim == 0 or tensor.shape[0] != padded_rows:
                raise ServingError(
                    Code.FAILED_PRECONDITION,
                    "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                    f"dimension sizes of the input tensors (output {key}: "
                    f"{tensor.shape[0] if tensor.ndim else 'scalar'} vs. {padded_rows})",
                )
        if len(tasks) == 1 and padded_rows == batch.rows:
            return [outputs]
        results = []
        offset = 0
        for task in tasks:
            end = offset + task.rows
            results.append({key: tensor[offset:end] for key, tensor in outputs.items()})
            offset = end
        return results

    def _merge(self, tensors: list[np.ndarray], padding_rows: int) -> np.ndarray:
        if self.config.pad_variable_length_inputs and len(tensors) > 1:
            tensors = _pad_to_common_shape(tensors)
        if padding_rows:
            # batching_session.cc pads with copies of the first task's first row.
            first_row = tensors[0][:1]
            tensors = [*tensors, np.repeat(first_row, padding_rows, axis=0)]
        if len(tensors) == 1:
            return tensors[0]
        return np.concatenate(tensors, axis=0)


def _rows(inputs: Mapping[str, np.ndarray]) -> int:
    rows = None
    for tensor in inputs.values():
        if tensor.ndim == 0:
            raise errors.invalid_argument(
                "Batching Run() input tensors must have at least one dimension"
            )
        if rows is None:
            rows = tensor.shape[0]
        elif tensor.shape[0] != rows:
            raise errors.invalid_argument(
                "Batching Run() input tensors must have equal 0th-dimension size"
            )
    if rows is None:
        raise errors.invalid_argument("Batching Run() must have at least one input tensor")
    return rows


def _pad_to_common_shape(tensors: list[np.ndarray]) -> list[np.ndarray]:
    """Pads dimensions after the first to the largest in the batch, with each tensor's first
    element (batching_util.cc's AddPadding)."""
    target = tuple(max(t.shape[d] for t in tensors) for d in range(1, tensors[0].ndim))
    padded = []
    for tensor in tensors:
        if tensor.shape[1:] == target:
            padded.append(tensor)
            continue
        if tensor.size == 0:
            raise errors.invalid_argument("Got empty tensor in batch of non-empty tensors.")
        widths = [(0, 0)] + [(0, t - s) for s, t in zip(tensor.shape[1:], target, strict=True)]
        fill = tensor.reshape(-1)[0]
        if tensor.dtype == object:
            out = np.empty((tensor.shape[0], *target), dtype=object)
            out[...] = fill
            out[tuple(slice(0, s) for s in tensor.shape)] = tensor
            padded.append(out)
        else:
            padded.append(np.pad(tensor, widths, constant_values=fill))
    return padded
