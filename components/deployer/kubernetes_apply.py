"""Applying the deployer's manifests once: create what is missing, leave what exists.

The server deployed once by infra must never be restarted by a pipeline run (new versions arrive
by polling), so existing objects are never patched or replaced.
"""

from __future__ import annotations

from typing import Any

from absl import logging

_KINDS = {
    # kind: (API class name, read method, create method)
    "ConfigMap": ("CoreV1Api", "read_namespaced_config_map", "create_namespaced_config_map"),
    "Service": ("CoreV1Api", "read_namespaced_service", "create_namespaced_service"),
    "Deployment": ("AppsV1Api", "read_namespaced_deployment", "create_namespaced_deployment"),
}


def load_cluster_config() -> None:
    """In-cluster credentials (a pipeline step on Kubeflow), else the local kubeconfig."""
    from kubernetes import config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


def apply_once(manifests: list[dict[str, Any]], api_client=None) -> list[str]:
    """Creates each object that does not exist; never touches one that does.

    Args:
      manifests: objects from `render_manifests`.
      api_client: a kubernetes.client.ApiClient (default: from `load_cluster_config`).

    Returns:
      What happened to each object, e.g. "created Deployment default/tfrelay-penguins".

    Raises:
      kubernetes.client.ApiException: any API error other than "not found" on read.
    """
    from kubernetes import client

    if api_client is None:
        load_cluster_config()
        api_client = client.ApiClient()
    actions = []
    for manifest in manifests:
        kind = manifest["kind"]
        api_name, read, create = _KINDS[kind]
        api = getattr(client, api_name)(api_client)
        name = manifest["metadata"]["name"]
        namespace = manifest["metadata"]["namespace"]
        try:
            getattr(api, read)(name, namespace)
            action = f"kept {kind} {namespace}/{name} (exists; pipeline runs never restart it)"
        except client.ApiException as err:
            if err.status != 404:
                raise
            getattr(api, create)(namespace, manifest)
            action = f"created {kind} {namespace}/{name}"
        logging.info("ServingDeployer: %s", action)
        actions.append(action)
    return actions
