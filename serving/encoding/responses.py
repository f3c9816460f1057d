"""Classify, Regress and MultiInference responses as TF Serving builds them, from the data plane's
results; used by the gRPC front end to answer and by the request log to record what was answered
(REST answers JSON but logs these protos, as TF Serving's REST handler does through the same
services)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tensorflow_serving.apis import classification_pb2, inference_pb2, regression_pb2

from tfrelay.serving.servables.base import CLASSIFY_METHOD


class ClassLike(Protocol):
    """One (label, score) pair (`api.classify_regress.Class`)."""

    label: bytes
    score: float


def fill_classifications(result, rows: Sequence[Sequence[ClassLike]]) -> None:
    """Fills a ClassificationResult with one Classifications per example.

    Args:
      result: the `tensorflow.serving.ClassificationResult` to fill.
      rows: the classes of each example.
    """
    for row in rows:
        classification = result.classifications.add()
        for item in row:
            classification.classes.add(
                label=item.label.decode("utf-8", "replace"), score=item.score
            )


def classification_response(
    model_name: str, version: int, signature_name: str, rows: Sequence[Sequence[ClassLike]]
) -> classification_pb2.ClassificationResponse:
    """The ClassificationResponse for a Classify call's results.

    Args:
      model_name: the model.
      version: the version that answered.
      signature_name: the signature that ran.
      rows: the classes of each example.

    Returns:
      The response message.
    """
    response = classification_pb2.ClassificationResponse()
    response.model_spec.name = model_name
    response.model_spec.version.value = version
    response.model_spec.signature_name = signature_name
    fill_classifications(response.result, rows)
    return response


def regression_response(
    model_name: str, version: int, signature_name: str, values: Sequence[float]
) -> regression_pb2.RegressionResponse:
    """The RegressionResponse for a Regress call's values.

    Args:
      model_name: the model.
      version: the version that answered.
      signature_name: the signature that ran.
      values: one value per example.

    Returns:
      The response message.
    """
    response = regression_pb2.RegressionResponse()
    response.model_spec.name = model_name
    response.model_spec.version.value = version
    response.model_spec.signature_name = signature_name
    for value in values:
        response.result.regressions.add(value=value)
    return response


def multi_inference_response(
    tasks: Sequence, version: int, results: Sequence
) -> inference_pb2.MultiInferenceResponse:
    """The MultiInferenceResponse: per task, its ModelSpec (with the version that answered) and
    its classification or regression result.

    Args:
      tasks: the request's `InferenceTask`s, in order.
      version: the version that answered.
      results: per task, classes per example (classify) or one value per example (regress).

    Returns:
      The response message.
    """
    response = inference_pb2.MultiInferenceResponse()
    for task, task_results in zip(tasks, results, strict=True):
        result = response.results.add()
        result.model_spec.CopyFrom(task.model_spec)
        result.model_spec.version.value = version
        if task.method_name == CLASSIFY_METHOD:
            fill_classifications(result.classification_result, task_results)
        else:
            for value in task_results:
                result.regression_result.regressions.add(value=value)
    return response
