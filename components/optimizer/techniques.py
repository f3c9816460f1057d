"""The optimization techniques: pruning and weight clustering on the model's Keras core
(tensorflow-model-optimization), post-training quantization of its whole serving function
(`serving_default`, preprocessing included) with the TFLite converter.

Pruning and clustering follow TFMOT's export recipe: wrap the layers, fine-tune, then strip the
wrappers (`strip_pruning` / `strip_clustering`), so the result is a plain Keras model of the same
architecture whose weights are sparse or clustered, ready to export and to compress.

Layers are checked against TFMOT's registries before anything runs, so an unsupported layer
fails with its name, its class and what to do, rather than with a stack trace from inside TFMOT.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras as keras
from absl import logging
from tensorflow_model_optimization.python.core.clustering.keras import clustering_registry
from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry

from tfrelay.components.optimizer.data import Split, TrainingData
from tfrelay.components.optimizer.settings import (
    CLUSTER,
    CONSTANT,
    DYNAMIC,
    FLOAT16,
    INT8,
    PRUNE,
    QUANTIZE,
    Cluster,
    Prune,
    Quantize,
)

SERVING_DEFAULT = "serving_default"
# Share of the fine-tuning steps over which the polynomial schedule ramps sparsity up; the rest
# lets the remaining weights recover at the target sparsity.
_RAMP_SHARE = 0.7


class TechniqueError(RuntimeError):
    """A technique could not be applied; the message names the technique, the layer if one is to
    blame, and what to change."""


@dataclasses.dataclass
class KerasResult:
    """A technique's result on the Keras core.

    Attributes:
      core: the stripped Keras model (same architecture, optimized weights).
      details: what was done, for the report (layers, steps, achieved sparsity...).
    """

    core: keras.Model
    details: dict


# -- layers ---------------------------------------------------------------------------------------


def _prunable(layer: keras.layers.Layer) -> bool:
    return (
        isinstance(layer, tfmot.sparsity.keras.PrunableLayer)
        or hasattr(layer, "get_prunable_weights")
        or prune_registry.PruneRegistry.supports(layer)
    )


def _clusterable(layer: keras.layers.Layer) -> bool:
    return isinstance(
        layer, tfmot.clustering.keras.ClusterableLayer
    ) or clustering_registry.ClusteringRegistry.supports(layer)


_SUPPORT = {
    PRUNE: (_prunable, "tfmot.sparsity.keras.PrunableLayer (get_prunable_weights)"),
    CLUSTER: (_clusterable, "tfmot.clustering.keras.ClusterableLayer (get_clusterable_weights)"),
}


def check_functional(core: keras.Model, technique: str) -> None:
    """Checks that TFMOT (or clone_model, for distillation) can rebuild the core.

    Args:
      core: the Keras core.
      technique: the technique's name, for the message.

    Raises:
      TechniqueError: the core is a subclassed model; the message says how to build it instead.
    """
    graph_network = getattr(core, "_is_graph_network", False)
    if not isinstance(core, keras.Model) or not (
        isinstance(core, keras.Sequential) or graph_network
    ):
        raise TechniqueError(
            f"{technique}: the model's core {getattr(core, 'name', core)!r} "
            f"({type(core).__name__}) is not a Sequential or functional tf_keras model, and "
            f"TensorFlow Model Optimization can only {technique} those. Build the core with "
            "tf_keras.Sequential or the functional API (the Trainer's core_model_fn), not by "
            "subclassing keras.Model."
        )


def select_layers(core: keras.Model, technique: str, requested: Sequence[str] = ()) -> list[str]:
    """The layers a technique will wrap, checked against TFMOT's registries.

    Args:
      core: the Keras core.
      technique: "prune" or "cluster".
      requested: layer names the user chose; empty means every layer with weights.

    Returns:
      The names of the layers to wrap.

    Raises:
      TechniqueError: a named layer does not exist, a layer with weights is not supported by the
        technique (the message names it and says how to proceed), or nothing has weights.
    """
    check_functional(core, technique)
    supported, interface = _SUPPORT[technique]
    by_name = {layer.name: layer for layer in core.layers}
    with_weights = [layer.name for layer in core.layers if layer.trainable_weights]
    unknown = [name for name in requested if name not in by_name]
    if unknown:
        raise TechniqueError(
            f"{technique}: layers {unknown} are not in the model; its layers with weights are "
            f"{with_weights}."
        )
    candidates = [by_name[n] for n in requested] if requested else list(core.layers)
    candidates = [layer for layer in candidates if layer.trainable_weights]
    unsupported = [
        layer for layer in candidates if isinstance(layer, keras.Model) or not supported(layer)
    ]
    if unsupported:
        described = ", ".join(f"{layer.name!r} ({type(layer).__name__})" for layer in unsupported)
        others = [layer.name for layer in candidates if layer not in unsupported]
        raise TechniqueError(
            f"{technique} does not support layer{'s' if len(unsupported) > 1 else ''} "
            f"{described}: TensorFlow Model Optimization has no {technique} rule for "
            f"{'them' if len(unsupported) > 1 else 'it'}"
            + (
                " (a nested model: flatten it into the core)"
                if any(isinstance(layer, keras.Model) for layer in unsupported)
                else ""
            )
            + f". Either {technique} only the other layers with "
            f'{{"technique": "{technique}", "layers": {others}}}, or make the layer implement '
            f"{interface}."
        )
    if not candidates:
        raise TechniqueError(f"{technique}: the model has no layer with weights to {technique}.")
    return [layer.name for layer in candidates]


def _wrap(core: keras.Model, names: Sequence[str], wrap: Callable, technique: str) -> keras.Model:
    chosen = set(names)

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        # The wrapper takes the trained layer itself, weights and all (TFMOT's documented way of
        # optimizing some layers of a model).
        return wrap(layer) if layer.name in chosen else layer

    try:
        return keras.models.clone_model(core, clone_function=clone)
    except (ValueError, TypeError, NotImplementedError) as err:
        raise TechniqueError(
            f"{technique}: TensorFlow Model Optimization could not wrap the model's layers "
            f"{sorted(chosen)}: {err}. Restrict the technique to other layers with "
            f'"layers": [...].'
        ) from err


# -- fine-tuning ----------------------------------------------------------------------------------


class EpochLogger(keras.callbacks.Callback):
    """Logs one line per fine-tuning (or distillation) epoch, so a pipeline run shows progress."""

    def __init__(self, technique: str, epochs: int) -> None:
        super().__init__()
        self._technique = technique
        self._epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
        logging.info(
            "Optimizer: %s fine-tuning epoch %d/%d %s",
            self._technique,
            epoch + 1,
            self._epochs,
            shown,
        )


def _schedule_steps(settings: Prune | Cluster, train: TrainingData) -> tuple[int, int]:
    """(steps per epoch, epochs) of fine-tuning."""
    if settings.steps:
        return settings.steps, 1
    return train.batches_per_epoch(settings.batch_size), settings.epochs


def _fine_tune(
    model: keras.Model,
    settings: Prune | Cluster,
    train: TrainingData,
    technique: str,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> int:
    steps_per_epoch, epochs = _schedule_steps(settings, train)
    if epochs == 0:
        return 0
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    try:
        model.fit(
            train.dataset(settings.batch_size).repeat(),
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            verbose=0,
            callbacks=[*callbacks, EpochLogger(technique, epochs)],
        )
    except (tf.errors.OpError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TechniqueError(
            f"{technique}: fine-tuning the wrapped model failed: {first}. The core must accept "
            "the Trainer's preprocessed features and end in a softmax over the classes."
        ) from err
    return steps_per_epoch * epochs


def kernel_sparsity(core: keras.Model, layers: Sequence[str] | None = None) -> float:
    """The fraction of exactly-zero values in the model's weight matrices (tensors of rank >= 2,
    i.e. kernels, not biases), optionally only in the named layers."""
    zeros = total = 0
    for layer in core.layers:
        if layers is not None and layer.name not in layers:
            continue
        for weight in layer.weights:
            if len(weight.shape) >= 2:
                values = weight.numpy()
                zeros += int(np.count_nonzero(values == 0))
                total += values.size
    return zeros / total if total else 0.0


def prune(core: keras.Model, settings: Prune, train: TrainingData) -> KerasResult:
    """Prunes the core to `settings.target_sparsity` while fine-tuning, then strips the wrappers.

    Raises:
      TechniqueError: an unsupported layer or a failure inside TFMOT, with what to do.
    """
    names = select_layers(core, PRUNE, settings.layers)
    steps_per_epoch, epochs = _schedule_steps(settings, train)
    total = steps_per_epoch * epochs
    if settings.schedule == CONSTANT:
        frequency = max(1, min(100, total // 10))
        schedule = tfmot.sparsity.keras.ConstantSparsity(
            settings.target_sparsity, begin_step=0, frequency=frequency
        )
        end_step = 0
    else:
        ramp = max(1, int(total * _RAMP_SHARE))
        frequency = max(1, min(100, ramp // 10))
        # The schedule reaches its target only on a pruning step, so end on one.
        end_step = max(frequency, ramp - ramp % frequency)
        schedule = tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=settings.initial_sparsity,
            final_sparsity=settings.target_sparsity,
            begin_step=0,
            end_step=end_step,
            frequency=frequency,
        )

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)

    wrapped = _wrap(core, names, wrap, PRUNE)
    logging.info(
        "Optimizer: pruning %s to %.0f%% sparsity (%s schedule, %d fine-tuning steps)",
        names,
        settings.target_sparsity * 100,
        settings.schedule,
        total,
    )
    steps = _fine_tune(wrapped, settings, train, PRUNE, [tfmot.sparsity.keras.UpdatePruningStep()])
    try:
        stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    except (ValueError, NotImplementedError) as err:
        raise TechniqueError(f"prune: strip_pruning failed on the fine-tuned model: {err}") from err
    achieved = kernel_sparsity(stripped, names)
    if achieved < settings.target_sparsity - 0.02:
        logging.warning(
            "Optimizer: pruning reached %.1f%% sparsity, below the target %.0f%%: fine-tune for "
            "more steps (%d were run) so the schedule can complete.",
            achieved * 100,
            settings.target_sparsity * 100,
            steps,
        )
    return KerasResult(
        stripped,
        {
            "layers": names,
            "schedule": settings.schedule,
            "schedule_end_step": end_step,
            "pruning_frequency": frequency,
            "fine_tune_steps": steps,
            "achieved_sparsity": round(achieved, 4),
        },
    )


def _distinct_values(core: keras.Model, names: Sequence[str]) -> int:
    counts = [
        len(np.unique(weight.numpy()))
        for layer in core.layers
        if layer.name in names
        for weight in layer.weights
        if len(weight.shape) >= 2
    ]
    return max(counts, default=0)


def cluster(
    core: keras.Model, settings: Cluster, train: TrainingData, preserve_sparsity: bool = False
) -> KerasResult:
    """Clusters the core's weights, fine-tunes the centroids, then strips the wrappers.

    Args:
      core: the Keras core.
      settings: the clustering settings.
      train: the train split.
      preserve_sparsity: keep pruned zeros at zero (after a Prune).

    Raises:
      TechniqueError: an unsupported layer or a failure inside TFMOT, with what to do.
    """
    names = select_layers(core, CLUSTER, settings.layers)
    by_name = {layer.name: layer for layer in core.layers}
    too_small = [
        name
        for name in names
        if max(w.shape.num_elements() for w in by_name[name].trainable_weights)
        <= settings.number_of_clusters
    ]
    if too_small:
        logging.info(
            "Optimizer: not clustering %s: they have no more weights than %d clusters",
            too_small,
            settings.number_of_clusters,
        )
    names = [name for name in names if name not in too_small]
    if not names:
        raise TechniqueError(
            f"cluster: no layer has more weights than number_of_clusters "
            f"{settings.number_of_clusters}; use fewer clusters."
        )
    init = getattr(tfmot.clustering.keras.CentroidInitialization, settings.centroid_init.upper())

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        if preserve_sparsity:
            return tfmot.clustering.keras.experimental.cluster_weights(
                layer,
                number_of_clusters=settings.number_of_clusters,
                cluster_centroids_init=init,
                preserve_sparsity=True,
            )
        return tfmot.clustering.keras.cluster_weights(
            layer, number_of_clusters=settings.number_of_clusters, cluster_centroids_init=init
        )

    wrapped = _wrap(core, names, wrap, CLUSTER)
    logging.info(
        "Optimizer: clustering %s into %d clusters%s",
        names,
        settings.number_of_clusters,
        " (preserving sparsity)" if preserve_sparsity else "",
    )
    steps = _fine_tune(wrapped, settings, train, CLUSTER)
    try:
        stripped = tfmot.clustering.keras.strip_clustering(wrapped)
    except (ValueError, NotImplementedError) as err:
        raise TechniqueError(
            f"cluster: strip_clustering failed on the fine-tuned model: {err}"
        ) from err
    return KerasResult(
        stripped,
        {
            "layers": names,
            "preserve_sparsity": preserve_sparsity,
            "fine_tune_steps": steps,
            "max_distinct_values_per_kernel": _distinct_values(stripped, names),
        },
    )


# -- quantization ---------------------------------------------------------------------------------


def _converter_error(err: Exception) -> str:
    lines = [line.strip() for line in str(err).splitlines()]
    errors = [line.split("error:", 1)[1].strip() for line in lines if "error:" in line]
    unique = list(dict.fromkeys(errors or [line for line in lines if line][:3]))
    return "; ".join(unique[:3])


def _custom_ops(content: bytes) -> list[str]:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    return sorted(
        {code.customCode.decode() for code in model.operatorCodes or [] if code.customCode}
    )


def quantize(
    serving_dir: str, settings: Quantize, representative: Split | None
) -> tuple[bytes, dict]:
    """Converts a SavedModel's `serving_default` (preprocessing, core and output decoding) to a
    quantized TFLite model with the same signature: raw features in, the same output names.

    Only `serving_default` is converted. TFLite has no builtin kernel to parse tf.Examples, and
    every signature of a TFLite model carries its own copy of the weights, so a second
    (`classify`) signature would cost a full-size float copy of the model.

    Args:
      serving_dir: the SavedModel (the Trainer's export, or one rebuilt around an optimized core).
      settings: the quantization mode.
      representative: train examples for int8 calibration.

    Returns:
      (the .tflite file's bytes, details for the report).

    Raises:
      TechniqueError: the converter failed; the message carries its error, not its trace.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(
        serving_dir, signature_keys=[SERVING_DEFAULT]
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    calibration = 0
    if settings.mode == FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    elif settings.mode == INT8:
        if representative is None:
            raise TechniqueError("quantize (int8): needs representative examples to calibrate")
        samples = representative.take(slice(0, settings.representative_examples))
        calibration = len(samples)

        def representative_dataset():
            for row in range(len(samples)):
                yield SERVING_DEFAULT, {k: v[row : row + 1] for k, v in samples.raw.items()}

        converter.representative_dataset = representative_dataset
    elif settings.mode != DYNAMIC:
        raise TechniqueError(f"quantize: unknown mode {settings.mode!r}")
    logging.info(
        "Optimizer: converting serving_default to TFLite with %s quantization%s",
        settings.mode,
        f" ({calibration} calibration examples)" if calibration else "",
    )
    try:
        content = converter.convert()
    except Exception as err:
        raise TechniqueError(
            f"quantize ({settings.mode}): the TFLite converter could not convert the serving "
            f"function: {_converter_error(err)}. Ops without a builtin TFLite kernel (in the "
            "core or in a custom preprocessing) cannot be converted; replace them, or drop "
            "quantize."
        ) from err
    return content, {
        "mode": settings.mode,
        "signatures": [SERVING_DEFAULT],
        "calibration_examples": calibration,
        "custom_ops": _custom_ops(content),
    }


__all__ = [
    "EpochLogger",
    "KerasResult",
    "QUANTIZE",
    "TechniqueError",
    "check_functional",
    "cluster",
    "kernel_sparsity",
    "prune",
    "quantize",
    "select_layers",
]
