"""Writes `assets.extra/tf_serving_warmup_requests` files (TFRecords of PredictionLog)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    predict_pb2,
    prediction_log_pb2,
    regression_pb2,
)


def predict_log(x: Sequence[float], signature_name: str = "") -> prediction_log_pb2.PredictionLog:
    """A Predict record feeding `x` (shape [n, 1]) to the fixture half_plus_two."""
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = signature_name
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([[v] for v in x], dtype=tf.float32))
    return prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )


def regress_log(
    x: float, signature_name: str = "regress_x_to_y"
) -> prediction_log_pb2.PredictionLog:
    """A Regress record with one tf.Example {x: [x]}."""
    request = regression_pb2.RegressionRequest()
    request.model_spec.signature_name = signature_name
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.append(x)
    return prediction_log_pb2.PredictionLog(
        regress_log=prediction_log_pb2.RegressLog(request=request)
    )


def classify_log(
    x: float, signature_name: str = "classify_x_to_y"
) -> prediction_log_pb2.PredictionLog:
    """A Classify record with one tf.Example {x: [x]}."""
    request = classification_pb2.ClassificationRequest()
    request.model_spec.signature_name = signature_name
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.append(x)
    return prediction_log_pb2.PredictionLog(
        classify_log=prediction_log_pb2.ClassifyLog(request=request)
    )


def write_warmup_file(
    version_dir: str | os.PathLike, records: Sequence[prediction_log_pb2.PredictionLog]
) -> pathlib.Path:
    """Writes the records as the version's warmup file and returns its path."""
    path = pathlib.Path(version_dir) / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record.SerializeToString())
    return path
