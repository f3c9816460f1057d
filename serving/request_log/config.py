"""`logging_config` of a ModelConfig (TF Serving's config/logging_config.proto): where a model's
sampled requests are written and how many of them.

TF Serving ships no log collector of its own (`LogCollector::Create` finds none for any type in
the open-source build); tfrelay's is TFRecord files, `type: "tfrecord"`. `filename_prefix` is a
local path or a bucket URL (`s3://`, `gs://`, any fsspec URL the server reads models from): files
are `<filename_prefix>-<UTC time>-<host>-<pid>-<sequence>.tfrecord`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LOG_COLLECTOR_TYPE = "tfrecord"


class RequestLogConfigError(ValueError):
    """A logging_config that cannot be served; the message names the field and the fix."""


@dataclass(frozen=True)
class RequestLogConfig:
    """One model's request logging.

    Attributes:
      filename_prefix: where files go: a local path prefix or a bucket URL prefix.
      sampling_rate: the share of successful requests logged, in [0, 1].
    """

    filename_prefix: str
    sampling_rate: float


def from_proto(proto, where: str) -> RequestLogConfig | None:
    """Validates a LoggingConfig message and converts it.

    Args:
      proto: a `tensorflow.serving.LoggingConfig`.
      where: the model's place in the config file, for error messages.

    Returns:
      The config, or None when the sampling rate is 0 (nothing would be logged).

    Raises:
      RequestLogConfigError: an unknown collector type, an empty prefix, or a sampling rate
        outside [0, 1].
    """
    collector = proto.log_collector_config
    if collector.type != LOG_COLLECTOR_TYPE:
        raise RequestLogConfigError(
            f"{where}: logging_config.log_collector_config.type {collector.type!r} is not "
            f'supported: tfrelay writes TFRecord files, set type: "{LOG_COLLECTOR_TYPE}"'
        )
    if not collector.filename_prefix:
        raise RequestLogConfigError(
            f"{where}: logging_config.log_collector_config.filename_prefix is empty: give a "
            "local path or bucket URL prefix for the log files (e.g. s3://bucket/logs/model)"
        )
    rate = proto.sampling_config.sampling_rate
    if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise RequestLogConfigError(
            f"{where}: logging_config.sampling_config.sampling_rate is {rate}; it must be "
            "between 0 and 1 (1 logs every request)"
        )
    if rate == 0.0:
        return None
    return RequestLogConfig(collector.filename_prefix, rate)


def to_proto(config: RequestLogConfig, proto) -> None:
    """Writes the config into a `tensorflow.serving.LoggingConfig` message.

    Args:
      config: the model's request logging.
      proto: the (empty) LoggingConfig to fill.
    """
    proto.log_collector_config.type = LOG_COLLECTOR_TYPE
    proto.log_collector_config.filename_prefix = config.filename_prefix
    proto.sampling_config.sampling_rate = config.sampling_rate
