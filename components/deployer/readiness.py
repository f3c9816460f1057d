"""Waiting until a pushed version serves: AVAILABLE in the status API, and answering one of its
own warmup requests over REST."""

from __future__ import annotations

import base64
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx
import tensorflow as tf
from absl import logging
from tensorflow_serving.apis import prediction_log_pb2

from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.filesystem import filesystem_for, split_url


class VersionNotServing(RuntimeError):
    """The pushed version did not become AVAILABLE, or did not answer."""


def _json_value(values: list, kind: str) -> Any:
    if kind == "bytes_list":
        decoded = []
        for value in values:
            try:
                decoded.append(value.decode("utf-8"))
            except UnicodeDecodeError:
                decoded.append({"b64": base64.b64encode(value).decode("ascii")})
        values = decoded
    return values[0] if len(values) == 1 else values


def example_to_json(example: tf.train.Example) -> dict[str, Any]:
    """A tf.Example as the JSON object TF Serving's REST Classify/Regress APIs take."""
    result = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind is not None:
            result[name] = _json_value(list(getattr(feature, kind).value), kind)
    return result


def _tensor_json(proto) -> Any:
    array = tf.make_ndarray(proto)
    if array.dtype == object:
        return (
            [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in array.reshape(-1)]
            if array.ndim == 1
            else array.tolist()
        )
    return array.tolist()


def rest_request(log: prediction_log_pb2.PredictionLog) -> tuple[str, dict[str, Any]] | None:
    """A warmup record as (REST verb, JSON body), or None for kinds REST cannot send."""
    kind = log.WhichOneof("log_type")
    if kind == "predict_log":
        request = log.predict_log.request
        body: dict[str, Any] = {"inputs": {k: _tensor_json(v) for k, v in request.inputs.items()}}
        if request.model_spec.signature_name:
            body["signature_name"] = request.model_spec.signature_name
        return "predict", body
    if kind in ("classify_log", "regress_log"):
        request = getattr(log, kind).request
        which = request.input.WhichOneof("kind")
        if which == "example_list":
            examples = request.input.example_list.examples
            body = {"examples": [example_to_json(e) for e in examples]}
        elif which == "example_list_with_context":
            context = request.input.example_list_with_context
            body = {
                "context": example_to_json(context.context),
                "examples": [example_to_json(e) for e in context.examples],
            }
        else:
            return None
        if request.model_spec.signature_name:
            body["signature_name"] = request.model_spec.signature_name
        return kind.split("_")[0], body
    return None


def read_warmup_requests(version_url: str) -> list[prediction_log_pb2.PredictionLog]:
    """The warmup records of a version in the bucket (empty when it has none)."""
    fs = filesystem_for(version_url)
    path = split_url(version_url)[1].rstrip("/") + "/" + bucket.WARMUP_FILE
    if not fs.exists(path):
        return []
    with tempfile.NamedTemporaryFile(suffix=".tfrecord") as local:
        fs.get_file(path, local.name)
        records = tf.data.TFRecordDataset([local.name]).as_numpy_iterator()
        return [prediction_log_pb2.PredictionLog.FromString(r) for r in records]


def _last_load_error(client: httpx.Client, endpoint: str, model_name: str, version: int) -> str:
    """The load error of a version the server is still retrying (tfrelay's model listing)."""
    try:
        models = client.get(f"{endpoint}/v1/models").json().get("models", [])
    except (httpx.HTTPError, ValueError):
        return ""
    for model in models:
        if model.get("name") == model_name:
            for status in model.get("model_version_status", []):
                if status.get("version") == str(version):
                    return status.get("last_load_error", "")
    return ""


def wait_until_serving(
    endpoint: str,
    model_name: str,
    version: int,
    timeout_seconds: float,
    warmup: list[prediction_log_pb2.PredictionLog] | None = None,
    poll_seconds: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Blocks until `version` of `model_name` is AVAILABLE at `endpoint` and answers.

    Args:
      endpoint: the server's REST base URL.
      model_name: the model.
      version: the version that must serve.
      timeout_seconds: how long to wait.
      warmup: the version's warmup records; the first REST-sendable one is sent to it.
      poll_seconds: status polling interval.
      clock: monotonic clock.

    Returns:
      The answer to the warmup request (or {} when there was none).

    Raises:
      VersionNotServing: the version failed to load (with the server's error), or did not
        become AVAILABLE in time (with its last state), or did not answer.
    """
    deadline = clock() + timeout_seconds
    status_url = f"{endpoint}/v1/models/{model_name}/versions/{version}"
    last = "no answer from the server"
    logged_state = None
    with httpx.Client(timeout=10) as client:
        while True:
            try:
                response = client.get(status_url)
                if response.status_code == 200:
                    (status,) = response.json()["model_version_status"]
                    state = status["state"]
                    error = status["status"].get("error_message", "")
                    last = f"state {state}" + (f", error: {error}" if error else "")
                    if state != logged_state:
                        logging.info(
                            "ServingDeployer: %s version %d is %s", model_name, version, state
                        )
                        logged_state = state
                    if state == "AVAILABLE":
                        break
                    if state == "END":
                        raise VersionNotServing(
                            f"Version {version} of {model_name} failed to load at {endpoint}: {error or 'it was unloaded'}. "
                            "The previous version keeps serving; see the model server's log."
                        )
                else:
                    last = f"HTTP {response.status_code}: {response.text.strip()}"
            except httpx.HTTPError as err:
                last = f"{type(err).__name__}: {err}"
            if clock() >= deadline:
                retrying = _last_load_error(client, endpoint, model_name, version)
                if retrying:
                    last += (
                        f"; the server keeps retrying the load, which last failed with: {retrying}"
                    )
                raise VersionNotServing(
                    f"Version {version} of {model_name} did not become AVAILABLE at {endpoint} within "
                    f"{timeout_seconds:g}s ({last}). Check that the server polls the bucket the "
                    "pipeline pushes to, and its log."
                )
            time.sleep(poll_seconds)
        for log in warmup or []:
            request = rest_request(log)
            if request is None:
                continue
            verb, body = request
            response = client.post(f"{status_url}:{verb}", json=body)
            if response.status_code != 200:
                raise VersionNotServing(
                    f"Version {version} of {model_name} is AVAILABLE but its warmup request failed: "
                    f"HTTP {response.status_code} {response.text.strip()}"
                )
            logging.info(
                "ServingDeployer: version %d answered its warmup %s request", version, verb
            )
            return response.json()
    return {}
