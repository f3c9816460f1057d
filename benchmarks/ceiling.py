"""The in-process ceiling: what the model itself allows, with no HTTP, JSON or scheduling.

Run by the harness as a child pinned to the server core, with the project's TensorFlow:
  python -m benchmarks.ceiling --model-path DIR --instance JSON --seconds S [--batch 64]

It loads the SavedModel, builds the input tensors once, and calls the serving signature back to
back (one instance per call, then `--batch` instances per call, reported as predictions/s): the
way the issue's table states the ceiling. It also times the same graph through a TF1 session
callable (the path tfrelay's servable takes) as a second reference, and prints one JSON object,
including the predictions for one instance (the answer every server must give).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

from benchmarks.peers.tfmodel import V1Model, rows


def _time_calls(call: Callable[[], object], seconds: float) -> dict[str, float]:
    """Calls `call` back to back for `seconds` (after a short warm-up): calls/s and latency."""
    warm_until = time.perf_counter() + min(1.0, seconds / 4)
    while time.perf_counter() < warm_until:
        call()
    durations = []
    start = time.perf_counter()
    end = start + seconds
    now = start
    while now < end:
        call()
        after = time.perf_counter()
        durations.append(after - now)
        now = after
    elapsed = now - start
    return {
        "calls": len(durations),
        "calls_per_s": round(len(durations) / elapsed, 1),
        "mean_us": round(statistics.fmean(durations) * 1e6, 1),
        "p50_us": round(statistics.median(durations) * 1e6, 1),
    }


def _session_callable(path: str, model: V1Model, instances: list[Any]) -> Callable[[], object]:
    """The serving signature as a TF1 session callable over numpy feeds (tfrelay's path)."""
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    with graph.as_default():
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
    signature = meta_graph.signature_def["serving_default"]
    names = sorted(signature.inputs)
    options = config_pb2.CallableOptions(
        feed=[signature.inputs[n].name for n in names],
        fetch=[signature.outputs[n].name for n in sorted(signature.outputs)],
    )
    fn = session._make_callable_from_options(options)
    tensors = model.tensors(instances)
    feeds = [tensors[n].numpy() for n in names]
    return lambda: fn(*feeds)


def measure(path: str, instance: Any, seconds: float, batch: int) -> dict[str, Any]:
    model = V1Model(path)
    one = model.tensors([instance])
    many = model.tensors([instance] * batch)
    result: dict[str, Any] = {
        "tensorflow": tf.__version__,
        "expected": rows(model.function(**one)),
        "batch": batch,
        "signature_one": _time_calls(lambda: model.function(**one), seconds),
        "signature_batch": _time_calls(lambda: model.function(**many), seconds),
    }
    result["signature_batch"]["predictions_per_s"] = round(
        result["signature_batch"]["calls_per_s"] * batch, 1
    )
    session_one = _session_callable(path, model, [instance])
    session_many = _session_callable(path, model, [instance] * batch)
    result["session_one"] = _time_calls(session_one, seconds)
    result["session_batch"] = _time_calls(session_many, seconds)
    result["session_batch"]["predictions_per_s"] = round(
        result["session_batch"]["calls_per_s"] * batch, 1
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--instance", required=True, help="one instance, as JSON")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(measure(args.model_path, json.loads(args.instance), args.seconds, args.batch)))


if __name__ == "__main__":
    main()
