"""What a model costs and how well it does, measured the same way before and after optimizing.

- Size: bytes on disk of the model itself (a SavedModel's `saved_model.pb`, `fingerprint.pb`,
  `variables/` and `assets/`, not `assets.extra/`; or `model.tflite`), and the same bytes
  gzipped (a tar of the files at gzip level 9), which is what shows pruning and clustering:
  their zeros and repeated values only shrink a model once it is compressed.
- Latency: the `serving_default` function called in this process on raw features, the median of
  many calls, for one example and for a batch; after a few untimed warm-up calls. SavedModels
  run through `tf.saved_model.load` (TensorFlow's default thread pools), TFLite models through
  `tf.lite.Interpreter` with one thread.
- Accuracy: the share of eval examples whose predicted class is the label, and the share
  predicted as the original model predicts them (agreement).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import statistics
import tarfile
import time
from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from tfrelay.components.optimizer.data import Split

SAVED_MODEL = "saved_model"
TFLITE = "tflite"
TFLITE_FILE = "model.tflite"
# Not part of the model: warmup requests and push records.
_EXCLUDED_DIRS = ("assets.extra",)

# One interpreter thread: on a busy host, TFLite's thread pool costs more than it saves for
# models this size (TensorFlow's own pools are left at their defaults).
TFLITE_THREADS = 1
SINGLE_RUNS = 100
BATCH_RUNS = 20
BATCH_SIZE = 128
_WARMUP_CALLS = 3
_PREDICT_CHUNK = 512

Predictor = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]


@dataclasses.dataclass
class Measurement:
    """One model's figures (one row of the report).

    Attributes:
      name: e.g. "original", "prune 80%", "prune 80% -> int8".
      format: "saved_model" or "tflite".
      size_bytes: the model's bytes on disk.
      gzipped_bytes: the same, gzipped.
      weights_bytes: a SavedModel's `variables/` (the part techniques change; the graph,
        mostly preprocessing and tf.Example parsing, does not), None for TFLite.
      weights_gzipped_bytes: the same, gzipped.
      latency_single_ms: median milliseconds for one example.
      latency_batch_ms: median milliseconds for a batch of `batch_size`.
      batch_size: the batch used for `latency_batch_ms`.
      accuracy: share of eval examples classified correctly.
      agreement: share of eval examples given the original model's class (1.0 for itself).
      eval_examples: how many eval examples.
      parameters: the Keras core's parameter count.
      kernel_sparsity: share of zeros in the core's weight matrices (None for TFLite).
      details: what the technique did.
    """

    name: str
    format: str
    size_bytes: int
    gzipped_bytes: int
    latency_single_ms: float
    latency_batch_ms: float
    batch_size: int
    accuracy: float
    agreement: float
    eval_examples: int
    weights_bytes: int | None = None
    weights_gzipped_bytes: int | None = None
    parameters: int | None = None
    kernel_sparsity: float | None = None
    details: dict = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        for key in ("latency_single_ms", "latency_batch_ms"):
            data[key] = round(data[key], 4)
        for key in ("accuracy", "agreement", "kernel_sparsity"):
            if data[key] is not None:
                data[key] = round(data[key], 6)
        return data


# -- size -----------------------------------------------------------------------------------------


def model_files(path: str) -> list[str]:
    """The files that make up the model at `path` (a SavedModel directory or a .tflite file), as
    paths relative to it (a file: its own name)."""
    if os.path.isfile(path):
        return [os.path.basename(path)]
    found = []
    for directory, dirs, names in os.walk(path):
        dirs[:] = sorted(
            d
            for d in dirs
            if os.path.relpath(os.path.join(directory, d), path) not in _EXCLUDED_DIRS
        )
        for name in sorted(names):
            relative = os.path.relpath(os.path.join(directory, name), path)
            if relative != TFLITE_FILE:
                found.append(relative)
    return found


def sizes(path: str, under: str = "") -> tuple[int, int]:
    """(bytes on disk, gzipped bytes) of the model at `path`, or of its `under` subdirectory.

    A directory is tarred first (sorted names, zeroed times and owners, so equal models give
    equal sizes); a single file is gzipped as it is, as TFMOT's guides measure.
    """
    if os.path.isfile(path):
        with open(path, "rb") as f:
            content = f.read()
        return len(content), len(gzip.compress(content, compresslevel=9, mtime=0))
    root = path
    files = [f for f in model_files(root) if f.startswith(under)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for relative in files:
            info = tar.gettarinfo(os.path.join(root, relative), arcname=relative)
            info.mtime = info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(os.path.join(root, relative), "rb") as f:
                tar.addfile(info, f)
    total = sum(os.path.getsize(os.path.join(root, relative)) for relative in files)
    return total, len(gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0))


# -- predictors -----------------------------------------------------------------------------------


def saved_model_predictor(path: str) -> Predictor:
    """Calls a SavedModel's serving_default in-process."""
    loaded = tf.saved_model.load(path)
    function = loaded.signatures["serving_default"]

    def predict(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
        return {name: tensor.numpy() for name, tensor in outputs.items()}

    predict.keep_alive = loaded  # the function needs its SavedModel's variables alive
    return predict


def tflite_predictor(content: bytes) -> Predictor:
    """Calls a TFLite model's serving_default signature in-process."""
    interpreter = tf.lite.Interpreter(model_content=content, num_threads=TFLITE_THREADS)
    runner = interpreter.get_signature_runner("serving_default")

    def predict(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return runner(**inputs)

    predict.keep_alive = interpreter
    return predict


# -- measuring ------------------------------------------------------------------------------------


def _rows(split: Split, rows: slice) -> dict[str, np.ndarray]:
    return {name: values[rows] for name, values in split.raw.items()}


def latency_ms(predict: Predictor, inputs: Mapping[str, np.ndarray], runs: int) -> float:
    """Median milliseconds of `runs` calls, after a few untimed ones."""
    for _ in range(_WARMUP_CALLS):
        predict(inputs)
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        predict(inputs)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def predicted_classes(predict: Predictor, split: Split) -> np.ndarray:
    """The class id predicted for every example of the split."""
    parts = []
    for start in range(0, len(split), _PREDICT_CHUNK):
        outputs = predict(_rows(split, slice(start, start + _PREDICT_CHUNK)))
        parts.append(np.asarray(outputs["class_ids"]).reshape(-1))
    return np.concatenate(parts).astype(np.int64)


@dataclasses.dataclass
class Quality:
    """Accuracy figures of one model and its predictions (kept for agreement)."""

    accuracy: float
    agreement: float
    predictions: np.ndarray


def quality(predict: Predictor, split: Split, reference: np.ndarray | None) -> Quality:
    """Accuracy on the split, and agreement with the reference predictions (if any)."""
    predictions = predicted_classes(predict, split)
    accuracy = float(np.mean(predictions == split.y))
    agreement = 1.0 if reference is None else float(np.mean(predictions == reference))
    return Quality(accuracy, agreement, predictions)


def measure(
    name: str,
    path: str,
    split: Split,
    reference: np.ndarray | None = None,
    parameters: int | None = None,
    kernel_sparsity: float | None = None,
    details: dict | None = None,
    single_runs: int = SINGLE_RUNS,
    batch_runs: int = BATCH_RUNS,
    batch_size: int = BATCH_SIZE,
) -> tuple[Measurement, np.ndarray]:
    """Measures the model at `path` (a SavedModel directory or a .tflite file).

    Args:
      name: the row's name.
      path: the model.
      split: the eval split.
      reference: the original model's predictions, for agreement.
      parameters: the core's parameter count.
      kernel_sparsity: zeros in the core's weight matrices.
      details: what the technique did.
      single_runs: timed calls with one example.
      batch_runs: timed calls with a batch.
      batch_size: the batch (at most the split's size).

    Returns:
      (the figures, the predicted class ids).
    """
    is_tflite = os.path.isfile(path)
    if is_tflite:
        with open(path, "rb") as f:
            predict = tflite_predictor(f.read())
    else:
        predict = saved_model_predictor(path)
    size, gzipped = sizes(path)
    weights, weights_gzipped = (None, None) if is_tflite else sizes(path, "variables" + os.sep)
    batch = min(batch_size, len(split))
    single = latency_ms(predict, _rows(split, slice(0, 1)), single_runs)
    batched = latency_ms(predict, _rows(split, slice(0, batch)), batch_runs)
    result = quality(predict, split, reference)
    measurement = Measurement(
        name=name,
        format=TFLITE if is_tflite else SAVED_MODEL,
        size_bytes=size,
        gzipped_bytes=gzipped,
        latency_single_ms=single,
        latency_batch_ms=batched,
        batch_size=batch,
        accuracy=result.accuracy,
        agreement=result.agreement,
        eval_examples=len(split),
        weights_bytes=weights,
        weights_gzipped_bytes=weights_gzipped,
        parameters=parameters,
        kernel_sparsity=kernel_sparsity,
        details=dict(details or {}),
    )
    return measurement, result.predictions
