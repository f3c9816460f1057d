"""Knowledge distillation: a smaller Keras core (the student) learns the trained core's (the
teacher's) predictions on the train split, and replaces it.

Pruning and clustering keep the architecture, so they shrink bytes, not compute (on the digits
CNN, pruned 80%, one example still takes 2.75 ms against 2.70); a student with a quarter of the
units and filters does about a sixteenth of the multiply-adds between two narrowed layers.

The student is either the teacher's own architecture narrowed by `width` (every Dense layer's
units and every convolution's filters, but the output layer's, which keeps one unit per class),
built with `keras.models.clone_model` and fresh weights; or what a user's `core_model_fn`-style
function builds. Either way it reads the same preprocessed vector and ends in a softmax, so the
Optimizer exports it like any optimized core: the same serving signatures, preprocessing and
warmup requests as the teacher.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from tfrelay.components.optimizer.data import TrainingData
from tfrelay.components.optimizer.settings import DISTILL, Distill
from tfrelay.components.optimizer.techniques import (
    EpochLogger,
    KerasResult,
    TechniqueError,
    check_functional,
)
from tfrelay.components.trainer.export import TabularSpec
from tfrelay.components.trainer.preprocessing import Preprocessor

# The config keys that size a layer: Dense, the recurrent layers ("units") and the convolutions
# ("filters"). Other layers (pooling, dropout, normalization) follow their input's shape.
_WIDTH_KEYS = ("units", "filters")
# Probabilities are clipped here before their logarithm stands in for missing logits
# (tf_keras's own epsilon).
_EPSILON = 1e-7


# -- the student ----------------------------------------------------------------------------------


def _width_key(layer: keras.layers.Layer) -> str | None:
    """The config key that sizes the layer ("units" or "filters"), if it has one."""
    config = layer.get_config()
    return next((k for k in _WIDTH_KEYS if isinstance(config.get(k), int)), None)


def narrow(teacher: keras.Model, width: float) -> tuple[keras.Model, dict[str, list[int]]]:
    """The teacher's architecture with `width` times its units and filters, freshly initialized.

    Args:
      teacher: a Sequential or functional tf_keras core.
      width: the share of units and filters kept, in (0, 1).

    Returns:
      (the student, {layer name: [teacher size, student size]} for every narrowed layer).

    Raises:
      TechniqueError: the teacher is subclassed (clone_model cannot rebuild it), or no layer but
        the output one (the last with units or filters) has units or filters to narrow.
    """
    check_functional(teacher, DISTILL)
    sized = [layer.name for layer in teacher.layers if _width_key(layer)]
    if len(sized) < 2:
        raise TechniqueError(
            f"distill: the teacher {teacher.name!r} has no layer with units or filters besides "
            f"its output layer {sized[-1] if sized else teacher.layers[-1].name!r}, so width "
            "cannot make it smaller; build the student yourself with "
            '{"technique": "distill", "student": "package.module:function"}.'
        )
    # The last sized layer (in the layers' topological order) gives one unit per class, whether
    # the softmax is its activation or a layer of its own after it: it keeps its size.
    output = sized[-1]
    narrowed: dict[str, list[int]] = {}

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        key = _width_key(layer)
        if key is not None and layer.name != output:
            size = max(1, round(config[key] * width))
            narrowed[layer.name] = [config[key], size]
            config[key] = size
        # A new layer from the config, never the teacher's layer itself: the student must not
        # share (and overwrite) the teacher's weights.
        return layer.__class__.from_config(config)

    try:
        student = keras.models.clone_model(teacher, clone_function=clone)
    except (ValueError, TypeError, NotImplementedError) as err:
        raise TechniqueError(
            f"distill: could not rebuild the teacher {teacher.name!r} narrowed by width "
            f"{width}: {err}. Build the student yourself with "
            '{"technique": "distill", "student": "package.module:function"}.'
        ) from err
    return student, narrowed


def _student_config(spec: TabularSpec) -> object:
    # A user's student function gets the config a Trainer's core_model_fn gets (the Optimizer
    # does not know the Trainer's training settings, so those are the defaults).
    from tfrelay.components.trainer.tabular import TabularConfig

    return TabularConfig(
        label_key=spec.label_key,
        feature_keys=[feature.name for feature in spec.features],
        task=spec.task,
    )


def build_student(
    teacher: keras.Model, settings: Distill, spec: TabularSpec
) -> tuple[keras.Model, dict]:
    """Builds the untrained student and checks it can stand in for the teacher.

    Args:
      teacher: the trained Keras core.
      settings: the distillation settings (`student` function or `width`).
      spec: the model's TabularSpec (input width, classes).

    Returns:
      (the student, details for the report).

    Raises:
      TechniqueError: the student function cannot be imported or fails, or its model does not
        read the preprocessed vector, or does not end in a softmax over the classes.
    """
    input_width = Preprocessor(spec.features, spec.stats).width
    classes = len(spec.label_vocabulary)
    if settings.student:
        from tfrelay.components.trainer.tabular import load_core_model_fn

        try:
            build = load_core_model_fn(settings.student)
            student = build(input_width, classes, _student_config(spec))
        except Exception as err:  # the user's code: report whatever it raised, with its name
            raise TechniqueError(
                f"distill: the student function {settings.student!r} failed: "
                f"{type(err).__name__}: {err}"
            ) from err
        details: dict = {"student": settings.student}
    else:
        student, narrowed = narrow(teacher, settings.student_width)
        details = {"student": f"the teacher narrowed to width {settings.student_width:g}"}
        details["narrowed_layers"] = narrowed
    if not isinstance(student, keras.Model):
        raise TechniqueError(
            f"distill: the student function {settings.student!r} returned "
            f"{type(student).__name__}, not a tf_keras model."
        )
    probe = np.zeros((2, input_width), np.float32)
    try:
        probabilities = np.asarray(student(probe, training=False))
    except (tf.errors.OpError, ValueError, TypeError) as err:
        raise TechniqueError(
            f"distill: the student {student.name!r} cannot read the preprocessed features "
            f"(a [batch, {input_width}] float vector): {str(err).strip().splitlines()[0]}"
        ) from err
    if probabilities.shape != (2, classes) or not np.allclose(probabilities.sum(axis=1), 1, 1e-3):
        raise TechniqueError(
            f"distill: the student {student.name!r} must end in a softmax over the "
            f"{classes} classes (the serving signature reads its output as probabilities); "
            f"for a [batch, {input_width}] input it gives shape {list(probabilities.shape)}"
            + (
                " that does not sum to 1"
                if probabilities.shape == (2, classes)
                else f" instead of [batch, {classes}]"
            )
            + "."
        )
    details["teacher_parameters"] = teacher.count_params()
    details["student_parameters"] = student.count_params()
    return student, details


# -- training -------------------------------------------------------------------------------------


def _logits(probabilities: tf.Tensor) -> tf.Tensor:
    """Logits of a softmax output: tf_keras keeps them on the softmax's result inside a graph
    (as its own cross-entropy uses them); otherwise log(p), which softmax maps back to p."""
    logits = getattr(probabilities, "_keras_logits", None)
    if logits is not None:
        return logits
    return tf.math.log(tf.clip_by_value(probabilities, _EPSILON, 1.0))


class _Distiller(keras.Model):
    """Trains the student on `alpha * hard + (1 - alpha) * soft` (keras.io's distillation
    recipe): the teacher runs in inference mode on every batch and is never updated."""

    def __init__(
        self, student: keras.Model, teacher: keras.Model, temperature: float, alpha: float
    ) -> None:
        super().__init__(name="distiller")
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.temperature = temperature
        self.alpha = alpha
        self._hard = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self._soft = keras.losses.KLDivergence()
        self._trackers = {
            name: keras.metrics.Mean(name)
            for name in ("loss", "hard_loss", "soft_loss", "teacher_agreement")
        }
        self._accuracy = keras.metrics.SparseCategoricalAccuracy("accuracy")

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [*self._trackers.values(), self._accuracy]

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.student(inputs, training=training)

    # Plain TensorFlow ops, no Python control flow on tensors: AutoGraph has nothing to convert.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data: tuple[tf.Tensor, tf.Tensor]) -> Mapping[str, tf.Tensor]:
        x, y = data
        teacher_logits = _logits(self.teacher(x, training=False))
        soft_targets = tf.nn.softmax(teacher_logits / self.temperature)
        with tf.GradientTape() as tape:
            student_logits = _logits(self.student(x, training=True))
            hard = self._hard(y, student_logits)
            soft = self._soft(soft_targets, tf.nn.softmax(student_logits / self.temperature))
            # Soft gradients scale as 1 / T^2; T^2 gives them the hard loss's scale.
            soft = soft * self.temperature**2
            loss = self.alpha * hard + (1 - self.alpha) * soft
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        agreement = tf.cast(
            tf.equal(tf.argmax(student_logits, 1), tf.argmax(teacher_logits, 1)), tf.float32
        )
        for name, value in (
            ("loss", loss),
            ("hard_loss", hard),
            ("soft_loss", soft),
            ("teacher_agreement", tf.reduce_mean(agreement)),
        ):
            self._trackers[name].update_state(value)
        self._accuracy.update_state(y, student_logits)
        return {metric.name: metric.result() for metric in self.metrics}


def distill(
    teacher: keras.Model, settings: Distill, train: TrainingData, spec: TabularSpec
) -> KerasResult:
    """Builds the student and trains it on the teacher's softened predictions and the labels.

    Args:
      teacher: the trained Keras core (the Optimizer's input).
      settings: the distillation settings.
      train: the train split.
      spec: the model's TabularSpec.

    Returns:
      The trained student (a plain Keras model ending in a softmax) and what was done.

    Raises:
      TechniqueError: the student cannot be built, or training it failed.
    """
    student, details = build_student(teacher, settings, spec)
    if settings.steps:
        steps_per_epoch, epochs = settings.steps, 1
    else:
        steps_per_epoch, epochs = train.batches_per_epoch(settings.batch_size), settings.epochs
    logging.info(
        "Optimizer: distilling %s (%d parameters) into %s (%d parameters): temperature %g, "
        "alpha %g, %d steps",
        teacher.name,
        details["teacher_parameters"],
        details["student"],
        details["student_parameters"],
        settings.temperature,
        settings.alpha,
        steps_per_epoch * epochs,
    )
    trainable = teacher.trainable
    distiller = _Distiller(student, teacher, settings.temperature, settings.alpha)
    distiller.compile(optimizer=keras.optimizers.Adam(settings.learning_rate))
    try:
        history = distiller.fit(
            train.dataset(settings.batch_size).repeat(),
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            verbose=0,
            callbacks=[EpochLogger(DISTILL, epochs)],
        )
    except (tf.errors.OpError, ValueError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TechniqueError(f"distill: training the student failed: {first}") from err
    finally:
        teacher.trainable = trainable
    last = {name: float(values[-1]) for name, values in history.history.items()}
    details.update(
        {
            "parameter_ratio": round(
                details["teacher_parameters"] / max(1, details["student_parameters"]), 3
            ),
            "temperature": settings.temperature,
            "alpha": settings.alpha,
            "train_steps": steps_per_epoch * epochs,
            "final_train_accuracy": round(last.get("accuracy", 0.0), 4),
            "final_teacher_agreement": round(last.get("teacher_agreement", 0.0), 4),
        }
    )
    return KerasResult(student, details)


__all__ = ["build_student", "distill", "narrow"]
