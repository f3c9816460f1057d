"""The in-process ceiling: what the model itself allows, with no HTTP, JSON or scheduling.

Run by the harness as a child pinned to the server core, once per Python stack (issue 14: the
serving stack's TensorFlow 2.21 and the pipeline stack's 2.16, side by side):
  python -m benchmarks.ceiling --model-path DIR --instance JSON --seconds S [--batch 64]

It loads the SavedModel, builds the inputs once, and calls the model back to back (one instance
per call, then `--batch` instances per call, reported as predictions/s), the fastest way Python
can: the prepared session callable the peers use too (`peers/tfmodel.py`, the technique of TF
Serving and tfrelay's servable). Those are the ceiling figures (`session_one`,
`session_batch`, named as in earlier results). The same signature called through
`tf.saved_model.load(...).signatures[...]`, the eager wrapper, is recorded as `signature_one`
and `signature_batch`: a weaker baseline (half the calls/s for half_plus_two), kept to compare
with earlier results. It prints one JSON object, including the stack it ran on and the
predictions for one instance (the answer every server must give).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf
from google.protobuf.internal import api_implementation

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


def measure(path: str, instance: Any, seconds: float, batch: int) -> dict[str, Any]:
    """Times the model's calls, prepared callable first, then the eager signature.

    Args:
      path: the SavedModel version directory.
      instance: one instance of the row format.
      seconds: how long each of the four timings runs.
      batch: instances per call of the batched timings.

    Returns:
      The stack, the expected predictions and the timings (see the module docstring).
    """
    model = V1Model(path)
    one = model.tensors([instance])
    many = model.tensors([instance] * batch)
    result: dict[str, Any] = {
        "stack": stack(),
        "tensorflow": tf.__version__,
        "expected": rows(model.call(one)),
        "batch": batch,
        "session_one": _time_calls(lambda: model.call(one), seconds),
        "session_batch": _time_calls(lambda: model.call(many), seconds),
    }
    result["session_batch"]["predictions_per_s"] = round(
        result["session_batch"]["calls_per_s"] * batch, 1
    )
    loaded = tf.saved_model.load(path)
    function = loaded.signatures["serving_default"]
    _, specs = function.structured_input_signature
    eager_one = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in one.items()}
    eager_many = {k: tf.constant(v, dtype=specs[k].dtype) for k, v in many.items()}
    result["signature_one"] = _time_calls(lambda: function(**eager_one), seconds)
    result["signature_batch"] = _time_calls(lambda: function(**eager_many), seconds)
    result["signature_batch"]["predictions_per_s"] = round(
        result["signature_batch"]["calls_per_s"] * batch, 1
    )
    return result


def stack() -> dict[str, str]:
    """The Python, TensorFlow and protobuf (version and backend) this process runs on.

    Returns:
      {"python", "tensorflow", "protobuf", "protobuf_backend"}.
    """
    import google.protobuf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "protobuf": google.protobuf.__version__,
        "protobuf_backend": api_implementation.Type(),
    }


def main() -> None:
    """The command line (see the module docstring); prints the JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--instance", required=True, help="one instance, as JSON")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(measure(args.model_path, json.loads(args.instance), args.seconds, args.batch)))


if __name__ == "__main__":
    main()
