"""TF Serving warmup: replay `assets.extra/tf_serving_warmup_requests` before a version serves.

The file is a TFRecord of `tensorflow.serving.PredictionLog`; Predict, Classify, Regress and
MultiInference records are replayed (at most 1000), so the first real request after a swap does
not pay for lazy initialisation (TF Serving #385).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from tfrelay.serving import errors
from tfrelay.serving.api import classify_regress, predict
from tfrelay.serving.errors import Code, ServingError
from tfrelay.serving.servables.base import Servable
from tfrelay.serving.storage import bucket

MAX_WARMUP_RECORDS = 1000  # WarmupConsts::kMaxNumRecords


def warmup_file(version_path: str) -> str:
    return os.path.join(version_path, *bucket.WARMUP_FILE.split("/"))


def read_warmup_records(path: str) -> Iterator[prediction_log_pb2.PredictionLog]:
    """Reads a warmup file's PredictionLogs.

    Raises:
      ServingError: INVALID_ARGUMENT for more than 1000 records or an unparseable record.
    """
    for index, record in enumerate(tf.data.TFRecordDataset([path]).as_numpy_iterator()):
        if index >= MAX_WARMUP_RECORDS:
            raise errors.invalid_argument(
                f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}"
            )
        try:
            yield prediction_log_pb2.PredictionLog.FromString(record)
        except Exception as err:
            raise errors.invalid_argument(
                f"Failed to parse warmup record {index} of {path}: {err}"
            ) from err


def replay_one(servable: Servable, log: prediction_log_pb2.PredictionLog) -> None:
    """Runs one warmup record against a servable.

    Raises:
      ServingError: the request fails, or its kind cannot be replayed (UNIMPLEMENTED).
    """
    kind = log.WhichOneof("log_type")
    if kind == "predict_log":
        request = log.predict_log.request
        signature = predict.find_signature(servable, request.model_spec.signature_name)
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        predict.run_predict(servable, signature, inputs, list(request.output_filter))
    elif kind == "classify_log":
        request = log.classify_log.request
        signature = classify_regress.classification_signature(
            servable, request.model_spec.signature_name
        )
        classify_regress.run_classify(
            servable, signature, classify_regress.serialized_examples(request.input)
        )
    elif kind == "regress_log":
        request = log.regress_log.request
        signature = classify_regress.regression_signature(
            servable, request.model_spec.signature_name
        )
        classify_regress.run_regress(
            servable, signature, classify_regress.serialized_examples(request.input)
        )
    elif kind == "multi_inference_log":
        request = log.multi_inference_log.request
        examples = classify_regress.serialized_examples(request.input)
        for task in request.tasks:
            if task.method_name == "tensorflow/serving/regress":
                signature = classify_regress.regression_signature(
                    servable, task.model_spec.signature_name
                )
                classify_regress.run_regress(servable, signature, examples)
            else:
                signature = classify_regress.classification_signature(
                    servable, task.model_spec.signature_name
                )
                classify_regress.run_classify(servable, signature, examples)
    else:
        raise ServingError(Code.UNIMPLEMENTED, f"Unsupported log_type for warmup: {kind}")


def replay(servable: Servable, iterations: int = 1) -> tuple[int, float]:
    """Replays a version's warmup file, if it has one.

    Args:
      servable: a loaded servable whose `path` is its version directory.
      iterations: times each record is replayed (`--num_request_iterations_for_warmup`).

    Returns:
      (records read, seconds taken); (0, 0.0) when there is no warmup file.

    Raises:
      ServingError: a record fails, which fails the load (as in TF Serving).
    """
    path = warmup_file(servable.path)
    if not os.path.exists(path):
        return 0, 0.0
    started = time.monotonic()
    count = 0
    for log in read_warmup_records(path):
        for _ in range(max(iterations, 1)):
            replay_one(servable, log)
        count += 1
    return count, time.monotonic() - started
