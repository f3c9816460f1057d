"""Runs a list of techniques on a model exported by tfrelay's Trainer, measures every step, and
writes the optimized model in the serving layout (no TFX types here; the executor is the glue).

```
<output_uri>/Format-Serving/           pushed and served
    saved_model.pb, variables/          the SavedModel, same signatures as the input, around
                                        the distilled student and/or the stripped
                                        (pruned/clustered) Keras core
    assets.extra/tf_serving_warmup_requests   the input model's warmup requests
    model.tflite                        when quantized: serving_default (raw features in, the
                                        same outputs), served with --prefer_tflite_model; the
                                        warmup file then keeps its Predict requests only
<output_uri>/Format-TFRelay/           core + tabular.json, so another Optimizer can read it
```

Everything is built and measured in a local scratch directory and copied to the output URIs at
the end, so artifact URIs may be remote (gs://...).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Sequence

import tensorflow as tf
import tf_keras as keras
from absl import logging
from tensorflow_serving.apis import prediction_log_pb2

from tfrelay.components.optimizer import data, distill, measure, report, techniques
from tfrelay.components.optimizer.settings import (
    Cluster,
    Distill,
    Prune,
    Quantize,
    Technique,
    describe,
    to_dict,
)
from tfrelay.components.trainer.export import (
    CLASSIFICATION,
    SERVING_DIR,
    WARMUP_FILE,
    export_model,
    load_tabular_model,
)

TFLITE_FILE = measure.TFLITE_FILE
ORIGINAL = "original"


@dataclasses.dataclass
class OptimizationResult:
    """What `optimize` produced.

    Attributes:
      report: the report's content (report.json).
      blessed: whether the accuracy drop is within bounds.
      failed_checks: why not (empty when blessed).
      metrics: the final model's headline figures, for the ModelBlessing and the push record.
    """

    report: dict
    blessed: bool
    failed_checks: list[str]
    metrics: dict


def copy_tree(source: str, destination: str) -> None:
    """Copies a directory tree between any file systems tf.io.gfile reads (local, gs://...)."""
    for directory, _, names in tf.io.gfile.walk(source):
        relative = os.path.relpath(directory, source)
        target = destination if relative == "." else os.path.join(destination, relative)
        tf.io.gfile.makedirs(target)
        for name in names:
            tf.io.gfile.copy(
                os.path.join(directory, name), os.path.join(target, name), overwrite=True
            )


def _replace_warmup(original_serving: str, serving_dir: str) -> None:
    """Gives an exported model the input model's warmup requests (the same raw features and
    tf.Examples, so every version answers the same warmup)."""
    source = os.path.join(original_serving, WARMUP_FILE)
    target = os.path.join(serving_dir, WARMUP_FILE)
    if os.path.exists(source):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(source, target)
    elif os.path.exists(target):
        os.remove(target)


def keep_tflite_warmup(serving_dir: str) -> tuple[int, int]:
    """Keeps only the warmup requests a TFLite model answers: Predict on serving_default.

    The version's SavedModel and model.tflite share one warmup file, and a server that loads
    model.tflite (--prefer_tflite_model) replays every record: a Classify record would fail the
    load, since the TFLite model has no classify signature.

    Returns:
      (records kept, records dropped).
    """
    path = os.path.join(serving_dir, WARMUP_FILE)
    if not os.path.exists(path):
        return 0, 0
    kept, dropped = [], 0
    for record in tf.data.TFRecordDataset([path]).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog.FromString(record)
        if log.WhichOneof("log_type") == "predict_log" and (
            log.predict_log.request.model_spec.signature_name in ("", techniques.SERVING_DEFAULT)
        ):
            kept.append(record)
        else:
            dropped += 1
    with tf.io.TFRecordWriter(path) as writer:
        for record in kept:
            writer.write(record)
    return len(kept), dropped


def _accuracy_check(
    original: measure.Measurement,
    final: measure.Measurement,
    max_accuracy_drop: float,
    distilled: bool = False,
) -> list[str]:
    drop = original.accuracy - final.accuracy
    if drop <= max_accuracy_drop + 1e-9:
        return []
    return [
        f"accuracy dropped by {drop * 100:.2f} points ({original.accuracy:.2%} -> "
        f"{final.accuracy:.2%} on {final.eval_examples} eval examples), more than "
        f"max_accuracy_drop {max_accuracy_drop * 100:.2f} points; use a milder setting ("
        + ("a wider student, more distillation epochs, " if distilled else "")
        + "lower target_sparsity, more clusters, another quantization mode) or fine-tune longer"
    ]


def _metrics(original: measure.Measurement, final: measure.Measurement) -> dict:
    return {
        "accuracy": round(final.accuracy, 6),
        "accuracy_before": round(original.accuracy, 6),
        "accuracy_drop": round(original.accuracy - final.accuracy, 6),
        "agreement": round(final.agreement, 6),
        "gzipped_bytes": final.gzipped_bytes,
        "gzipped_bytes_before": original.gzipped_bytes,
        "size_bytes": final.size_bytes,
        "size_bytes_before": original.size_bytes,
        "latency_single_ms": round(final.latency_single_ms, 4),
        "latency_single_ms_before": round(original.latency_single_ms, 4),
        "latency_batch_ms": round(final.latency_batch_ms, 4),
        "latency_batch_ms_before": round(original.latency_batch_ms, 4),
    }


def optimize(
    model_uri: str,
    output_uri: str,
    train_files: Sequence[str],
    eval_files: Sequence[str],
    technique_list: Sequence[Technique],
    max_accuracy_drop: float,
    seed: int = 42,
    workdir: str | None = None,
) -> OptimizationResult:
    """Optimizes the model at `model_uri` and writes the result to `output_uri`.

    Args:
      model_uri: a Model artifact written by tfrelay's Trainer (Format-Serving + Format-TFRelay).
      output_uri: the optimized Model artifact's URI.
      train_files: the train split's record files (fine-tuning, int8 calibration).
      eval_files: the eval split's record files (accuracy, latency).
      technique_list: validated techniques, in order.
      max_accuracy_drop: the largest acceptable accuracy loss (0.01 = 1 point).
      seed: for reproducible fine-tuning.
      workdir: local scratch directory (default: a temporary one, removed at the end).

    Returns:
      The report, the blessing decision and the headline metrics.

    Raises:
      FileNotFoundError: the model was not exported by tfrelay's Trainer.
      ValueError: the model is not a classifier, or a split has no labelled example.
      techniques.TechniqueError: a technique failed; the message says which and why.
    """
    scratch = workdir or tempfile.mkdtemp(prefix="tfrelay-optimizer-")
    try:
        return _optimize(
            model_uri,
            output_uri,
            train_files,
            eval_files,
            list(technique_list),
            max_accuracy_drop,
            seed,
            scratch,
        )
    finally:
        if workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def _optimize(
    model_uri: str,
    output_uri: str,
    train_files: Sequence[str],
    eval_files: Sequence[str],
    technique_list: list[Technique],
    max_accuracy_drop: float,
    seed: int,
    scratch: str,
) -> OptimizationResult:
    keras.utils.set_random_seed(seed)
    core, spec = load_tabular_model(model_uri)
    if spec.task != CLASSIFICATION:
        raise ValueError(
            f"{model_uri} is a {spec.task} model: the Optimizer measures and bounds accuracy, "
            "so it optimizes classification models only."
        )
    # The input as the Trainer exported it (for its warmup requests and its size), and the
    # baseline: the same core exported the way every optimized step is, so that the figures
    # compare the techniques, not two export paths (a Trainer export may also carry optimizer
    # state, which serving never reads).
    input_serving = os.path.join(scratch, "input", SERVING_DIR)
    copy_tree(os.path.join(model_uri, SERVING_DIR), input_serving)
    input_size, input_gzipped = measure.sizes(input_serving)
    original_uri = os.path.join(scratch, ORIGINAL)
    original_serving = os.path.join(original_uri, SERVING_DIR)
    export_model(core, spec, original_uri, (), original_serving)
    _replace_warmup(input_serving, original_serving)

    eval_split = data.load_split(eval_files, spec)
    keras_steps = any(isinstance(t, (Distill, Prune, Cluster)) for t in technique_list)
    train = data.training_data(train_files, spec) if keras_steps else None
    quantize_step = next((t for t in technique_list if isinstance(t, Quantize)), None)
    representative = (
        data.load_split(train_files, spec, limit=quantize_step.representative_examples, sample=True)
        if quantize_step is not None
        else None
    )
    logging.info(
        "Optimizer: %s on %s (%d eval examples%s)",
        describe(technique_list),
        model_uri,
        len(eval_split),
        f", {train.examples} train examples" if train else "",
    )

    original, reference = measure.measure(
        ORIGINAL,
        original_serving,
        eval_split,
        parameters=core.count_params(),
        kernel_sparsity=techniques.kernel_sparsity(core),
    )
    rows = [original]
    current_core, current_uri = core, original_uri
    tflite_path = None
    done: list[Technique] = []
    for index, technique in enumerate(technique_list):
        done.append(technique)
        name = describe(done)
        if isinstance(technique, Quantize):
            tflite_model, details = techniques.quantize(
                os.path.join(current_uri, SERVING_DIR), technique, representative
            )
            tflite_path = os.path.join(scratch, TFLITE_FILE)
            with open(tflite_path, "wb") as f:
                f.write(tflite_model)
            row, _ = measure.measure(
                name,
                tflite_path,
                eval_split,
                reference,
                parameters=current_core.count_params(),
                details=details,
            )
        else:
            if isinstance(technique, Distill):
                result = distill.distill(current_core, technique, train, spec)
            elif isinstance(technique, Prune):
                result = techniques.prune(current_core, technique, train)
            else:
                after_prune = any(isinstance(t, Prune) for t in done[:-1])
                result = techniques.cluster(current_core, technique, train, after_prune)
            step_uri = os.path.join(scratch, f"step-{index}")
            serving_dir = os.path.join(step_uri, SERVING_DIR)
            export_model(result.core, spec, step_uri, (), serving_dir)
            _replace_warmup(input_serving, serving_dir)
            current_core, current_uri = result.core, step_uri
            row, _ = measure.measure(
                name,
                serving_dir,
                eval_split,
                reference,
                parameters=result.core.count_params(),
                kernel_sparsity=techniques.kernel_sparsity(result.core),
                details=result.details,
            )
        logging.info(
            "Optimizer: %s: %d bytes (%d gzipped), %.3f ms / example, %.3f ms / batch of %d, "
            "accuracy %.4f (original %.4f), agreement %.4f",
            name,
            row.size_bytes,
            row.gzipped_bytes,
            row.latency_single_ms,
            row.latency_batch_ms,
            row.batch_size,
            row.accuracy,
            original.accuracy,
            row.agreement,
        )
        rows.append(row)

    # The output: the last Keras model (or the original) in the serving layout, plus the TFLite
    # model when quantized.
    if tflite_path is not None:
        kept, dropped = keep_tflite_warmup(os.path.join(current_uri, SERVING_DIR))
        rows[-1].details["warmup_requests"] = {"kept": kept, "dropped": dropped}
    output_serving = os.path.join(output_uri, SERVING_DIR)
    if tf.io.gfile.exists(output_uri):
        tf.io.gfile.rmtree(output_uri)
    copy_tree(current_uri, output_uri)
    if tflite_path is not None:
        tf.io.gfile.copy(tflite_path, os.path.join(output_serving, TFLITE_FILE), overwrite=True)

    distilled = any(isinstance(t, Distill) for t in technique_list)
    failed = _accuracy_check(original, rows[-1], max_accuracy_drop, distilled)
    content = report.summarize(
        rows,
        [to_dict(t) for t in technique_list],
        max_accuracy_drop,
        blessed=not failed,
        failed_checks=failed,
        model_uri=model_uri,
        optimized_uri=output_uri,
        description=describe(technique_list),
    )
    content["input_model"] = {
        "size_bytes": input_size,
        "gzipped_bytes": input_gzipped,
        "note": "the input's Format-Serving as the Trainer exported it; the 'original' row is "
        "its core re-exported the way the optimized models are",
    }
    logging.info("Optimizer: results\n%s", report.table(content))
    return OptimizationResult(content, not failed, failed, _metrics(original, rows[-1]))
