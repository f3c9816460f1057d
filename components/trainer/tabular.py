"""The built-in tabular model: a TFX `run_fn` that trains a Keras MLP (or a user-supplied core)
on raw tf.Example features and exports it serving-ready.

Its settings arrive in `fn_args.custom_config[TABULAR_CONFIG_KEY]` (the Trainer component puts
its parameters there), so it is also usable as `run_fn` of TFX's own Trainer.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Mapping

import tensorflow as tf
import tf_keras as keras
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs

from tfrelay.components.trainer import export, features
from tfrelay.components.trainer.features import Feature, Kind
from tfrelay.components.trainer.preprocessing import Preprocessor, compute_stats, label_vocabulary

TABULAR_CONFIG_KEY = "tfrelay_tabular"

# Builds the trainable core: (input width, number of outputs, config) -> uncompiled Keras model.
CoreModelFn = Callable[[int, int, "TabularConfig"], keras.Model]


@dataclasses.dataclass
class TabularConfig:
    """Settings of the built-in tabular model (the Trainer component's parameters)."""

    label_key: str
    feature_keys: list[str] = dataclasses.field(default_factory=list)
    task: str = export.CLASSIFICATION
    hidden_units: list[int] = dataclasses.field(default_factory=lambda: [16, 8])
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 0.01
    warmup_examples: int = 4
    core_model_fn: str = ""
    seed: int = 42

    @classmethod
    def from_custom_config(cls, custom_config: Mapping | None) -> TabularConfig:
        data = dict((custom_config or {}).get(TABULAR_CONFIG_KEY) or {})
        if not data.get("label_key"):
            raise ValueError(f"custom_config[{TABULAR_CONFIG_KEY!r}] needs a label_key")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def build_mlp(input_width: int, num_outputs: int, config: TabularConfig) -> keras.Model:
    """The default core: Dense+ReLU hidden layers, softmax (classification) or linear output."""
    inputs = keras.Input(shape=(input_width,), name="features")
    x = inputs
    for index, units in enumerate(config.hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{index}")(x)
    activation = "softmax" if config.task == export.CLASSIFICATION else None
    outputs = keras.layers.Dense(num_outputs, activation=activation, name="output")(x)
    return keras.Model(inputs, outputs, name="tabular_core")


def load_core_model_fn(path: str) -> CoreModelFn:
    """Imports `package.module:function` (or `package.module.function`).

    Raises:
      ValueError: the path does not name an importable function.
    """
    module_name, _, function_name = path.replace(":", ".").rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(
            f"core_model_fn {path!r} is not an importable function (use 'package.module:function'): {err}"
        ) from err


class _EpochLogger(keras.callbacks.Callback):
    """Logs one line per epoch, so a pipeline run shows training progress."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self._epochs = epochs

    def on_epoch_end(self, epoch: int, logs: Mapping | None = None) -> None:
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()))
        logging.info("Trainer: epoch %d/%d %s", epoch + 1, self._epochs, shown)


def _label_feature(kinds: Mapping[str, Kind], label_key: str) -> Feature:
    return Feature(label_key, kinds[label_key])


def run_fn(fn_args: FnArgs) -> None:
    """Trains the tabular model described by `fn_args.custom_config` and exports it.

    Args:
      fn_args: TFX's trainer arguments (files, schema, output dirs, custom_config).

    Raises:
      ValueError: the config names features or a label the examples do not have.
    """
    config = TabularConfig.from_custom_config(fn_args.custom_config)
    tf.keras.utils.set_random_seed(config.seed)
    train_files = features.examples_files(fn_args.train_files)
    eval_files = features.examples_files(fn_args.eval_files)
    if fn_args.schema_path:
        kinds = features.kinds_from_schema(fn_args.schema_path)
    else:
        kinds = features.kinds_from_data(train_files)
    inputs = features.select_features(kinds, config.label_key, config.feature_keys)
    label = _label_feature(kinds, config.label_key)
    if config.task == export.REGRESSION and label.kind is not Kind.NUMERIC:
        raise ValueError(f"task 'regression' needs a numeric label; {label.name!r} holds strings")
    stored = features.stored_dtypes(train_files, [f.name for f in [*inputs, label]])

    def parse(serialized: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        parsed = features.parse_examples(serialized, [*inputs, label], stored)
        target = parsed.pop(label.name)
        return parsed, target

    def labelled(dataset: tf.data.Dataset) -> tf.data.Dataset:
        # Examples without a label cannot teach anything: drop them.
        dataset = dataset.map(parse).unbatch()
        if label.kind is Kind.NUMERIC:
            dataset = dataset.filter(lambda _, y: tf.logical_not(tf.math.is_nan(y)))
        else:
            dataset = dataset.filter(lambda _, y: tf.not_equal(y, ""))
        return dataset

    stats = compute_stats(
        (batch for batch, _ in features.batched_examples(train_files, 256).map(parse)), inputs
    )
    vocabulary: list[str] = []
    if config.task == export.CLASSIFICATION:
        labels = [
            y for _, y in labelled(features.batched_examples(train_files, 256)).as_numpy_iterator()
        ]
        vocabulary = label_vocabulary(labels)
        logging.info("Trainer: %d classes: %s", len(vocabulary), ", ".join(vocabulary))
    spec = export.TabularSpec(
        features=inputs,
        stored_dtypes={name: dtype.name for name, dtype in stored.items() if name != label.name},
        stats=stats,
        task=config.task,
        label_key=config.label_key,
        label_vocabulary=vocabulary,
    )
    preprocessor = Preprocessor(inputs, stats)
    classes = tf.constant(vocabulary or [""], tf.string)

    def to_training(raw: dict[str, tf.Tensor], target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = preprocessor(raw)
        if config.task == export.REGRESSION:
            return x, tf.cast(target, tf.float32)
        if label.kind is Kind.NUMERIC:
            target = tf.strings.as_string(tf.cast(target, tf.int64))
        return x, tf.argmax(tf.cast(tf.equal(target[:, None], classes[None, :]), tf.int32), axis=1)

    def training_data(files: list[str], shuffle: bool) -> tf.data.Dataset:
        dataset = labelled(features.batched_examples(files, config.batch_size, shuffle=shuffle))
        return dataset.batch(config.batch_size).map(to_training).prefetch(tf.data.AUTOTUNE)

    train_data = training_data(train_files, shuffle=True)
    eval_data = training_data(eval_files, shuffle=False)
    if fn_args.train_steps:
        train_data = train_data.repeat().take(fn_args.train_steps)

    num_outputs = len(vocabulary) if config.task == export.CLASSIFICATION else 1
    build = load_core_model_fn(config.core_model_fn) if config.core_model_fn else build_mlp
    core = build(preprocessor.width, num_outputs, config)
    if config.task == export.CLASSIFICATION:
        loss, metrics = keras.losses.SparseCategoricalCrossentropy(), ["accuracy"]
    else:
        loss, metrics = keras.losses.MeanSquaredError(), ["mae"]
    core.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss=loss, metrics=metrics)
    logging.info(
        "Trainer: %d features -> %d inputs, %s, %d epochs",
        len(inputs),
        preprocessor.width,
        config.task,
        config.epochs,
    )
    core.fit(
        train_data,
        validation_data=eval_data,
        epochs=config.epochs,
        verbose=0,
        callbacks=[
            _EpochLogger(config.epochs),
            keras.callbacks.TensorBoard(log_dir=fn_args.model_run_dir),
        ],
    )
    warmup = [
        record.numpy()
        for record in features.batched_examples(eval_files, 1)
        .unbatch()
        .take(config.warmup_examples)
    ]
    model_uri = os.path.dirname(fn_args.serving_model_dir.rstrip("/"))
    serving_dir = export.export_model(core, spec, model_uri, warmup, fn_args.serving_model_dir)
    logging.info("Trainer: exported the serving model to %s", serving_dir)


__all__ = ["TABULAR_CONFIG_KEY", "TabularConfig", "build_mlp", "run_fn"]
