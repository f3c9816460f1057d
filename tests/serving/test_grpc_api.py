"""TF Serving's gRPC API, called with TF Serving's own stubs as its `tensorflow_model_server_test.py`
calls them: against the real `tfrelay-model-server` command, on our fixture half_plus_two and, when
../shared is present, on TF Serving's saved_model_half_plus_two_cpu."""

from __future__ import annotations

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, model_management_pb2

from support import grpc_clients as clients
from support.paths import TF_SERVING_TESTDATA
from support.servers import InProcessModelServer, ModelServerProcess, wait_for_version
from tfrelay.serving.config.model_config import parse_model_config_text, to_proto
from tfrelay.serving.options import ServerOptions

# The pipeline relies on this code (the Validator and the pusher run it on the pipeline stack), so
# `make test` runs these tests on both stacks (issue 14).
pytestmark = pytest.mark.both_stacks

MODEL_SOURCES = ["fixture", "tf_serving_testdata"]
# tfrelay's own HTTP/2 front end (the default) and grpc.aio must answer alike.
GRPC_FRONT_ENDS = ["tfrelay", "grpcio"]


def _half_plus_two(source: str, model_root):
    if source == "fixture":
        return model_root / "half_plus_two"
    path = TF_SERVING_TESTDATA / "saved_model_half_plus_two_cpu"
    if not path.is_dir():
        pytest.skip(f"TF Serving test models not present at {TF_SERVING_TESTDATA}")
    return path


def _half_plus_three(source: str, model_root):
    if source == "fixture":
        return model_root / "half_plus_three"
    path = TF_SERVING_TESTDATA / "saved_model_half_plus_three"
    if not path.is_dir():
        pytest.skip(f"TF Serving test models not present at {TF_SERVING_TESTDATA}")
    return path


@pytest.fixture(
    scope="module",
    params=[(source, front_end) for source in MODEL_SOURCES for front_end in GRPC_FRONT_ENDS],
    ids=lambda param: "-".join(param),
)
def server(request, model_root, tmp_path_factory):
    """tfrelay-model-server started with flags a TF Serving manifest uses (its channel-argument
    test's flags and a no-effect flag included), with each gRPC front end."""
    source, front_end = request.param
    base_path = _half_plus_two(source, model_root)
    log = tmp_path_factory.mktemp("logs") / "server.log"
    flags = [
        f"--model_base_path={base_path}",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb",
        "--enable_profiler=false",
        f"--grpc_implementation={front_end}",
    ]
    with ModelServerProcess(flags, log_path=log) as process:
        wait_for_version(process.url, "default", 123)
        yield process


@pytest.fixture(scope="module")
def stubs(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        yield clients.stubs(channel)


def _assert_spec(spec, name: str, signature: str, version: int = 123) -> None:
    assert (spec.name, spec.signature_name, spec.version.value) == (name, signature, version)


def test_get_model_status(stubs):
    _, model_service = stubs
    result = model_service.GetModelStatus(clients.status_request("default"), clients.RPC_TIMEOUT)
    assert len(result.model_version_status) == 1
    status = result.model_version_status[0]
    assert status.version == 123
    assert status.state == status.AVAILABLE
    assert status.status.error_code == 0 and status.status.error_message == ""


def test_get_model_metadata(stubs):
    prediction, _ = stubs
    result = prediction.GetModelMetadata(clients.metadata_request("default"), clients.RPC_TIMEOUT)
    assert result.model_spec.name == "default"
    assert result.model_spec.version.value == 123
    assert list(result.metadata) == ["signature_def"]
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    assert result.metadata["signature_def"].Unpack(signature_defs)
    serving_default = signature_defs.signature_def["serving_default"]
    assert serving_default.inputs["x"].dtype == types_pb2.DT_FLOAT
    assert serving_default.method_name == "tensorflow/serving/predict"
    assert {"classify_x_to_y", "regress_x_to_y"} <= set(signature_defs.signature_def)


@pytest.mark.parametrize("output_filter", [("y",), ()])
def test_predict(stubs, output_filter):
    prediction, _ = stubs
    result = prediction.Predict(
        clients.predict_request("default", [2.0], output_filter), clients.RPC_TIMEOUT
    )
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == types_pb2.DT_FLOAT
    # TF Serving's default serialization: typed fields ("AsProtoField").
    assert list(result.outputs["y"].float_val) == [3.0]
    assert not result.outputs["y"].tensor_content
    _assert_spec(result.model_spec, "default", "serving_default")


def test_predict_batch_and_specific_version(stubs):
    prediction, _ = stubs
    result = prediction.Predict(
        clients.predict_request("default", [1.0, 2.0, 5.0], version=123), clients.RPC_TIMEOUT
    )
    np.testing.assert_array_equal(tf.make_ndarray(result.outputs["y"]), [2.5, 3.0, 4.5])


def test_classify(stubs):
    prediction, _ = stubs
    result = prediction.Classify(clients.classify_request("default"), clients.RPC_TIMEOUT)
    assert len(result.result.classifications) == 1
    assert len(result.result.classifications[0].classes) == 1
    assert result.result.classifications[0].classes[0].score == 3.0
    _assert_spec(result.model_spec, "default", "classify_x_to_y")


def test_regress(stubs):
    prediction, _ = stubs
    result = prediction.Regress(clients.regress_request("default"), clients.RPC_TIMEOUT)
    assert len(result.result.regressions) == 1
    assert result.result.regressions[0].value == 3.0
    _assert_spec(result.model_spec, "default", "regress_x_to_y")


def test_multi_inference(stubs):
    prediction, _ = stubs
    request = clients.multi_inference_request("default")
    result = prediction.MultiInference(request, clients.RPC_TIMEOUT)
    assert len(result.results) == 2
    assert result.results[0].regression_result.regressions[0].value == 3.0
    assert result.results[1].classification_result.classifications[0].classes[0].score == 3.0
    for i in range(2):
        _assert_spec(
            result.results[i].model_spec, "default", request.tasks[i].model_spec.signature_name
        )


def _code_and_details(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def test_tf_serving_status_codes_and_messages(stubs):
    prediction, model_service = stubs
    cases = [
        (
            lambda: prediction.Predict(clients.predict_request("missing"), 5),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(missing)",
        ),
        (
            lambda: prediction.Predict(clients.predict_request("default", version=999), 5),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(default, 999)",
        ),
        (
            lambda: prediction.Predict(clients.predict_request("default", label="nope"), 5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label: nope",
        ),
        (
            lambda: prediction.Predict(clients.predict_request(""), 5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ModelSpec has no name specified.",
        ),
        (
            lambda: prediction.Predict(
                clients.predict_request("default", signature_name="nope"), 5
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        ),
        (
            lambda: prediction.Predict(clients.predict_request("default", output_filter=["z"]), 5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "output tensor alias not found in signature: z Outputs expected to be in the set {y}.",
        ),
        (
            lambda: prediction.Predict(
                clients.predict_request("default", output_filter=["y", "y"]), 5
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "duplicate output tensor alias: y",
        ),
        (
            lambda: prediction.Classify(clients.classify_request("default", signature="nope"), 5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "No signature was found with the name: nope",
        ),
        (
            lambda: model_service.GetModelStatus(clients.status_request("default", 7), 5),
            grpc.StatusCode.NOT_FOUND,
            "Could not find version 7 of model default",
        ),
        (
            lambda: prediction.GetModelMetadata(clients.metadata_request("default", ()), 5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "GetModelMetadataRequest must specify at least one metadata_field",
        ),
        (
            lambda: prediction.Predict(clients.predict_request("../etc/passwd"), 5),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Invalid model name '../etc/passwd'",
        ),
    ]
    for call, code, message in cases:
        actual_code, details = _code_and_details(call)
        assert actual_code == code, details
        assert message in details


def test_predict_missing_input_is_invalid_argument(stubs):
    prediction, _ = stubs
    request = clients.predict_request("default")
    request.inputs["x2"].CopyFrom(request.inputs["x"])
    code, details = _code_and_details(lambda: prediction.Predict(request, 5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("input size does not match signature: 2!=1")


def test_rest_and_grpc_answer_on_the_same_process(server, stubs):
    prediction, _ = stubs
    rest = httpx.post(f"{server.url}/v1/models/default:predict", json={"instances": [2.0]})
    grpc_answer = prediction.Predict(clients.predict_request("default"), 5)
    assert rest.json() == {"predictions": [3.0]}
    assert list(grpc_answer.outputs["y"].float_val) == [3.0]


@pytest.mark.parametrize("source", MODEL_SOURCES)
def test_reload_config_adds_half_plus_three_without_waiting_for_a_poll(
    source, model_root, tmp_path
):
    """HandleReloadConfigRequest serves exactly the new config and returns once the new model is
    AVAILABLE, even with polling off (--file_system_poll_wait_seconds=0; TF Serving #1519)."""
    two = _half_plus_two(source, model_root)
    three = _half_plus_three(source, model_root)
    config = tmp_path / "models.config"
    config.write_text(
        f"model_config_list {{ config {{ name: 'half_plus_two' base_path: '{two}' "
        "model_platform: 'tensorflow' } }"
    )
    options = ServerOptions(model_config_file=str(config), file_system_poll_wait_seconds=0)
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "half_plus_two", 123)
        port = server.server.options.port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            prediction, model_service = clients.stubs(channel)
            models = parse_model_config_text(
                "model_config_list {"
                f" config {{ name: 'half_plus_two' base_path: '{two}' model_platform: 'tensorflow' }}"
                f" config {{ name: 'half_plus_three' base_path: '{three}' "
                "model_platform: 'tensorflow' } }"
            )
            request = model_management_pb2.ReloadConfigRequest(config=to_proto(models))
            response = model_service.HandleReloadConfigRequest(request, 60)
            assert response.status.error_code == 0 and response.status.error_message == ""
            # No wait: the reload returned after the new model became AVAILABLE.
            result = prediction.Predict(clients.predict_request("half_plus_three"), 5)
            assert list(result.outputs["y"].float_val) == [4.0]
            result = prediction.Predict(clients.predict_request("half_plus_two"), 5)
            assert list(result.outputs["y"].float_val) == [3.0]

            # A label on a version that is not loaded: TF Serving rejects the whole reload.
            bad = to_proto(models)
            bad.model_config_list.config[1].version_labels["canary"] = 999
            code, details = _code_and_details(
                lambda: model_service.HandleReloadConfigRequest(
                    model_management_pb2.ReloadConfigRequest(config=bad), 30
                )
            )
            assert code == grpc.StatusCode.FAILED_PRECONDITION
            assert "Request to assign label to version 999 of model half_plus_three" in details

            # Serving exactly the new config: half_plus_two goes away.
            only_three = to_proto([m for m in models if m.name == "half_plus_three"])
            response = model_service.HandleReloadConfigRequest(
                model_management_pb2.ReloadConfigRequest(config=only_three), 60
            )
            assert response.status.error_code == 0
            code, details = _code_and_details(
                lambda: prediction.Predict(clients.predict_request("half_plus_two"), 5)
            )
            assert code == grpc.StatusCode.NOT_FOUND

            empty = model_management_pb2.ReloadConfigRequest()
            code, details = _code_and_details(
                lambda: model_service.HandleReloadConfigRequest(empty, 5)
            )
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            assert "Only ModelConfigList is currently supported" in details


def test_version_labels_and_tensor_content_serialization(model_root, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list { config { name: 'm' base_path: '%s' "
        "version_labels { key: 'stable' value: 123 } } }" % (model_root / "half_plus_two")
    )
    options = ServerOptions(
        model_config_file=str(config), enable_serialization_as_tensor_content=True
    )
    with InProcessModelServer(options) as server:
        wait_for_version(server.url, "m", 123)
        with grpc.insecure_channel(f"127.0.0.1:{server.server.options.port}") as channel:
            prediction, _ = clients.stubs(channel)
            result = prediction.Predict(clients.predict_request("m", [2.0, 4.0], label="stable"), 5)
    tensor = result.outputs["y"]
    assert tensor.tensor_content and not tensor.float_val
    np.testing.assert_array_equal(tf.make_ndarray(tensor), [3.0, 4.0])
    assert result.model_spec.version.value == 123
