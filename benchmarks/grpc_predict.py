"""TF Serving gRPC Predict requests: built from the same instances as the REST body, framed for
h2load (gRPC's 5-byte length prefix), and sent once through the real stubs to check the answer
(h2load cannot see the gRPC status in the trailers)."""

from __future__ import annotations

import struct
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)


def input_dtypes(
    grpc_target: str, model: str, signature: str = "serving_default", timeout: float = 10.0
) -> dict[str, str]:
    """{input alias: "DT_FLOAT", ...} of a signature, from the server's gRPC GetModelMetadata.

    (It was read from the REST metadata, whose JSON printer call fails on protobuf >= 5.26, the
    serving stack's 7.36: `including_default_value_fields` is gone; issue 14.)

    Args:
      grpc_target: host:port of the gRPC port.
      model: the model name.
      signature: the signature whose inputs are wanted.
      timeout: seconds for the call.

    Returns:
      Input alias -> DataType name.

    Raises:
      grpc.RpcError: the call failed.
    """
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = model
    with grpc.insecure_channel(grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.GetModelMetadata(request, timeout=timeout)
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_defs)
    inputs = signature_defs.signature_def[signature].inputs
    return {alias: types_pb2.DataType.Name(info.dtype) for alias, info in inputs.items()}


def predict_request(
    model: str, instances: list[Any], dtypes: dict[str, str]
) -> predict_pb2.PredictRequest:
    """The PredictRequest equivalent to `{"instances": instances}` (row format)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = "serving_default"
    if isinstance(instances[0], dict):
        columns = {alias: [row[alias] for row in instances] for alias in dtypes}
    else:
        (alias,) = dtypes
        columns = {alias: instances}
    for alias, values in columns.items():
        dtype = tf.dtypes.as_dtype(types_pb2.DataType.Value(dtypes[alias]))
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(values, dtype=dtype))
    return request


def frame(request: predict_pb2.PredictRequest) -> bytes:
    """One uncompressed gRPC message: flag byte, 4-byte big-endian length, the message."""
    message = request.SerializeToString()
    return struct.pack(">BI", 0, len(message)) + message


def _jsonable(array: np.ndarray) -> list[Any]:
    if array.dtype == object:
        return [_jsonable(v) if isinstance(v, np.ndarray) else v.decode() for v in array]
    return array.tolist()


def call(target: str, request: predict_pb2.PredictRequest, timeout: float = 10.0) -> list[Any]:
    """Sends the request through the Predict stub; the answer in REST's row format."""
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=timeout)
    arrays = {name: _jsonable(tf.make_ndarray(t)) for name, t in response.outputs.items()}
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    count = len(next(iter(arrays.values())))
    return [{name: values[i] for name, values in arrays.items()} for i in range(count)]
