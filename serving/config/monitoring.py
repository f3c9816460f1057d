"""`--monitoring_config_file`: TF Serving's `MonitoringConfig` text proto."""

from __future__ import annotations

from dataclasses import dataclass

from tfrelay.serving.config.model_config import ConfigError
from tfrelay.serving.config.protos import MonitoringConfig
from tfrelay.serving.config.text_proto import read_text_proto

# PrometheusExporter::kPrometheusPath.
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


@dataclass(frozen=True)
class PrometheusSettings:
    """Where Prometheus text is served on the REST port.

    Attributes:
      enabled: `prometheus_config.enable`.
      path: `prometheus_config.path`, or TF Serving's default when empty.
    """

    enabled: bool = False
    path: str = DEFAULT_PROMETHEUS_PATH


def read_monitoring_config(path: str) -> PrometheusSettings:
    """Reads `--monitoring_config_file`.

    Raises:
      ConfigError: unreadable or unparseable, or a path that does not start with "/".
    """
    proto = read_text_proto(path, MonitoringConfig(), "monitoring_config_file")
    prometheus = proto.prometheus_config
    settings = PrometheusSettings(
        enabled=prometheus.enable, path=prometheus.path or DEFAULT_PROMETHEUS_PATH
    )
    if not settings.path.startswith("/"):
        raise ConfigError(
            f"--monitoring_config_file {path}: prometheus_config.path must start with '/'; "
            f"was {settings.path!r}"
        )
    return settings
