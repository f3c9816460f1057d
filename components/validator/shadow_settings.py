"""The shadow validation settings: defaults and the checks made once, when the Validator is
built (no TFX types, so the executor and tests share them)."""

from __future__ import annotations

from tfrelay.components.validator.shadow import DEFAULT_WARMUP_RECORDS
from tfrelay.components.validator.shadow_records import DEFAULT_MAX_RECORDS
from tfrelay.serving.storage.filesystem import split_url
from tfrelay.serving.warmup import MAX_WARMUP_RECORDS

__all__ = ["DEFAULT_MAX_RECORDS", "DEFAULT_WARMUP_RECORDS", "MAX_WARMUP_RECORDS", "validate"]

_SUPPORTED_SCHEMES = ("file", "s3", "gs")
# Beyond this a shadow run reads gigabytes and replays for minutes: a sample, not a backfill.
MAX_SHADOW_RECORDS = 100_000


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(
    shadow_requests: str | None,
    shadow_max_records: int,
    max_prediction_change: float | None,
    max_regression_difference: float | None,
    warmup_from_logs: bool,
    warmup_max_records: int,
) -> None:
    """Checks the shadow settings; the messages say what to set instead.

    Args:
      shadow_requests: the logs' location, or None.
      shadow_max_records: records read at most.
      max_prediction_change: the share of changed top classes allowed, or None.
      max_regression_difference: the p99 absolute difference allowed, or None.
      warmup_from_logs: whether logged requests become the candidate's warmup requests.
      warmup_max_records: warmup records at most.

    Raises:
      ValueError: a setting that is out of range, or one that needs `shadow_requests`.
    """
    if shadow_requests:
        protocol, _ = split_url(shadow_requests)
        if protocol not in _SUPPORTED_SCHEMES:
            raise ValueError(
                f"shadow_requests {shadow_requests!r}: use a local path, file://, s3:// or gs:// "
                "(a TFRecord file of PredictionLogs, a directory of them, or a name prefix)"
            )
    else:
        needing = [
            name
            for name, value in (
                ("max_prediction_change", max_prediction_change),
                ("max_regression_difference", max_regression_difference),
                ("warmup_from_logs", warmup_from_logs or None),
            )
            if value is not None
        ]
        if needing:
            raise ValueError(
                f"{', '.join(needing)} need(s) logged requests to replay: set shadow_requests "
                "to a TFRecord file, directory or prefix of PredictionLogs (e.g. "
                "shadow_requests='s3://my-bucket/request-logs/penguins/')"
            )
    if isinstance(shadow_max_records, bool) or not isinstance(shadow_max_records, int):
        raise ValueError(f"shadow_max_records must be an integer, got {shadow_max_records!r}")
    if not 1 <= shadow_max_records <= MAX_SHADOW_RECORDS:
        raise ValueError(
            f"shadow_max_records must be in [1, {MAX_SHADOW_RECORDS}], got {shadow_max_records}"
        )
    if max_prediction_change is not None and not (
        _is_number(max_prediction_change) and 0 <= max_prediction_change <= 1
    ):
        raise ValueError(
            "max_prediction_change is a share of predictions, in [0, 1] (e.g. 0.05 for 5%), "
            f"got {max_prediction_change!r}"
        )
    if max_regression_difference is not None and not (
        _is_number(max_regression_difference) and max_regression_difference >= 0
    ):
        raise ValueError(
            "max_regression_difference bounds the p99 absolute difference of predicted values: "
            f"a number >= 0, got {max_regression_difference!r}"
        )
    if not isinstance(warmup_from_logs, (bool, int)):
        raise ValueError(f"warmup_from_logs must be True or False, got {warmup_from_logs!r}")
    if isinstance(warmup_max_records, bool) or not isinstance(warmup_max_records, int):
        raise ValueError(f"warmup_max_records must be an integer, got {warmup_max_records!r}")
    if not 1 <= warmup_max_records <= MAX_WARMUP_RECORDS:
        raise ValueError(
            f"warmup_max_records must be in [1, {MAX_WARMUP_RECORDS}] (TF Serving reads at most "
            f"{MAX_WARMUP_RECORDS} warmup records), got {warmup_max_records}"
        )
