"""TF Serving's own gRPC client calls (the stubs from tensorflow-serving-api), as its tests make
them."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

RPC_TIMEOUT = 20.0


def stubs(channel: grpc.Channel):
    """(PredictionServiceStub, ModelServiceStub) on a channel."""
    return (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )


def predict_request(
    model: str,
    x: Sequence[float] = (2.0,),
    output_filter: Sequence[str] = (),
    signature_name: str = "",
    version: int | None = None,
    label: str | None = None,
) -> predict_pb2.PredictRequest:
    """TF Serving's VerifyPredictRequest: `x` as a float tensor of shape [len(x)]."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(list(x), dtype=tf.float32, shape=[len(x)]))
    request.output_filter.extend(output_filter)
    return request


def _example_input(request, x: float) -> None:
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.extend([x])


def classify_request(model: str, x: float = 2.0, signature: str = "classify_x_to_y"):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    _example_input(request, x)
    return request


def regress_request(model: str, x: float = 2.0, signature: str = "regress_x_to_y"):
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    _example_input(request, x)
    return request


def multi_inference_request(model: str, x: float = 2.0):
    request = inference_pb2.MultiInferenceRequest()
    request.tasks.add().model_spec.name = model
    request.tasks[0].model_spec.signature_name = "regress_x_to_y"
    request.tasks[0].method_name = "tensorflow/serving/regress"
    request.tasks.add().model_spec.name = model
    request.tasks[1].model_spec.signature_name = "classify_x_to_y"
    request.tasks[1].method_name = "tensorflow/serving/classify"
    _example_input(request, x)
    return request


def status_request(model: str, version: int | None = None):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    return request


def metadata_request(model: str, fields: Sequence[str] = ("signature_def",)):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = model
    request.metadata_field.extend(fields)
    return request


def wait_for_grpc_version(stub, model: str, version: int, timeout: float = 60) -> None:
    """Waits until GetModelStatus reports `version` AVAILABLE."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            response = stub.GetModelStatus(status_request(model, version), timeout=5)
            if response.model_version_status[0].state == 30:  # AVAILABLE
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{model} version {version} did not become AVAILABLE over gRPC")
