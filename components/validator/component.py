"""The Validator component: spec and construction-time validation."""

from __future__ import annotations

import tensorflow_model_analysis as tfma
from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from tfrelay.components.validator import evaluation, executor, shadow_settings

# The keys live in keys.py (issue 15); imported by name so `component.MODEL_KEY` keeps working.
from tfrelay.components.validator.keys import (
    BASELINE_BASE_PATH_KEY,
    BLESSING_KEY,
    CHECK_SERVING_CONTRACT_KEY,
    EVAL_CONFIG_KEY,
    EVALUATION_KEY,
    EXAMPLE_SPLITS_KEY,
    EXAMPLES_KEY,
    MAX_PREDICTION_CHANGE_KEY,
    MAX_REGRESSION_DIFFERENCE_KEY,
    MODEL_KEY,
    SCHEMA_KEY,
    SHADOW_MAX_RECORDS_KEY,
    SHADOW_REQUESTS_KEY,
    WARMUP_FROM_LOGS_KEY,
    WARMUP_MAX_RECORDS_KEY,
)
from tfrelay.serving.storage.filesystem import split_url

_SUPPORTED_SCHEMES = ("file", "s3", "gs")


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


class ValidatorSpec(types.ComponentSpec):
    """Validator component spec."""

    PARAMETERS = {
        EVAL_CONFIG_KEY: ExecutionParameter(type=tfma.EvalConfig),
        BASELINE_BASE_PATH_KEY: ExecutionParameter(type=str, optional=True),
        EXAMPLE_SPLITS_KEY: ExecutionParameter(type=list[str], optional=True),
        CHECK_SERVING_CONTRACT_KEY: ExecutionParameter(type=int),
        SHADOW_REQUESTS_KEY: ExecutionParameter(type=str, optional=True),
        SHADOW_MAX_RECORDS_KEY: ExecutionParameter(type=int, optional=True),
        MAX_PREDICTION_CHANGE_KEY: ExecutionParameter(type=float, optional=True),
        MAX_REGRESSION_DIFFERENCE_KEY: ExecutionParameter(type=float, optional=True),
        WARMUP_FROM_LOGS_KEY: ExecutionParameter(type=int, optional=True),
        WARMUP_MAX_RECORDS_KEY: ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema, optional=True),
    }
    OUTPUTS = {
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
        BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
    }


class Validator(base_beam_component.BaseBeamComponent):
    """Blesses a candidate model only if it meets its thresholds and the serving contract.

    - TFMA evaluates the candidate on the eval split, and, when the bucket already holds a
      version, that version too (the baseline: what clients get today). Value thresholds apply
      always; change thresholds need the baseline and are skipped on a first push.
    - The candidate must load in tfrelay's model server, answer its own warmup requests, and keep
      the baseline's `serving_default` inputs (names, dtypes, shapes), so no client breaks.

    Outputs a ModelEvaluation (TFMA results, readable with `tfma.load_eval_result`) and a
    ModelBlessing (TFX's `blessed` property and BLESSED/NOT_BLESSED file) that also records the
    metrics, the baseline version and every failed check.

    Example:
      validator = Validator(
          examples=example_gen.outputs["examples"],
          model=trainer.outputs["model"],
          baseline_base_path="s3://my-bucket/models/penguins",
          label_key="species",
          lower_bound=0.8,
          max_degradation=0.02,
      )
    """

    SPEC_CLASS = ValidatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(
        self,
        examples: types.BaseChannel,
        model: types.BaseChannel,
        schema: types.BaseChannel | None = None,
        baseline_base_path: str | None = None,
        label_key: str | None = None,
        task: str = "classification",
        metric: str | None = None,
        lower_bound: float | None = None,
        upper_bound: float | None = None,
        max_degradation: float | None = None,
        slice_features: list[str] | None = None,
        eval_config: tfma.EvalConfig | None = None,
        example_splits: list[str] | None = None,
        check_serving_contract: bool = True,
        shadow_requests: str | None = None,
        shadow_max_records: int = shadow_settings.DEFAULT_MAX_RECORDS,
        max_prediction_change: float | None = None,
        max_regression_difference: float | None = None,
        warmup_from_logs: bool = False,
        warmup_max_records: int = shadow_settings.DEFAULT_WARMUP_RECORDS,
    ) -> None:
        """Constructs a Validator.

        Args:
          examples: Examples with an eval split.
          model: the candidate Model (from the Trainer).
          schema: optional Schema, for TFMA's feature decoding.
          baseline_base_path: the bucket path the model is pushed to (the BucketPusher's
            base_path); its newest complete version is the baseline. None: no baseline.
          label_key: the label feature (builds the default EvalConfig).
          task: "classification" (SparseCategoricalAccuracy) or "regression"
            (MeanSquaredError), for the default EvalConfig.
          metric: another TFMA/Keras metric class name as the main metric.
          lower_bound: the metric must be at least this.
          upper_bound: the metric must be at most this.
          max_degradation: the metric may be at most this much worse than the baseline's.
          slice_features: also compute metrics per value of these features.
          eval_config: a full tfma.EvalConfig instead of the parameters above.
          example_splits: splits to evaluate on (default ["eval"]).
          check_serving_contract: also check load, warmup and input compatibility.
          shadow_requests: logged requests to replay against the candidate and the serving
            version: a TFRecord file of PredictionLogs, a directory of them or a name prefix
            (local, s3:// or gs://). None: no shadow validation.
          shadow_max_records: at most this many logged records are read.
          max_prediction_change: the largest share (0..1) of replayed predictions whose top
            class may differ from the serving version's. None: reported, not checked.
          max_regression_difference: the largest p99 absolute difference between the
            candidate's and the serving version's predicted values. None: reported, not checked.
          warmup_from_logs: write up to `warmup_max_records` logged requests the candidate
            answered as its warmup requests (shipped by the BucketPusher).
          warmup_max_records: at most this many warmup records (TF Serving reads 1000 at most).

        Raises:
          ValueError: the configuration could never bless a model; the message says what to set.
        """
        if eval_config is None:
            if not label_key:
                raise ValueError(
                    "Pass label_key (for the default evaluation) or a full eval_config."
                )
            if task not in evaluation.DEFAULT_METRIC:
                raise ValueError(
                    f"task must be one of {', '.join(evaluation.DEFAULT_METRIC)}, got {task!r}"
                )
            if max_degradation is not None and max_degradation < 0:
                raise ValueError(f"max_degradation must be >= 0, got {max_degradation}")
            if lower_bound is not None and upper_bound is not None and lower_bound > upper_bound:
                raise ValueError(f"lower_bound {lower_bound} is above upper_bound {upper_bound}")
            eval_config = evaluation.build_eval_config(
                label_key,
                task,
                metric=metric,
                lower_bound=lower_bound,
                upper_bound=upper_bound,
                max_degradation=max_degradation,
                slice_features=slice_features,
            )
        if not evaluation.has_thresholds(eval_config):
            # TFX's Evaluator silently leaves such models unblessed (tfx#5148); say so up front.
            raise ValueError(
                "No metric threshold is configured, so no model could ever be blessed. Set "
                "lower_bound / upper_bound and/or max_degradation (or thresholds in eval_config)."
            )
        if baseline_base_path:
            protocol, _ = split_url(baseline_base_path)
            if protocol not in _SUPPORTED_SCHEMES:
                raise ValueError(
                    f"baseline_base_path {baseline_base_path!r}: use a local path, file://, s3:// or gs://"
                )
        shadow_settings.validate(
            shadow_requests,
            shadow_max_records,
            max_prediction_change,
            max_regression_difference,
            warmup_from_logs,
            warmup_max_records,
        )
        spec = ValidatorSpec(
            examples=examples,
            model=model,
            schema=schema,
            eval_config=eval_config,
            baseline_base_path=baseline_base_path,
            example_splits=list(example_splits) if example_splits else None,
            check_serving_contract=int(check_serving_contract),
            shadow_requests=shadow_requests or None,
            shadow_max_records=int(shadow_max_records),
            # Floats even when given as 0 or 1 (e.g. by `--set max_prediction_change=0`).
            max_prediction_change=_float_or_none(max_prediction_change),
            max_regression_difference=_float_or_none(max_regression_difference),
            warmup_from_logs=int(warmup_from_logs),
            warmup_max_records=int(warmup_max_records),
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
        )
        super().__init__(spec=spec)
