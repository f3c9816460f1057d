"""The ServingDeployer component: spec and construction-time validation."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfrelay.components.deployer import executor
from tfrelay.components.deployer import server_command as server_command_module
from tfrelay.components.deployer.artifacts import ServingEndpoint

# The keys live in keys.py (issue 15); imported by name so `component.MODEL_NAME_KEY` (and
# `component.LOCAL`, which pipelines use) keep working.
from tfrelay.components.deployer.keys import (
    BASE_PATH_KEY,
    ENDPOINT_KEY,
    ENDPOINT_URL_KEY,
    KUBERNETES,
    KUBERNETES_CONFIG_KEY,
    LOCAL,
    MODEL_NAME_KEY,
    POLL_SECONDS_KEY,
    PREFER_TFLITE_KEY,
    PUSHED_MODEL_KEY,
    SERVER_COMMAND_KEY,
    STATE_DIR_KEY,
    TARGET_KEY,
    TIMEOUT_KEY,
)
from tfrelay.components.deployer.kubernetes_manifests import KubernetesSettings
from tfrelay.serving.storage.filesystem import split_url

DEFAULT_LOCAL_ENDPOINT = "http://127.0.0.1:8501"


class ServingDeployerSpec(types.ComponentSpec):
    """ServingDeployer component spec."""

    PARAMETERS = {
        MODEL_NAME_KEY: ExecutionParameter(type=str),
        BASE_PATH_KEY: ExecutionParameter(type=str),
        TARGET_KEY: ExecutionParameter(type=str),
        ENDPOINT_URL_KEY: ExecutionParameter(type=str),
        TIMEOUT_KEY: ExecutionParameter(type=int),
        POLL_SECONDS_KEY: ExecutionParameter(type=int),
        KUBERNETES_CONFIG_KEY: ExecutionParameter(type=dict[str, Any], optional=True),
        STATE_DIR_KEY: ExecutionParameter(type=str, optional=True),
        PREFER_TFLITE_KEY: ExecutionParameter(type=int, optional=True),
        SERVER_COMMAND_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {PUSHED_MODEL_KEY: ChannelParameter(type=standard_artifacts.PushedModel)}
    OUTPUTS = {ENDPOINT_KEY: ChannelParameter(type=ServingEndpoint)}


class ServingDeployer(base_component.BaseComponent):
    """Makes sure a tfrelay model server polls the bucket, then waits until the pushed version
    is AVAILABLE and answers its own warmup request. The run is green only when it serves.

    - `local`: reuses the server answering at `endpoint`, or starts one as a detached process
      that later runs reuse (nothing needs to run beforehand in development).
    - `kubernetes`: renders a ConfigMap (TF Serving model and monitoring configs), a Deployment
      (probes on /readyz and /healthz, resources, Prometheus annotations) and a Service, and
      creates whichever does not exist yet. Existing ones are left alone: the server deployed
      once is never restarted; it picks new versions up by polling.

    When nothing was pushed (the model was not blessed), it checks the server still serves the
    version it had, and says so.

    Example:
      deployer = ServingDeployer(
          pushed_model=pusher.outputs["pushed_model"],
          model_name="penguins",
          base_path="s3://my-bucket/models/penguins",
      )
    """

    SPEC_CLASS = ServingDeployerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        pushed_model: types.BaseChannel,
        model_name: str,
        base_path: str,
        target: str = LOCAL,
        endpoint: str | None = None,
        timeout_seconds: int = 300,
        poll_seconds: int = 2,
        kubernetes_config: dict[str, Any] | None = None,
        state_dir: str | None = None,
        prefer_tflite_model: bool = False,
        server_command: str | None = None,
    ) -> None:
        """Constructs a ServingDeployer.

        Args:
          pushed_model: the BucketPusher's output.
          model_name: the model name clients use (the pusher's model name).
          base_path: the bucket path the pusher pushes to, which the server polls.
          target: "local" or "kubernetes".
          endpoint: the server's REST URL (default http://127.0.0.1:8501 locally, the Service
            URL in the cluster).
          timeout_seconds: how long the pushed version may take to become AVAILABLE.
          poll_seconds: the bucket polling interval of a server started by this deployer.
          kubernetes_config: KubernetesSettings fields (namespace, image, replicas, resources,
            credentials_secret, ...).
          state_dir: where a local server started here keeps its log (default ~/.tfrelay/servers).
          prefer_tflite_model: the server it starts (or renders) serves model.tflite when a
            version has one (an Optimizer's quantized model).
          server_command: the `tfrelay-model-server` executable the local target starts (default:
            $TFRELAY_MODEL_SERVER, else the serving environment `.venv-serving` that `make setup`
            builds, else the one beside this Python).

        Raises:
          ValueError: an unusable target, endpoint, path or Kubernetes setting.
        """
        if target not in (LOCAL, KUBERNETES):
            raise ValueError(f"target must be {LOCAL!r} or {KUBERNETES!r}, got {target!r}")
        if not model_name or not all(c.isalnum() or c in "-_." for c in model_name):
            raise ValueError(
                f"model_name must be letters, digits, '-', '_' or '.', got {model_name!r}"
            )
        if not base_path or split_url(base_path)[0] not in ("file", "s3", "gs"):
            raise ValueError(
                f"base_path must be a local path, file://, s3:// or gs:// URL, got {base_path!r}"
            )
        if target == KUBERNETES:
            if split_url(base_path)[0] == "file":
                raise ValueError(
                    "A server in the cluster cannot read this machine's disk: use an s3:// or gs:// "
                    f"base_path with target='kubernetes' (got {base_path!r})"
                )
            KubernetesSettings.from_dict(kubernetes_config)  # raises on unknown keys
            if server_command:
                raise ValueError(
                    "server_command only applies to target='local'; the cluster runs the server "
                    "image (kubernetes_config={'image': ...})"
                )
        elif kubernetes_config:
            raise ValueError("kubernetes_config only applies to target='kubernetes'")
        if target == LOCAL and server_command:
            server_command_module.resolve(server_command)  # raises if it is not an executable
        endpoint = endpoint or (DEFAULT_LOCAL_ENDPOINT if target == LOCAL else "")
        if endpoint:
            parsed = urlparse(endpoint)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ValueError(
                    f"endpoint must be an http(s) URL such as {DEFAULT_LOCAL_ENDPOINT}, got {endpoint!r}"
                )
        if timeout_seconds <= 0 or poll_seconds <= 0:
            raise ValueError("timeout_seconds and poll_seconds must be positive")
        spec = ServingDeployerSpec(
            pushed_model=pushed_model,
            model_name=model_name,
            base_path=base_path,
            target=target,
            endpoint=endpoint,
            timeout_seconds=timeout_seconds,
            poll_seconds=poll_seconds,
            kubernetes_config=kubernetes_config,
            state_dir=state_dir,
            prefer_tflite_model=int(prefer_tflite_model),
            server_command=server_command,
            serving_endpoint=types.Channel(type=ServingEndpoint),
        )
        super().__init__(spec=spec)
