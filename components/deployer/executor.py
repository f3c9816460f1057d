"""The ServingDeployer executor: TFX glue around the local and Kubernetes targets."""

from __future__ import annotations

import json
from typing import Any

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils

from tfrelay.components import properties
from tfrelay.components.deployer import (
    artifacts,
    keys,
    kubernetes_apply,
    kubernetes_manifests,
    local_server,
)
from tfrelay.components.deployer.readiness import read_warmup_requests, wait_until_serving
from tfrelay.components.exec_properties import decoded


class Executor(base_executor.BaseExecutor):
    """Ensures a server polls the bucket and waits until the pushed version serves."""

    def Do(
        self,
        input_dict: dict[str, list[types.Artifact]],
        output_dict: dict[str, list[types.Artifact]],
        exec_properties: dict[str, Any],
    ) -> None:
        """Deploys (or reuses) the server for the target, then waits for the pushed version.

        Args:
          input_dict: `pushed_model` (one PushedModel, pushed or not).
          output_dict: `serving_endpoint` (one ServingEndpoint), which receives the endpoint,
            the model name, the version it serves and the target.
          exec_properties: `model_name`, `base_path`, `target`, `timeout_seconds`,
            `poll_seconds`, and optionally `endpoint`, `kubernetes_config` (a JSON object),
            `state_dir`, `prefer_tflite_model` (1/0) and `server_command`.

        Raises:
          ValueError: unknown kubernetes_config keys or an unusable server_command.
          readiness.VersionNotServing: the pushed version did not serve within the timeout.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed_model = artifact_utils.get_single_instance(input_dict[keys.PUSHED_MODEL_KEY])
        model_name = exec_properties[keys.MODEL_NAME_KEY]
        base_path = exec_properties[keys.BASE_PATH_KEY]
        target = exec_properties[keys.TARGET_KEY]
        endpoint = exec_properties.get(keys.ENDPOINT_URL_KEY) or ""
        timeout = float(exec_properties[keys.TIMEOUT_KEY])
        prefer_tflite = bool(int(exec_properties.get(keys.PREFER_TFLITE_KEY) or 0))

        if target == keys.KUBERNETES:
            settings = kubernetes_manifests.KubernetesSettings.from_dict(
                decoded(exec_properties.get(keys.KUBERNETES_CONFIG_KEY))
            )
            manifests = kubernetes_manifests.render_manifests(
                model_name, base_path, settings, prefer_tflite=prefer_tflite
            )
            kubernetes_apply.apply_once(manifests)
            endpoint = endpoint or kubernetes_manifests.service_endpoint(settings, model_name)
        else:
            local_server.find_or_start(
                endpoint,
                model_name,
                base_path,
                poll_seconds=float(exec_properties[keys.POLL_SECONDS_KEY]),
                state_dir=exec_properties.get(keys.STATE_DIR_KEY) or local_server.DEFAULT_STATE_DIR,
                prefer_tflite=prefer_tflite,
                server_command=exec_properties.get(keys.SERVER_COMMAND_KEY) or None,
            )

        pushed = pushed_model.get_int_custom_property(properties.PUSHED) == 1
        if pushed:
            version = int(pushed_model.get_string_custom_property(properties.PUSHED_VERSION))
            warmup = read_warmup_requests(
                pushed_model.get_string_custom_property(properties.PUSHED_DESTINATION)
            )
            answer = wait_until_serving(endpoint, model_name, version, timeout, warmup)
            logging.info(
                "ServingDeployer: %s version %d serves at %s; it answered %s",
                model_name,
                version,
                endpoint,
                json.dumps(answer)[:300],
            )
        else:
            reason = (
                pushed_model.get_string_custom_property(properties.PUSH_REASON)
                or "the model was not pushed"
            )
            version = _serving_version(endpoint, model_name, timeout)
            logging.warning(
                "ServingDeployer: nothing new to deploy (%s); %s keeps serving version %s",
                reason,
                model_name,
                version,
            )

        endpoint_artifact = artifact_utils.get_single_instance(output_dict[keys.ENDPOINT_KEY])
        endpoint_artifact.set_string_custom_property(artifacts.ENDPOINT, endpoint)
        endpoint_artifact.set_string_custom_property(artifacts.MODEL_NAME, model_name)
        endpoint_artifact.set_int_custom_property(artifacts.SERVING_VERSION, version)
        endpoint_artifact.set_string_custom_property(artifacts.TARGET, target)


def _serving_version(endpoint: str, model_name: str, timeout: float) -> int:
    """The highest AVAILABLE version (-1 when none serves yet)."""
    import httpx

    try:
        statuses = httpx.get(f"{endpoint}/v1/models/{model_name}", timeout=min(timeout, 10)).json()
    except (httpx.HTTPError, ValueError):
        return -1
    available = [
        int(s["version"])
        for s in statuses.get("model_version_status", [])
        if s["state"] == "AVAILABLE"
    ]
    return max(available, default=-1)
