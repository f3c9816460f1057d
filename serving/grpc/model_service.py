"""`tensorflow.serving.ModelService`: GetModelStatus and HandleReloadConfigRequest."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
)

from tfrelay.serving import errors
from tfrelay.serving.api.data_plane import DataPlane
from tfrelay.serving.config.model_config import ConfigError, ModelConfig, models_from_proto
from tfrelay.serving.core.manager import ServableManager
from tfrelay.serving.grpc.common import rpc
from tfrelay.serving.security import check_request_names

logger = logging.getLogger(__name__)

# Applies a new model list and waits (at most the timeout, None: no limit) until every newly
# added model has an AVAILABLE version; raises ServingError on failure.
ReloadFn = Callable[[Sequence[ModelConfig], float | None], None]


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    """TF Serving's ModelService.

    Args:
      manager: answers status requests.
      reload: applies a new config (ModelServer.reload_config).
      data_plane: answers status requests (shared with REST, issue 15); None: `manager` does.
    """

    def __init__(
        self, manager: ServableManager, reload: ReloadFn, data_plane: DataPlane | None = None
    ) -> None:
        self.manager = manager
        self._status = data_plane.status if data_plane is not None else manager.status
        self._reload = reload

    @rpc("GetModelStatus")
    async def GetModelStatus(self, request, context):
        if not request.HasField("model_spec"):
            raise errors.invalid_argument("Missing ModelSpec")
        spec = request.model_spec
        if spec.name:
            check_request_names(spec.name)
        # get_model_status_impl.cc ignores version_label and lists every version.
        version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
        statuses = self._status(spec.name, version)
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in statuses:
            entry = response.model_version_status.add(
                version=status.version, state=int(status.state)
            )
            entry.status.error_code = int(status.error_code)
            entry.status.error_message = status.error_message
        return response

    @rpc("HandleReloadConfigRequest")
    async def HandleReloadConfigRequest(self, request, context):
        config = request.config
        if config.WhichOneof("config") != "model_config_list":
            raise errors.invalid_argument(
                "ServerModelConfig type not supported by HandleReloadConfigRequest. Only "
                "ModelConfigList is currently supported"
            )
        try:
            models = models_from_proto(config)
        except ConfigError as err:
            raise errors.invalid_argument(str(err)) from err
        for model in models:
            logger.info("Reload config entry: %s at %s", model.name, model.base_path)
        remaining = context.time_remaining()
        # Loads run on the manager's threads; waiting for them must not hold the event loop.
        await asyncio.to_thread(self._reload, models, remaining)
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        return response
