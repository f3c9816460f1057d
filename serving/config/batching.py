"""`--batching_parameters_file`: TF Serving's `BatchingParameters` text proto, with the defaults
tensorflow_model_server applies to unset fields (`BasicBatchScheduler::Options`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from tfrelay.serving.config.model_config import ConfigError
from tfrelay.serving.config.protos import BatchingParameters
from tfrelay.serving.config.text_proto import read_text_proto

# The model server names the pool this when no parameters file is given (server.cc).
DEFAULT_THREAD_POOL_NAME = "model_server_batch_threads"


@dataclass(frozen=True)
class BatchingConfig:
    """Batching settings, TF Serving's defaults filled in.

    Attributes:
      max_batch_size: rows in one merged run (1000).
      batch_timeout_micros: how long the first request of a batch may wait for others (0: a batch
        runs as soon as a batch thread is free, so batches form only under load).
      max_enqueued_batches: batches a queue may hold before requests are refused (10).
      num_batch_threads: merged runs in flight at once (number of CPUs).
      thread_pool_name: label of the queuing-latency metric.
      allowed_batch_sizes: if set, each batch is padded up to the next of these sizes.
      pad_variable_length_inputs: pad dimensions after the first to the batch's largest.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = 0
    thread_pool_name: str = DEFAULT_THREAD_POOL_NAME
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self) -> None:
        if self.num_batch_threads <= 0:
            object.__setattr__(self, "num_batch_threads", os.cpu_count() or 1)
        self.validate()

    def validate(self) -> None:
        """Applies the checks TF Serving makes when it builds the batch scheduler.

        Raises:
          ConfigError: a non-positive size or thread count, or bad allowed_batch_sizes.
        """
        if self.max_batch_size <= 0:
            raise ConfigError(f"max_batch_size must be positive; was {self.max_batch_size}")
        if self.batch_timeout_micros < 0:
            raise ConfigError(
                f"batch_timeout_micros must be non-negative; was {self.batch_timeout_micros}"
            )
        if self.max_enqueued_batches <= 0:
            raise ConfigError(
                f"max_enqueued_batches must be positive; was {self.max_enqueued_batches}"
            )
        sizes = self.allowed_batch_sizes
        if sizes:
            # batching_session.cc: "allowed_batch_sizes entries must be monotonically
            # increasing" and "final entry in allowed_batch_sizes must equal max_batch_size".
            if any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)) or sizes[0] <= 0:
                raise ConfigError("allowed_batch_sizes entries must be monotonically increasing")
            if sizes[-1] != self.max_batch_size:
                raise ConfigError(
                    "final entry in allowed_batch_sizes must equal max_batch_size when "
                    "enable_large_batch_splitting is false"
                )

    @property
    def batch_timeout_seconds(self) -> float:
        return self.batch_timeout_micros / 1e6

    def padded_size(self, rows: int) -> int:
        """The batch size `rows` is padded up to (itself when no allowed sizes are set)."""
        for size in self.allowed_batch_sizes:
            if size >= rows:
                return size
        return rows


def batching_config_from_proto(proto) -> BatchingConfig:
    """Converts a BatchingParameters message, applying TF Serving's defaults to unset fields.

    Raises:
      ConfigError: the values fail TF Serving's checks.
    """
    defaults = BatchingConfig()

    def value(field: str, default):
        return getattr(proto, field).value if proto.HasField(field) else default

    return BatchingConfig(
        max_batch_size=value("max_batch_size", defaults.max_batch_size),
        batch_timeout_micros=value("batch_timeout_micros", defaults.batch_timeout_micros),
        max_enqueued_batches=value("max_enqueued_batches", defaults.max_enqueued_batches),
        num_batch_threads=value("num_batch_threads", 0),
        thread_pool_name=value("thread_pool_name", "batch_threads"),
        allowed_batch_sizes=tuple(proto.allowed_batch_sizes),
        pad_variable_length_inputs=proto.pad_variable_length_inputs,
    )


def read_batching_parameters(path: str) -> BatchingConfig:
    """Reads `--batching_parameters_file`.

    Raises:
      ConfigError: unreadable, unparseable or invalid.
    """
    proto = read_text_proto(path, BatchingParameters(), "batching_parameters_file")
    try:
        return batching_config_from_proto(proto)
    except ConfigError as err:
        raise ConfigError(f"--batching_parameters_file {path}: {err}") from err
