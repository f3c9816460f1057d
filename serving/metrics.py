"""Prometheus metrics with TF Serving's names, labels and buckets, plus tfrelay's own.

One `ServingMetrics` per ModelServer, with its own prometheus-client `CollectorRegistry` (several
servers can run in one process). Metrics are recorded into small lock-protected families and
exposed through a custom collector, so the text served at the monitoring path carries TF
Serving's exact names: prometheus-client's own Counter would add `_total`, which
tensorflow_model_server's exporter does not.

TF Serving metrics (`util/prometheus_exporter.cc` turns `/tensorflow/serving/x` into
`:tensorflow:serving:x`):

- `:tensorflow:serving:request_count{model_name,status}`: every request, by canonical status.
- `:tensorflow:serving:request_latency{model_name,API,entrypoint}`: µs, successful requests only.
- `:tensorflow:serving:runtime_latency{model_name,API,runtime}`: µs spent running the model.
- `:tensorflow:serving:request_example_counts{model}` / `..._count_total{model}`: examples per
  classify/regress/multi-inference request.
- `:tensorflow:serving:model_warmup_latency{model_path,status}`: µs to replay warmup records.
- `:tensorflow:serving:batching_session:queuing_latency{thread_pool_name}`: µs a request waited
  for its batch to start; `..:wrapped_run_count`: merged runs; `..:input_batch_size`,
  `..:processed_batch_size`, `..:padding_size`: rows per request, rows per run, padded rows.
- `:tensorflow:cc:saved_model:load_attempt_count{model_path,status}` and
  `:tensorflow:cc:saved_model:load_latency{model_path}` (a counter of µs, as in TF).

tfrelay's own (`:tfrelay:serving:*`): `loaded_versions{model_name}` (gauge),
`storage_polls{model_name}`, `storage_listings{model_name,kind}` (delimiter or recursive),
`storage_bytes_copied{model_name}`, `load_failures{model_name}`,
`request_log_records{model_name}`, `request_log_dropped{model_name,reason}`,
`request_log_files{status}`, `response_cache_{hits,misses,evictions}{model_name}`,
`response_cache_bytes` (gauge).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

TEXT_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


def exponential_buckets(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """TF monitoring's `Buckets::Exponential(scale, growth_factor, bucket_count)` bounds."""
    return tuple(scale * growth**i for i in range(count))


# Buckets of TF Serving's samplers (all in microseconds).
REQUEST_LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)
QUEUING_LATENCY_BUCKETS = exponential_buckets(100, 1.2, 52)
BATCH_SIZE_BUCKETS = exponential_buckets(1, 2, 14)
EXAMPLE_COUNT_BUCKETS = exponential_buckets(1, 2, 14)
LOAD_LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)


# Label sets kept per metric (issue 12): request metrics are labelled with the model name the
# client sent, so a client naming a new model on every request would grow them without end.
# Past the cap, new label sets are counted together under OVERFLOW_LABEL.
MAX_LABEL_SETS = 4096
OVERFLOW_LABEL = "_other"


class _Family:
    """One metric with labels: a dict of cells behind a lock, at most MAX_LABEL_SETS of them."""

    kind = "untyped"

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self._lock = threading.Lock()
        self._cells: dict[tuple[str, ...], object] = {}
        self._overflow_key = (OVERFLOW_LABEL,) * len(self.labels)

    def _key(self, values: Sequence[str]) -> tuple[str, ...]:
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {tuple(values)}")
        return tuple(str(v) for v in values)

    def _new_cell_key(self, key: tuple[str, ...]) -> tuple[str, ...]:
        """The key a label set without a cell yet is counted under (hold the lock)."""
        if len(self._cells) < MAX_LABEL_SETS:
            return key
        return self._overflow_key


class Counter(_Family):
    """A monotonically increasing value per label set."""

    kind = "counter"

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        key = self._key(label_values)
        with self._lock:
            value = self._cells.get(key)
            if value is None:
                key = self._new_cell_key(key)
                value = self._cells.get(key, 0.0)
            self._cells[key] = value + amount

    def value(self, *label_values: str) -> float:
        with self._lock:
            return float(self._cells.get(self._key(label_values), 0.0))

    def metric(self) -> Metric:
        metric = Metric(self.name, self.documentation, self.kind)
        with self._lock:
            cells = sorted(self._cells.items())
        for key, value in cells:
            metric.add_sample(self.name, dict(zip(self.labels, key, strict=True)), value)
        return metric


class Histogram(_Family):
    """A distribution with fixed upper bounds per label set (TF's Sampler)."""

    kind = "histogram"

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], bounds: Sequence[float]
    ) -> None:
        super().__init__(name, documentation, labels)
        self.bounds = tuple(bounds)

    def observe(self, value: float, *label_values: str) -> None:
        key = self._key(label_values)
        index = bisect.bisect_left(self.bounds, value)
        with self._lock:
            cell = self._cells.get(key)
            if cell is None:
                key = self._new_cell_key(key)
                cell = self._cells.get(key)
            if cell is None:
                # [per-bucket counts..., overflow count, sum]
                cell = [0.0] * (len(self.bounds) + 2)
                self._cells[key] = cell
            cell[index] += 1
            cell[-1] += value

    def count(self, *label_values: str) -> int:
        with self._lock:
            cell = self._cells.get(self._key(label_values))
            return int(sum(cell[:-1])) if cell else 0

    def snapshot(self, *label_values: str) -> dict[float, int]:
        """{upper bound: observations in that bucket} (math.inf for the overflow bucket)."""
        with self._lock:
            cell = list(self._cells.get(self._key(label_values)) or [])
        if not cell:
            return {}
        return {b: int(c) for b, c in zip((*self.bounds, math.inf), cell[:-1], strict=True)}

    def metric(self) -> Metric:
        metric = Metric(self.name, self.documentation, self.kind)
        with self._lock:
            cells = sorted((key, list(cell)) for key, cell in self._cells.items())
        for key, cell in cells:
            labels = dict(zip(self.labels, key, strict=True))
            running = 0.0
            for bound, count in zip(self.bounds, cell, strict=False):
                running += count
                metric.add_sample(f"{self.name}_bucket", {**labels, "le": _number(bound)}, running)
            running += cell[len(self.bounds)]
            metric.add_sample(f"{self.name}_bucket", {**labels, "le": "+Inf"}, running)
            metric.add_sample(f"{self.name}_sum", labels, cell[-1])
            metric.add_sample(f"{self.name}_count", labels, running)
        return metric


class ObservedGauge:
    """A gauge (or counter) whose values are read from a callback at scrape time.

    Args:
      name: the metric name.
      documentation: help text.
      labels: label names.
      read: returns {label values: value}.
      kind: "gauge" or "counter".
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: Callable[[], dict[tuple[str, ...], float]],
        kind: str = "gauge",
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self._read = read
        self.kind = kind

    def metric(self) -> Metric:
        metric = Metric(self.name, self.documentation, self.kind)
        for key, value in sorted(self._read().items()):
            metric.add_sample(self.name, dict(zip(self.labels, key, strict=True)), value)
        return metric


class _Collector:
    """prometheus-client collector over tfrelay's families."""

    def __init__(self, families: Callable[[], Iterable[object]]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        for family in self._families():
            yield family.metric()


class ServingMetrics:
    """Every metric of one model server, shared by the REST and gRPC front ends."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        serving = ":tensorflow:serving:"
        self.request_count = Counter(
            f"{serving}request_count",
            "The total number of requests.",
            ["model_name", "status"],
        )
        self.request_latency = Histogram(
            f"{serving}request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"],
            REQUEST_LATENCY_BUCKETS,
        )
        self.runtime_latency = Histogram(
            f"{serving}runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ["model_name", "API", "runtime"],
            REQUEST_LATENCY_BUCKETS,
        )
        self.request_example_counts = Histogram(
            f"{serving}request_example_counts",
            "The number of tensorflow.Examples per request.",
            ["model"],
            EXAMPLE_COUNT_BUCKETS,
        )
        self.request_example_count_total = Counter(
            f"{serving}request_example_count_total",
            "The total number of tensorflow.Examples.",
            ["model"],
        )
        self.model_warmup_latency = Histogram(
            f"{serving}model_warmup_latency",
            "Distribution of wall time (in microseconds) for warming up the model.",
            ["model_path", "status"],
            REQUEST_LATENCY_BUCKETS,
        )
        self.queuing_latency = Histogram(
            f"{serving}batching_session:queuing_latency",
            "Distribution of wall time spent (in microseconds) in queuing",
            ["thread_pool_name"],
            QUEUING_LATENCY_BUCKETS,
        )
        self.wrapped_run_count = Counter(
            f"{serving}batching_session:wrapped_run_count",
            "Total count of run calls on a wrapped session",
        )
        self.input_batch_size = Histogram(
            f"{serving}batching_session:input_batch_size",
            "Tracks the batch size distribution on the inputs by model_name (if available).",
            ["model_name"],
            BATCH_SIZE_BUCKETS,
        )
        self.processed_batch_size = Histogram(
            f"{serving}batching_session:processed_batch_size",
            "Tracks the batch size distribution on processing by model_name (if available).",
            ["model_name"],
            BATCH_SIZE_BUCKETS,
        )
        self.padding_size = Histogram(
            f"{serving}batching_session:padding_size",
            "Tracks the padding size distribution on batches by model_name (if available).",
            ["model_name", "execution_batch_size"],
            BATCH_SIZE_BUCKETS,
        )
        self.load_attempt_count = Counter(
            ":tensorflow:cc:saved_model:load_attempt_count",
            "The number of times a SavedModel was successfully loaded.",
            ["model_path", "status"],
        )
        self.load_latency = Counter(
            ":tensorflow:cc:saved_model:load_latency",
            "Latency in microseconds for SavedModels that were successfully loaded.",
            ["model_path"],
        )
        self.load_failures = Counter(
            ":tfrelay:serving:load_failures",
            "Failed load attempts per model (each retry counts).",
            ["model_name"],
        )
        self.request_log_records = Counter(
            ":tfrelay:serving:request_log_records",
            "Requests written to the request log (logging_config).",
            ["model_name"],
        )
        self.request_log_dropped = Counter(
            ":tfrelay:serving:request_log_dropped",
            "Sampled requests not logged, by reason (queue_full, encode_error, write_error).",
            ["model_name", "reason"],
        )
        self.request_log_files = Counter(
            ":tfrelay:serving:request_log_files",
            "Request log files closed, by outcome (published or lost).",
            ["status"],
        )
        self.response_cache_hits = Counter(
            ":tfrelay:serving:response_cache_hits",
            "Requests answered from the response cache (--response_cache_mb).",
            ["model_name"],
        )
        self.response_cache_misses = Counter(
            ":tfrelay:serving:response_cache_misses",
            "Cacheable requests the response cache could not answer.",
            ["model_name"],
        )
        self.response_cache_evictions = Counter(
            ":tfrelay:serving:response_cache_evictions",
            "Entries evicted from the response cache to make room.",
            ["model_name"],
        )
        self._observed: list[ObservedGauge] = []
        self._families = [
            self.request_count,
            self.request_latency,
            self.runtime_latency,
            self.request_example_counts,
            self.request_example_count_total,
            self.model_warmup_latency,
            self.queuing_latency,
            self.wrapped_run_count,
            self.input_batch_size,
            self.processed_batch_size,
            self.padding_size,
            self.load_attempt_count,
            self.load_latency,
            self.load_failures,
            self.request_log_records,
            self.request_log_dropped,
            self.request_log_files,
            self.response_cache_hits,
            self.response_cache_misses,
            self.response_cache_evictions,
        ]
        self.registry.register(_Collector(lambda: [*self._families, *self._observed]))

    def observe(self, gauge: ObservedGauge) -> None:
        """Adds a metric read from a callback at scrape time (manager and storage state)."""
        self._observed.append(gauge)

    def record_request(
        self, model_name: str, api: str, entrypoint: str, status: str, seconds: float
    ) -> None:
        """Counts one request and, when it succeeded, its latency (as TF Serving does).

        Args:
          model_name: the model the request named.
          api: "predict", "classify", ... (REST) or "Predict", "Classify", ... (gRPC).
          entrypoint: "REST" or "GRPC".
          status: the canonical code name ("OK", "NOT_FOUND", ...).
          seconds: wall time of the request.
        """
        self.request_count.inc(model_name, status)
        if status == "OK":
            self.request_latency.observe(seconds * 1e6, model_name, api, entrypoint)

    def exposition(self) -> bytes:
        """The Prometheus text format, with TF Serving's names exactly (no `_total` added)."""
        lines: list[str] = []
        for metric in self.registry.collect():
            if metric.documentation:
                lines.append(f"# HELP {metric.name} {_escape_help(metric.documentation)}")
            lines.append(f"# TYPE {metric.name} {metric.type}")
            for sample in metric.samples:
                labels = ",".join(
                    f'{key}="{_escape_label(value)}"' for key, value in sample.labels.items()
                )
                rendered = f"{{{labels}}}" if labels else ""
                lines.append(f"{sample.name}{rendered} {_number(sample.value)}")
        return ("\n".join(lines) + "\n").encode()


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
