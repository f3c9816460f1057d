"""The Trainer component: spec and construction-time validation."""

from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.util import udf_utils
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfrelay.components.trainer import executor
from tfrelay.components.trainer.export import TASKS

# The keys live in keys.py (issue 15); imported by name so `component.MODEL_KEY` keeps working.
from tfrelay.components.trainer.keys import (
    BATCH_SIZE_KEY,
    CORE_MODEL_FN_KEY,
    CUSTOM_CONFIG_KEY,
    EPOCHS_KEY,
    EVAL_ARGS_KEY,
    EXAMPLES_KEY,
    FEATURE_KEYS_KEY,
    HIDDEN_UNITS_KEY,
    LABEL_KEY,
    LEARNING_RATE_KEY,
    MODEL_KEY,
    MODEL_RUN_KEY,
    MODULE_FILE_KEY,
    MODULE_PATH_KEY,
    RUN_FN_KEY,
    SCHEMA_KEY,
    TASK_KEY,
    TRAIN_ARGS_KEY,
    WARMUP_EXAMPLES_KEY,
)


class TrainerSpec(types.ComponentSpec):
    """Trainer component spec."""

    PARAMETERS = {
        MODULE_FILE_KEY: ExecutionParameter(type=str, optional=True),
        MODULE_PATH_KEY: ExecutionParameter(type=str, optional=True),
        RUN_FN_KEY: ExecutionParameter(type=str, optional=True),
        TRAIN_ARGS_KEY: ExecutionParameter(type=trainer_pb2.TrainArgs),
        EVAL_ARGS_KEY: ExecutionParameter(type=trainer_pb2.EvalArgs),
        CUSTOM_CONFIG_KEY: ExecutionParameter(type=dict[str, Any], optional=True),
        LABEL_KEY: ExecutionParameter(type=str, optional=True),
        FEATURE_KEYS_KEY: ExecutionParameter(type=list[str], optional=True),
        TASK_KEY: ExecutionParameter(type=str),
        HIDDEN_UNITS_KEY: ExecutionParameter(type=list[int]),
        EPOCHS_KEY: ExecutionParameter(type=int),
        BATCH_SIZE_KEY: ExecutionParameter(type=int),
        LEARNING_RATE_KEY: ExecutionParameter(type=float),
        WARMUP_EXAMPLES_KEY: ExecutionParameter(type=int),
        CORE_MODEL_FN_KEY: ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema, optional=True),
    }
    OUTPUTS = {
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        MODEL_RUN_KEY: ChannelParameter(type=standard_artifacts.ModelRun),
    }


class Trainer(base_component.BaseComponent):
    """Trains a Keras model on Examples and exports a serving-ready SavedModel.

    Without a module, the built-in tabular model is trained: numeric features are imputed and
    standardized, categorical ones one-hot encoded, all inside the exported graph, so the model
    serves raw features. The export has `serving_default` (raw named features), `classify` or
    `regress` (serialized tf.Example, for TF Serving's Classify/Regress APIs) and TF Serving
    warmup requests built from real eval examples.

    With `module_file` (or `run_fn`), the user's `run_fn(fn_args)` trains instead, exactly as
    with TFX's Trainer; `tfrelay.components.trainer.export.export_model` helps it export the
    same layout.

    Example:
      trainer = Trainer(
          examples=example_gen.outputs["examples"],
          schema=schema_gen.outputs["schema"],
          label_key="species",
          epochs=30,
      )
    """

    SPEC_CLASS = TrainerSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        schema: types.BaseChannel | None = None,
        label_key: str | None = None,
        feature_keys: list[str] | None = None,
        task: str = "classification",
        hidden_units: list[int] | None = None,
        epochs: int = 20,
        batch_size: int = 32,
        learning_rate: float = 0.01,
        warmup_examples: int = 4,
        core_model_fn: str | None = None,
        module_file: str | None = None,
        run_fn: str | None = None,
        train_args: trainer_pb2.TrainArgs | None = None,
        eval_args: trainer_pb2.EvalArgs | None = None,
        custom_config: dict[str, Any] | None = None,
    ) -> None:
        """Constructs a Trainer.

        Args:
          examples: Examples with `train` and `eval` splits (by default).
          schema: optional Schema; without one, feature types are read from the data.
          label_key: the label feature (required for the built-in model).
          feature_keys: input features; default every feature but the label.
          task: "classification" or "regression".
          hidden_units: sizes of the hidden layers of the built-in MLP.
          epochs: passes over the training split.
          batch_size: examples per training step.
          learning_rate: Adam's learning rate.
          warmup_examples: eval examples written as TF Serving warmup requests.
          core_model_fn: "package.module:function" building the trainable core from
            (input width, number of outputs, config), e.g. a CNN; default an MLP.
          module_file: a user module with `run_fn(fn_args)`, as for TFX's Trainer.
          run_fn: dotted path of a user `run_fn` (instead of module_file).
          train_args: splits and steps to train on (TFX TrainArgs).
          eval_args: splits to evaluate on (TFX EvalArgs).
          custom_config: passed to a user run_fn in `fn_args.custom_config`.

        Raises:
          ValueError: the combination of parameters cannot train a model; the message says
            which parameter to change.
        """
        if module_file and run_fn:
            raise ValueError("Pass either module_file or run_fn, not both.")
        user_code = bool(module_file or run_fn)
        if not user_code and not label_key:
            raise ValueError(
                "The built-in tabular model needs label_key (the feature to predict); or pass "
                "module_file with your own run_fn."
            )
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        hidden_units = [16, 8] if hidden_units is None else list(hidden_units)
        if any(not isinstance(u, int) or u <= 0 for u in hidden_units):
            raise ValueError(f"hidden_units must be positive integers, got {hidden_units}")
        for name, value in ((EPOCHS_KEY, epochs), (BATCH_SIZE_KEY, batch_size)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if warmup_examples < 0 or warmup_examples > 1000:
            raise ValueError(
                f"warmup_examples must be in [0, 1000] (TF Serving reads at most 1000 warmup "
                f"records), got {warmup_examples}"
            )
        if not 0 < learning_rate < 10:
            raise ValueError(f"learning_rate must be in (0, 10), got {learning_rate}")
        if feature_keys is not None and label_key in feature_keys:
            raise ValueError(f"feature_keys must not contain the label {label_key!r}")
        spec = TrainerSpec(
            examples=examples,
            schema=schema,
            label_key=label_key,
            feature_keys=list(feature_keys) if feature_keys else None,
            task=task,
            hidden_units=hidden_units,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            warmup_examples=warmup_examples,
            core_model_fn=core_model_fn,
            module_file=module_file,
            run_fn=run_fn,
            train_args=train_args or trainer_pb2.TrainArgs(),
            eval_args=eval_args or trainer_pb2.EvalArgs(),
            custom_config=custom_config,
            model=types.Channel(type=standard_artifacts.Model),
            model_run=types.Channel(type=standard_artifacts.ModelRun),
        )
        super().__init__(spec=spec)
        if module_file and udf_utils.should_package_user_modules():
            # On Kubeflow the user module travels as a wheel under pipeline_root, as with TFX's
            # own Trainer.
            udf_utils.add_user_module_dependency(self, MODULE_FILE_KEY, MODULE_PATH_KEY)
