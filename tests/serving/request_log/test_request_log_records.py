"""A request log's bytes as TensorFlow and TF Serving read them: TFRecord framing checked by
TensorFlow's own reader (it verifies both checksums), PredictionLog records parsed by the protos
of tensorflow-serving-api and compared with the messages TF Serving's services build."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    input_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from tfrelay.serving.api.classify_regress import Class
from tfrelay.serving.request_log import config as log_config
from tfrelay.serving.request_log import tfrecord
from tfrelay.serving.request_log.config import RequestLogConfig, RequestLogConfigError
from tfrelay.serving.request_log.records import Kind, LoggedCall, prediction_log

CONFIG = RequestLogConfig("/tmp/unused", 0.25)


def _call(kind: Kind, **content) -> LoggedCall:
    return LoggedCall(
        CONFIG,
        kind,
        "m",
        7,
        "serving_default",
        ("serve",),
        (None, "stable"),
        1_796_000_000,
        **content,
    )


@pytest.mark.parametrize("size", [0, 1, 100, 70_000])
def test_framed_records_are_read_back_by_tensorflow(tmp_path, size):
    records = [bytes([i % 251]) * size for i in range(3)]
    path = tmp_path / "log.tfrecord"
    path.write_bytes(b"".join(tfrecord.frame(r) for r in records))
    read = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    assert read == records


def test_a_corrupted_byte_fails_tensorflows_checksum(tmp_path):
    framed = bytearray(tfrecord.frame(b"hello world"))
    framed[14] ^= 0xFF
    path = tmp_path / "log.tfrecord"
    path.write_bytes(bytes(framed))
    with pytest.raises(tf.errors.DataLossError):
        list(tf.data.TFRecordDataset(str(path)))


def test_a_rest_predict_call_logs_the_request_tf_servings_rest_handler_builds():
    inputs = {"x": np.array([[1.0], [2.0]], np.float32), "s": np.array([b"a"], dtype=object)}
    outputs = {"y": np.array([[2.5], [3.0]], np.float32)}
    log = prediction_log_pb2.PredictionLog.FromString(
        prediction_log(_call(Kind.PREDICT, inputs=inputs, outputs=outputs, output_keys=["y"]))
    )
    assert log.WhichOneof("log_type") == "predict_log"
    assert log.log_metadata.model_spec.name == "m"
    assert log.log_metadata.model_spec.version.value == 7
    assert log.log_metadata.model_spec.signature_name == "serving_default"
    assert log.log_metadata.sampling_config.sampling_rate == 0.25
    assert list(log.log_metadata.saved_model_tags) == ["serve"]
    request = log.predict_log.request
    assert request.model_spec.name == "m"
    assert request.model_spec.version_label == "stable"
    assert not request.model_spec.HasField("version")
    for key, array in inputs.items():
        np.testing.assert_array_equal(tf.make_ndarray(request.inputs[key]), array)
    response = log.predict_log.response
    assert response.model_spec.version.value == 7
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["y"]), outputs["y"])


def test_a_grpc_call_logs_its_request_as_received():
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.model_spec.version.value = 7
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0, 2.0]))  # tensor_content, as sent
    request.output_filter.append("y")
    call = _call(
        Kind.PREDICT,
        request=request,
        outputs={"y": np.array([2.5, 3.0], np.float32)},
        output_keys=["y"],
    )
    log = prediction_log_pb2.PredictionLog.FromString(prediction_log(call))
    assert log.predict_log.request == request


def test_rest_classify_and_regress_calls_log_tf_servings_request_and_response_protos():
    example = tf.train.Example()
    example.features.feature["x"].float_list.value.append(2.0)
    examples = [example.SerializeToString()] * 2
    classify = prediction_log_pb2.PredictionLog.FromString(
        prediction_log(
            _call(Kind.CLASSIFY, examples=examples, results=[[Class(b"a", 0.5)], [Class(b"", 1.0)]])
        )
    )
    expected_input = input_pb2.Input()
    expected_input.example_list.examples.extend([example, example])
    assert classify.classify_log.request.input == expected_input
    assert classify.classify_log.request.model_spec.version_label == "stable"
    expected = classification_pb2.ClassificationResponse()
    expected.model_spec.name = "m"
    expected.model_spec.version.value = 7
    expected.model_spec.signature_name = "serving_default"
    expected.result.classifications.add().classes.add(label="a", score=0.5)
    expected.result.classifications.add().classes.add(score=1.0)
    assert classify.classify_log.response == expected
    regress = prediction_log_pb2.PredictionLog.FromString(
        prediction_log(_call(Kind.REGRESS, examples=examples, results=[3.0, 3.5]))
    )
    assert isinstance(regress.regress_log.request, regression_pb2.RegressionRequest)
    assert [r.value for r in regress.regress_log.response.result.regressions] == [3.0, 3.5]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'log_collector_config { type: "file" filename_prefix: "/x" }',
            "type 'file' is not supported",
        ),
        ('log_collector_config { type: "tfrecord" }', "filename_prefix is empty"),
        (
            'log_collector_config { type: "tfrecord" filename_prefix: "/x" } '
            "sampling_config { sampling_rate: 1.5 }",
            "sampling_rate is 1.5; it must be between 0 and 1",
        ),
    ],
)
def test_an_unservable_logging_config_names_the_field_and_the_fix(text, message):
    from google.protobuf import text_format
    from tensorflow_serving.config import logging_config_pb2

    proto = text_format.Parse(text, logging_config_pb2.LoggingConfig())
    with pytest.raises(RequestLogConfigError, match=message):
        log_config.from_proto(proto, "model_config_list.config[0] (m)")


def test_a_zero_sampling_rate_logs_nothing():
    from google.protobuf import text_format
    from tensorflow_serving.config import logging_config_pb2

    proto = text_format.Parse(
        'log_collector_config { type: "tfrecord" filename_prefix: "/x" }',
        logging_config_pb2.LoggingConfig(),
    )
    assert log_config.from_proto(proto, "m") is None
