"""A configured model without any version answers TF Serving's 404 (issue 13): REST status and
gRPC GetModelStatus both say "Could not find any versions of model NAME"."""

from __future__ import annotations

import grpc
import httpx
import pytest

from support.servers import InProcessModelServer, wait_until
from tfrelay.serving.options import ServerOptions


def test_model_status_without_versions_is_tf_servings_404(tmp_path):
    base = tmp_path / "empty"
    base.mkdir()
    options = ServerOptions(
        model_name="m", model_base_path=str(base), file_system_poll_wait_seconds=0.2
    )
    with InProcessModelServer(options) as server:
        wait_until(lambda: server.server.source.poll_count >= 2, 10)
        response = httpx.get(f"{server.url}/v1/models/m", timeout=5)
        assert response.status_code == 404
        assert response.json() == {"error": "Could not find any versions of model m"}

        from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

        port = server.server.options.port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = "m"
            with pytest.raises(grpc.RpcError) as raised:
                stub.GetModelStatus(request, timeout=5)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert raised.value.details() == "Could not find any versions of model m"

        # The model list still shows the configured model, with no versions.
        listed = httpx.get(f"{server.url}/v1/models", timeout=5).json()["models"]
        assert [(m["name"], m["model_version_status"]) for m in listed] == [("m", [])]
