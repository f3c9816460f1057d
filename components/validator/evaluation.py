"""TFMA configuration and result reading for the Validator (pure functions, no TFX types)."""

from __future__ import annotations

import dataclasses
import math

import tensorflow_model_analysis as tfma

CANDIDATE = "candidate"
BASELINE = "baseline"

# The main metric per task, and which direction is better.
DEFAULT_METRIC = {
    "classification": ("SparseCategoricalAccuracy", tfma.MetricDirection.HIGHER_IS_BETTER),
    "regression": ("MeanSquaredError", tfma.MetricDirection.LOWER_IS_BETTER),
}
LOWER_IS_BETTER_METRICS = {
    "MeanSquaredError",
    "MeanAbsoluteError",
    "RootMeanSquaredError",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "MeanAbsolutePercentageError",
}
# The signature TFMA feeds serialized tf.Examples to, per task (the Trainer's export).
SIGNATURE = {"classification": ("classify", "scores"), "regression": ("regress", "outputs")}


def build_eval_config(
    label_key: str,
    task: str,
    metric: str | None = None,
    lower_bound: float | None = None,
    upper_bound: float | None = None,
    max_degradation: float | None = None,
    signature_name: str | None = None,
    prediction_key: str | None = None,
    slice_features: list[str] | None = None,
) -> tfma.EvalConfig:
    """An EvalConfig with one main metric and its thresholds, for a candidate and a baseline.

    Args:
      label_key: the label feature.
      task: "classification" or "regression" (decides the default metric and signature).
      metric: a TFMA/Keras metric class name; default SparseCategoricalAccuracy or
        MeanSquaredError.
      lower_bound: the metric must be at least this (value threshold).
      upper_bound: the metric must be at most this (value threshold).
      max_degradation: the metric may be at most this much worse than the baseline's (change
        threshold; ignored on a first run, when there is no baseline).
      signature_name: the signature fed serialized examples (default classify / regress).
      prediction_key: the output holding predictions (default scores / outputs).
      slice_features: extra slices to compute metrics on (e.g. ["island"]).

    Returns:
      The EvalConfig.
    """
    default_metric, direction = DEFAULT_METRIC[task]
    metric = metric or default_metric
    if metric in LOWER_IS_BETTER_METRICS:
        direction = tfma.MetricDirection.LOWER_IS_BETTER
    elif metric != default_metric:
        direction = tfma.MetricDirection.HIGHER_IS_BETTER
    default_signature, default_prediction = SIGNATURE[task]
    threshold = tfma.MetricThreshold()
    if lower_bound is not None or upper_bound is not None:
        bounds = {}
        if lower_bound is not None:
            bounds["lower_bound"] = {"value": lower_bound}
        if upper_bound is not None:
            bounds["upper_bound"] = {"value": upper_bound}
        threshold.value_threshold.CopyFrom(tfma.GenericValueThreshold(**bounds))
    if max_degradation is not None:
        # Absolute change = candidate - baseline; "worse by at most d" is >= -d when higher is
        # better and <= +d when lower is better. TFMA wants a strictly non-zero bound.
        allowed = max(max_degradation, 1e-10)
        signed = -allowed if direction == tfma.MetricDirection.HIGHER_IS_BETTER else allowed
        threshold.change_threshold.CopyFrom(
            tfma.GenericChangeThreshold(direction=direction, absolute={"value": signed})
        )
    model_spec = dict(
        signature_name=signature_name or default_signature,
        label_key=label_key,
        prediction_key=prediction_key or default_prediction,
    )
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(name=CANDIDATE, **model_spec),
            tfma.ModelSpec(name=BASELINE, is_baseline=True, **model_spec),
        ],
        slicing_specs=[tfma.SlicingSpec()]
        + [tfma.SlicingSpec(feature_keys=[f]) for f in slice_features or []],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(class_name=metric, threshold=threshold),
                ]
            )
        ],
    )


def has_thresholds(eval_config: tfma.EvalConfig) -> bool:
    """Whether any metric has a value or change threshold (TFX blesses nothing otherwise)."""
    return bool(
        tfma.metrics.metric_thresholds_from_metrics_specs(
            eval_config.metrics_specs, eval_config=eval_config
        )
    )


def without_baseline(eval_config: tfma.EvalConfig) -> tfma.EvalConfig:
    """The config for a first run: the baseline model spec removed."""
    config = tfma.EvalConfig()
    config.CopyFrom(eval_config)
    del config.model_specs[:]
    config.model_specs.extend(spec for spec in eval_config.model_specs if not spec.is_baseline)
    return config


def _metric_name(key) -> str:
    return f"{key.name} (change vs baseline)" if key.is_diff else key.name


@dataclasses.dataclass(frozen=True)
class Failure:
    """A threshold a candidate missed."""

    metric: str
    value: float
    description: str


def threshold_failures(output_path: str) -> list[Failure]:
    """Reads TFMA's validation result and explains every failed threshold, with the margin."""
    result = tfma.load_validation_result(output_path)
    failures = []
    for per_slice in result.metric_validations_per_slice:
        slice_name = (
            tfma.slicer.stringify_slice_key(tfma.slicer.deserialize_slice_key(per_slice.slice_key))
            if per_slice.HasField("slice_key")
            else "Overall"
        )
        for failure in per_slice.failures:
            metric = _metric_name(failure.metric_key)
            value = (
                failure.metric_value.double_value.value
                if failure.metric_value.HasField("double_value")
                else float("nan")
            )
            failures.append(
                Failure(
                    metric,
                    value,
                    f"{slice_name}: {metric} = {value:.4f}; {_describe_threshold(failure.metric_threshold, value)}",
                )
            )
    return failures


def _describe_threshold(threshold, value: float) -> str:
    if threshold.HasField("value_threshold"):
        bounds = threshold.value_threshold
        if bounds.HasField("lower_bound") and value < bounds.lower_bound.value:
            return f"required >= {bounds.lower_bound.value:.4f} (short by {bounds.lower_bound.value - value:.4f})"
        if bounds.HasField("upper_bound") and value > bounds.upper_bound.value:
            return f"required <= {bounds.upper_bound.value:.4f} (over by {value - bounds.upper_bound.value:.4f})"
    if threshold.HasField("change_threshold"):
        change = threshold.change_threshold
        if change.HasField("absolute"):
            limit = change.absolute.value
            if change.direction == tfma.MetricDirection.HIGHER_IS_BETTER:
                return (
                    f"the change vs baseline must be >= {limit:.4f} (short by {limit - value:.4f})"
                )
            return f"the change vs baseline must be <= {limit:.4f} (over by {value - limit:.4f})"
        if change.HasField("relative"):
            return f"relative change vs baseline outside {change.relative.value:.4f}"
    return str(threshold).replace("\n", " ")


def overall_metrics(output_path: str, model_name: str = CANDIDATE) -> dict[str, float]:
    """{metric name: value} of a model on the overall slice."""
    metrics: dict[str, float] = {}
    try:
        result = tfma.load_eval_result(output_path, model_name=model_name)
    except (ValueError, KeyError):
        result = None
    if result is None or not result.slicing_metrics:
        # A lone model (no baseline) is stored without its name.
        result = tfma.load_eval_result(output_path)
    for slice_key, by_output in result.slicing_metrics:
        if slice_key != ():
            continue
        for sub_keys in by_output.values():
            for values in sub_keys.values():
                for name, value in values.items():
                    number = value.get("doubleValue")
                    if number is not None and math.isfinite(number):
                        metrics[name] = number
    return metrics
