"""The `kubernetes` target's objects: a ConfigMap with the model and monitoring configs, a
Deployment of the model server polling the bucket, and a Service.

The configs are TF Serving's own text protos (rendered from the server's config module), and the
server's arguments are TF Serving's flags, so the same manifests would run tensorflow_model_server.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import yaml
from google.protobuf import text_format

from tfrelay.serving.config.model_config import ModelConfig, to_proto

REST_PORT = 8501
GRPC_PORT = 8500
CONFIG_MOUNT = "/etc/tfrelay"
MODELS_CONFIG = "models.config"
MONITORING_CONFIG = "monitoring.config"
METRICS_PATH = "/monitoring/prometheus/metrics"


@dataclasses.dataclass
class KubernetesSettings:
    """How the model server runs in the cluster (the deployer's `kubernetes_config`).

    Attributes:
      namespace: where the objects go.
      name: the Deployment/Service/ConfigMap name (default tfrelay-<model>).
      image: the model server image (deploy/Dockerfile.server).
      replicas: pods behind the Service.
      cpu_request, memory_request, cpu_limit, memory_limit: container resources.
      poll_seconds: --file_system_poll_wait_seconds (each poll is one LIST per model).
      config_poll_seconds: --model_config_file_poll_wait_seconds.
      credentials_secret: a Secret whose keys become env vars (AWS_ACCESS_KEY_ID, S3_ENDPOINT,
        ...); credentials never go in the manifest itself.
      service_account: for workload identity / IRSA instead of a Secret.
    """

    namespace: str = "default"
    name: str = ""
    image: str = "tfrelay/model-server:latest"
    replicas: int = 1
    cpu_request: str = "500m"
    memory_request: str = "1Gi"
    cpu_limit: str = "2"
    memory_limit: str = "4Gi"
    poll_seconds: int = 30
    config_poll_seconds: int = 60
    credentials_secret: str = ""
    service_account: str = ""

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> KubernetesSettings:
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown kubernetes_config keys {unknown}; known: {sorted(known)}")
        return cls(**values)


def resource_name(settings: KubernetesSettings, model_name: str) -> str:
    name = settings.name or f"tfrelay-{model_name}"
    return name.lower().replace("_", "-")


def service_endpoint(settings: KubernetesSettings, model_name: str) -> str:
    """The in-cluster REST URL of the Service."""
    return f"http://{resource_name(settings, model_name)}.{settings.namespace}.svc.cluster.local:{REST_PORT}"


def render_manifests(
    model_name: str, base_path: str, settings: KubernetesSettings, prefer_tflite: bool = False
) -> list[dict[str, Any]]:
    """The ConfigMap, Deployment and Service for one model.

    Args:
      model_name: the model clients address.
      base_path: the bucket path the server polls.
      settings: cluster settings.
      prefer_tflite: serve model.tflite when a version has one.

    Returns:
      Kubernetes objects as dicts, in apply order.
    """
    name = resource_name(settings, model_name)
    labels = {"app.kubernetes.io/name": "tfrelay-model-server", "app.kubernetes.io/instance": name}
    models_config = text_format.MessageToString(
        to_proto([ModelConfig(name=model_name, base_path=base_path)])
    )
    # TF Serving's MonitoringConfig text proto (tensorflow-serving-api does not ship its module).
    monitoring = f'prometheus_config {{\n  enable: true\n  path: "{METRICS_PATH}"\n}}\n'
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": settings.namespace, "labels": labels},
        "data": {
            MODELS_CONFIG: models_config,
            MONITORING_CONFIG: monitoring,
        },
    }
    container: dict[str, Any] = {
        "name": "model-server",
        "image": settings.image,
        "args": [
            f"--port={GRPC_PORT}",
            f"--rest_api_port={REST_PORT}",
            f"--model_config_file={CONFIG_MOUNT}/{MODELS_CONFIG}",
            f"--model_config_file_poll_wait_seconds={settings.config_poll_seconds}",
            f"--file_system_poll_wait_seconds={settings.poll_seconds}",
            f"--monitoring_config_file={CONFIG_MOUNT}/{MONITORING_CONFIG}",
            *(["--prefer_tflite_model"] if prefer_tflite else []),
        ],
        "ports": [
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "http", "containerPort": REST_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "http"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "resources": {
            "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
            "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit},
        },
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True}],
    }
    if settings.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": settings.credentials_secret}}]
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": [{"name": "config", "configMap": {"name": name}}],
    }
    if settings.service_account:
        pod_spec["serviceAccountName"] = settings.service_account
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": settings.namespace, "labels": labels},
        "spec": {
            "replicas": settings.replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(REST_PORT),
                        "prometheus.io/path": METRICS_PATH,
                    },
                },
                "spec": pod_spec,
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": settings.namespace, "labels": labels},
        "spec": {
            "selector": labels,
            "ports": [
                {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "protocol": "TCP"},
                {"name": "http", "port": REST_PORT, "targetPort": "http", "protocol": "TCP"},
            ],
        },
    }
    return [config_map, deployment, service]


class _ReadableDumper(yaml.SafeDumper):
    """No anchors/aliases for shared dicts, and multi-line strings (configs) as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_string(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None
    )


_ReadableDumper.add_representer(str, _represent_string)


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    """Manifests as one multi-document YAML (for `kubectl apply -f`)."""
    return yaml.dump_all(manifests, Dumper=_ReadableDumper, sort_keys=False)
