"""What a logged call holds, and its PredictionLog record (prediction_log.proto), built on the log's
writer thread rather than on the request path.

A record is the request as TF Serving's services saw it and the response they answered. gRPC
requests are logged as received; REST requests as TF Serving's REST handler turns them into
protos (the same PredictRequest, ClassificationRequest, ...), so a log's consumers (shadow
validation, warmup, offline analysis) read one format whichever front end served the traffic.
Messages are concatenated in wire format where that is cheaper than building them (a PredictLog of
a few tensors costs ~5 us this way, against ~40 us through tf.make_tensor_proto).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from tensorflow_serving.apis import logging_pb2

from tfrelay.serving.encoding import responses, wire
from tfrelay.serving.request_log.config import RequestLogConfig

# PredictionLog's fields (prediction_log.proto).
_LOG_METADATA = 1
_CLASSIFY_LOG = 2
_REGRESS_LOG = 3
_MULTI_INFERENCE_LOG = 4
_PREDICT_LOG = 6
# Every *Log message: request = 1, response = 2; every request: model_spec = 1, input = 2.
_REQUEST, _RESPONSE = 1, 2
_INPUT = 2
_EXAMPLE_LIST = 1  # Input.example_list
_EXAMPLES = 1  # ExampleList.examples


class Kind(enum.Enum):
    """The API a logged call used."""

    PREDICT = "predict"
    CLASSIFY = "classify"
    REGRESS = "regress"
    MULTI_INFERENCE = "multi_inference"


@dataclass(slots=True)
class LoggedCall:
    """One sampled, successful call, as the data plane hands it to the log.

    Attributes:
      config: the logging config that sampled it (where it goes, the sampling rate it records).
      kind: the API.
      model_name: the model.
      version: the version that answered.
      signature_name: the signature that ran ("" for MultiInference).
      saved_model_tags: the version's MetaGraph tags.
      target: (version, label) as the request addressed them (for REST's ModelSpec).
      timestamp_secs: whole seconds since the epoch when the call finished (LogMetadata's
        resolution; an int so that calls of one second share a template key).
      request: the request message as received (gRPC), or None (REST).
      inputs: Predict's decoded inputs (REST), {alias: array}.
      examples: Classify/Regress/MultiInference serialized tf.Examples (REST).
      outputs: Predict's outputs, {alias: array}.
      output_keys: the outputs Predict answered, in order.
      results: Classify's classes per example, Regress's values, or MultiInference's per task.
      tasks: MultiInference's InferenceTasks (from the request).
    """

    config: RequestLogConfig
    kind: Kind
    model_name: str
    version: int
    signature_name: str
    saved_model_tags: tuple[str, ...]
    target: tuple[int | None, str | None]
    timestamp_secs: int
    request: object | None = None
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    examples: Sequence[bytes] = ()
    outputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    output_keys: Sequence[str] = ()
    results: Sequence = ()
    tasks: Sequence = ()


def log_metadata(call: LoggedCall) -> bytes:
    """The serialized LogMetadata of a call (cached per model version, signature and second)."""
    return _metadata_bytes(
        call.model_name,
        call.version,
        call.signature_name,
        tuple(call.saved_model_tags),
        call.config.sampling_rate,
        call.timestamp_secs,
    )


# One LogMetadata per model version, signature and second: building the message cost 4 of the
# 11 us a Predict record took on the writer thread (Python 3.13, upb).
@functools.lru_cache(maxsize=256)
def _metadata_bytes(
    model_name: str,
    version: int,
    signature_name: str,
    tags: tuple[str, ...],
    sampling_rate: float,
    timestamp_secs: int,
) -> bytes:
    metadata = logging_pb2.LogMetadata()
    metadata.model_spec.name = model_name
    metadata.model_spec.version.value = version
    if signature_name:
        metadata.model_spec.signature_name = signature_name
    metadata.sampling_config.sampling_rate = sampling_rate
    metadata.saved_model_tags.extend(tags)
    if "timestamp_secs" in metadata.DESCRIPTOR.fields_by_name:  # not in serving-api 2.16
        metadata.timestamp_secs = timestamp_secs
    return metadata.SerializeToString()


def _request_spec(call: LoggedCall) -> bytes:
    version, label = call.target
    return wire.model_spec(call.model_name, version, label, call.signature_name)


def _examples_input(examples: Sequence[bytes]) -> bytes:
    listing = b"".join(wire.field(_EXAMPLES, example) for example in examples)
    return wire.field(_EXAMPLE_LIST, listing)


def _request_bytes(call: LoggedCall) -> bytes:
    if call.request is not None:
        return call.request.SerializeToString()
    if call.kind is Kind.PREDICT:
        return wire.predict_request(_request_spec(call), call.inputs)
    # REST's classify and regress requests: ModelSpec and an Input of the examples (REST has no
    # MultiInference).
    return wire.field(1, _request_spec(call)) + wire.field(_INPUT, _examples_input(call.examples))


def _response_bytes(call: LoggedCall) -> bytes:
    if call.kind is Kind.PREDICT:
        return wire.predict_response(
            call.model_name, call.version, call.signature_name, call.outputs, call.output_keys
        )
    if call.kind is Kind.CLASSIFY:
        message = responses.classification_response(
            call.model_name, call.version, call.signature_name, call.results
        )
    elif call.kind is Kind.REGRESS:
        message = responses.regression_response(
            call.model_name, call.version, call.signature_name, call.results
        )
    else:
        message = responses.multi_inference_response(call.tasks, call.version, call.results)
    return message.SerializeToString()


_LOG_FIELD = {
    Kind.PREDICT: _PREDICT_LOG,
    Kind.CLASSIFY: _CLASSIFY_LOG,
    Kind.REGRESS: _REGRESS_LOG,
    Kind.MULTI_INFERENCE: _MULTI_INFERENCE_LOG,
}


def prediction_log(call: LoggedCall) -> bytes:
    """The serialized PredictionLog of a call.

    Args:
      call: the logged call (its config's sampling rate goes into the metadata).

    Returns:
      The record's bytes (`prediction_log_pb2.PredictionLog.FromString` reads them).

    Raises:
      ServingError: INTERNAL for an output dtype TensorFlow cannot hold (not logged).
    """
    body = wire.field(_REQUEST, _request_bytes(call)) + wire.field(_RESPONSE, _response_bytes(call))
    return wire.field(_LOG_METADATA, log_metadata(call)) + wire.field(_LOG_FIELD[call.kind], body)
