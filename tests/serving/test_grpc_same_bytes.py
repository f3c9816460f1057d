"""Both gRPC servers send the same Predict bytes (issue 15, item 3): Predict always answers the
wire encoding (`grpc/wire.py`), and grpc.aio registers it with an identity serializer."""

from __future__ import annotations

import grpc
import pytest

from support import grpc_clients as clients
from support.servers import ModelServerProcess, wait_for_version

PREDICT = "/tensorflow.serving.PredictionService/Predict"


@pytest.mark.parametrize("tensor_content", [False, True])
def test_grpcio_predict_answers_the_same_bytes_as_tfrelays_server(
    model_root, tmp_path, tensor_content
):
    request = clients.predict_request("default", [1.0, 2.0, 5.0]).SerializeToString()
    answers = {}
    for front_end in ("tfrelay", "grpcio"):
        flags = [
            f"--model_base_path={model_root / 'half_plus_two'}",
            f"--grpc_implementation={front_end}",
            f"--enable_serialization_as_tensor_content={str(tensor_content).lower()}",
        ]
        with ModelServerProcess(flags, log_path=tmp_path / f"{front_end}.log") as process:
            wait_for_version(process.url, "default", 123)
            with grpc.insecure_channel(f"127.0.0.1:{process.grpc_port}") as channel:
                # No deserializer: the raw response message, as it came off the wire.
                call = channel.unary_unary(PREDICT)
                answers[front_end] = call(request, timeout=clients.RPC_TIMEOUT)
    assert answers["tfrelay"] == answers["grpcio"]
    assert len(answers["tfrelay"]) > 0
