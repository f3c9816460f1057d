"""Shadow validation: logged requests replayed against the candidate and the serving version.

A sample of real traffic (`shadow_records.py` reads it, bounded) is answered in process by the
candidate and by the baseline, the version the bucket serves now (`baseline.py`), through the
model server's own request code (`shadow_replay.py`). The report says how many predictions
change: for classes, the share whose top class differs; for values, the distribution of the
absolute differences. Thresholds turn it into failed checks; records the candidate answers can
become its warmup requests. No TFX types: the executor is the glue.

What each logged record becomes (exactly one of):
- compared: both answered; its predictions count in the comparison.
- unservable: the serving version has no signature for it (its kind, or the signature it
  names), e.g. logs of another model: skipped, counted.
- baseline_errors: the serving version fails it too: skipped, counted.
- candidate_errors: the serving version answers it, the candidate does not: a client would
  break, so any such record fails the check.
- unanswerable (first push, no baseline): the candidate cannot answer it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping

import numpy as np
import tensorflow as tf
from absl import logging
from tensorflow_serving.apis import prediction_log_pb2

from tfrelay.components.validator import shadow_records
from tfrelay.components.validator.shadow_records import ReadCounts, ReadLimits
from tfrelay.components.validator.shadow_replay import (
    CLASSES,
    Answer,
    CannotServe,
    plan,
)
from tfrelay.serving.servables.base import Servable
from tfrelay.serving.servables.saved_model import SavedModelServable
from tfrelay.serving.warmup import MAX_WARMUP_RECORDS

PERCENTILES = (50, 90, 99)
DEFAULT_WARMUP_RECORDS = 100
# Every version loads its warmup file and replays it before it serves: a sample, not a dump (100
# logged records of up to 4 MiB each would be 400 MiB).
MAX_WARMUP_BYTES = 16 * 1024 * 1024


@dataclasses.dataclass
class Comparison:
    """The candidate's predictions against the serving version's, accumulated.

    Attributes:
      classified: predictions compared by top class.
      class_changes: of those, how many have another top class.
      differences: |candidate - baseline| per prediction compared by value.
    """

    classified: int = 0
    class_changes: int = 0
    differences: list[float] = dataclasses.field(default_factory=list)

    def add(self, candidate: Answer, baseline: Answer) -> str | None:
        """Adds one record's answers.

        Returns:
          Why they cannot be compared (a candidate error), or None when they were added.
        """
        pending = []
        for what, base_kind, old in baseline.parts:
            found = candidate.find(what)
            if found is None:
                return f"the candidate's answer has no {what}, which the serving version answers"
            kind, new = found
            if kind != base_kind or new.shape != old.shape:
                return (
                    f"{what}: {kind} of shape {list(new.shape)} where the serving version "
                    f"answers {base_kind} of shape {list(old.shape)}"
                )
            pending.append((kind, new, old))
        for kind, new, old in pending:
            if kind == CLASSES:
                self.classified += int(old.size)
                self.class_changes += int(np.count_nonzero(new != old))
            else:
                self.differences.extend(np.abs(new - old).tolist())
        return None

    @property
    def change_share(self) -> float | None:
        """The share of classified predictions whose top class changed; None if none."""
        return self.class_changes / self.classified if self.classified else None

    def difference_stats(self) -> dict[str, float] | None:
        """mean, p50, p90, p99 and max of the absolute differences; None if none."""
        if not self.differences:
            return None
        values = np.asarray(self.differences, np.float64)
        stats = {"mean": float(values.mean())}
        for p in PERCENTILES:
            stats[f"p{p}"] = float(np.percentile(values, p))
        stats["max"] = float(values.max())
        return stats


@dataclasses.dataclass
class ShadowReport:
    """Everything a shadow validation found (JSON-able with `to_json`).

    Attributes:
      location: where the logs were read.
      baseline_version: the serving version compared with; None on a first push.
      reading: what reading the logs found.
      compared / unservable / baseline_errors / candidate_errors / unanswerable: records, see
        the module docstring.
      comparison: the predictions compared.
      messages: the first few replay problems.
      first_candidate_error: what the first candidate error was, for the failed check.
      warmup_records: records kept as warmup requests.
    """

    location: str
    baseline_version: int | None
    reading: ReadCounts = dataclasses.field(default_factory=ReadCounts)
    compared: int = 0
    unservable: int = 0
    baseline_errors: int = 0
    candidate_errors: int = 0
    unanswerable: int = 0
    comparison: Comparison = dataclasses.field(default_factory=Comparison)
    messages: list[str] = dataclasses.field(default_factory=list)
    first_candidate_error: str = ""
    warmup_records: int = 0

    def note(self, message: str) -> None:
        """Keeps `message` for the report, if fewer than MAX_MESSAGES are kept."""
        if len(self.messages) < shadow_records.MAX_MESSAGES:
            self.messages.append(shadow_records.excerpt(message))

    def candidate_error(self, message: str) -> None:
        """Counts a record the serving version answers and the candidate does not."""
        self.candidate_errors += 1
        self.first_candidate_error = self.first_candidate_error or shadow_records.excerpt(message)
        self.note(f"the candidate fails a request the serving version answers: {message}")

    def metrics(self) -> dict[str, float]:
        """The headline numbers, for the blessing's metrics (and so the push record)."""
        metrics: dict[str, float] = {}
        share = self.comparison.change_share
        if share is not None:
            metrics["shadow_prediction_change"] = share
        stats = self.comparison.difference_stats()
        if stats is not None:
            metrics.update({f"shadow_abs_difference_{k}": v for k, v in stats.items()})
        return metrics

    def to_json(self) -> dict:
        """The whole report as plain JSON values."""
        return {
            "location": self.location,
            "baseline_version": self.baseline_version,
            "files": self.reading.files,
            "records_read": self.reading.records,
            "corrupt": self.reading.corrupt,
            "oversized": self.reading.oversized,
            "truncated_files": self.reading.truncated_files,
            "compared": self.compared,
            "unservable": self.unservable,
            "baseline_errors": self.baseline_errors,
            "candidate_errors": self.candidate_errors,
            "unanswerable": self.unanswerable,
            "classified_predictions": self.comparison.classified,
            "class_changes": self.comparison.class_changes,
            "prediction_change": self.comparison.change_share,
            "valued_predictions": len(self.comparison.differences),
            "abs_difference": self.comparison.difference_stats(),
            "warmup_records": self.warmup_records,
            "messages": self.reading.messages + self.messages,
        }


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """When shadow traffic withholds the blessing (None: not checked).

    Attributes:
      max_prediction_change: the largest share (0..1) of classified predictions whose top class
        may change.
      max_regression_difference: the largest p99 absolute difference of predicted values.
    """

    max_prediction_change: float | None = None
    max_regression_difference: float | None = None


def failures(report: ShadowReport, thresholds: Thresholds) -> list[str]:
    """The failed checks of a report, worded as the Validator's other reasons.

    Args:
      report: a shadow validation's report.
      thresholds: the limits.

    Returns:
      Human-readable reasons; empty when every check holds (or had nothing to compare).
    """
    if report.baseline_version is None:
        return []
    version = f"version {report.baseline_version}"
    failed = []
    checked = (thresholds.max_prediction_change, thresholds.max_regression_difference)
    if any(t is not None for t in checked) and not report.compared and not report.candidate_errors:
        # A mistyped or empty location must not pass the thresholds by having nothing to compare.
        failed.append(
            f"shadow traffic: none of the {report.reading.records} logged requests read from "
            f"{report.location} could be compared with {version} ({report.reading.corrupt} "
            f"corrupt, {report.unservable} unservable, {report.baseline_errors} failing on both); "
            "check shadow_requests, or unset the shadow thresholds"
        )
        return failed
    if report.candidate_errors:
        first = f" (first: {report.first_candidate_error})" if report.first_candidate_error else ""
        failed.append(
            f"shadow traffic: the candidate fails {report.candidate_errors} of "
            f"{report.candidate_errors + report.compared} logged requests that {version} "
            f"answers{first}"
        )
    comparison = report.comparison
    share = comparison.change_share
    limit = thresholds.max_prediction_change
    if limit is not None and share is not None and share > limit:
        failed.append(
            f"shadow traffic: {share:.2%} of {comparison.classified} predictions "
            f"({comparison.class_changes}) change their top class vs {version}; required <= "
            f"{limit:.2%} (over by {(share - limit) * 100:.2f} points)"
        )
    stats = comparison.difference_stats()
    bound = thresholds.max_regression_difference
    if bound is not None and stats is not None and stats["p99"] > bound:
        failed.append(
            f"shadow traffic: the p99 absolute difference vs {version} is {stats['p99']:.4f} "
            f"over {len(comparison.differences)} predictions (max {stats['max']:.4f}); "
            f"required <= {bound:.4f} (over by {stats['p99'] - bound:.4f})"
        )
    return failed


def _without_response(log: prediction_log_pb2.PredictionLog) -> prediction_log_pb2.PredictionLog:
    # Warmup replays requests only; the logged responses would just make the file bigger.
    kept = prediction_log_pb2.PredictionLog()
    kept.CopyFrom(log)
    kind = kept.WhichOneof("log_type")
    getattr(kept, kind).ClearField("response")
    return kept


def replay(
    logs: Iterable[prediction_log_pb2.PredictionLog],
    candidate: Servable,
    baseline: Servable | None,
    report: ShadowReport,
    warmup: list[prediction_log_pb2.PredictionLog] | None = None,
    warmup_limit: int = 0,
) -> None:
    """Answers each log with the candidate (and the baseline) and accumulates `report`.

    Args:
      logs: the logged requests.
      candidate: the loaded candidate.
      baseline: the loaded serving version, or None on a first push (nothing is compared).
      report: updated in place.
      warmup: when given, receives up to `warmup_limit` logs the candidate answered (their
        requests only, MAX_WARMUP_BYTES in all).
      warmup_limit: the most warmup logs kept.
    """
    comparison = report.comparison
    warmup_bytes = 0
    for log in logs:
        if baseline is not None:
            try:
                old_run = plan(baseline, log)
            except CannotServe as err:
                report.unservable += 1
                report.note(f"skipped, the serving version cannot serve it: {err}")
                continue
            try:
                old = old_run()
            except Exception as err:  # noqa: BLE001 - a record it fails is skipped, counted
                report.baseline_errors += 1
                report.note(f"skipped, the serving version fails it too: {err}")
                continue
        try:
            new = plan(candidate, log)()
        except Exception as err:  # noqa: BLE001 - counted and reported, never a crash
            if baseline is None:
                report.unanswerable += 1
                report.note(f"the candidate cannot answer a logged request: {err}")
            else:
                report.candidate_error(str(err))
            continue
        if baseline is not None:
            problem = comparison.add(new, old)
            if problem is not None:
                report.candidate_error(problem)
                continue
            report.compared += 1
        if warmup is not None and len(warmup) < warmup_limit:
            request = _without_response(log)
            if warmup_bytes + request.ByteSize() <= MAX_WARMUP_BYTES:
                warmup.append(request)
                warmup_bytes += request.ByteSize()


def write_warmup_file(path: str, logs: Iterable[prediction_log_pb2.PredictionLog]) -> int:
    """Writes logs as a TF Serving warmup file (a TFRecord of PredictionLogs).

    Args:
      path: the file to write (local or any tf.io.gfile URL).
      logs: the records, at most MAX_WARMUP_RECORDS (TF Serving refuses more).

    Returns:
      The number of records written.

    Raises:
      ValueError: more than MAX_WARMUP_RECORDS logs.
    """
    logs = list(logs)
    if len(logs) > MAX_WARMUP_RECORDS:
        raise ValueError(
            f"{len(logs)} warmup records: TF Serving reads at most {MAX_WARMUP_RECORDS}"
        )
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return len(logs)


def shadow_validate(
    location: str,
    candidate_path: str,
    baseline_path: str | None,
    baseline_version: int | None,
    limits: ReadLimits = ReadLimits(),
    warmup_path: str | None = None,
    warmup_limit: int = DEFAULT_WARMUP_RECORDS,
    environ: Mapping[str, str] | None = None,
) -> ShadowReport:
    """Replays the logs under `location` against the candidate and the serving version.

    Args:
      location: a TFRecord file, directory or prefix of PredictionLogs (local, s3://, gs://).
      candidate_path: the candidate SavedModel directory.
      baseline_path: the serving version's SavedModel directory; None on a first push.
      baseline_version: its version number.
      limits: how much of the logs is read.
      warmup_path: when given, the requests the candidate answered (at most `warmup_limit`)
        are written there as a warmup file (nothing is written when there are none).
      warmup_limit: the most warmup records, at most MAX_WARMUP_RECORDS.
      environ: the environment storage access is configured from (default `os.environ`).

    Returns:
      The report (bad records are counted in it, never raised).

    Raises:
      ValueError: an unsupported protocol in `location`.
      Exception: a model that does not load (the serving contract reports that already).
    """
    report = ShadowReport(location, baseline_version if baseline_path else None)
    warmup: list[prediction_log_pb2.PredictionLog] | None = [] if warmup_path else None
    candidate = SavedModelServable("candidate", 0, candidate_path)
    baseline = SavedModelServable("baseline", 0, baseline_path) if baseline_path else None
    candidate.load()
    try:
        if baseline is not None:
            baseline.load()
        logs = shadow_records.read_prediction_logs(location, limits, report.reading, environ)
        replay(logs, candidate, baseline, report, warmup, min(warmup_limit, MAX_WARMUP_RECORDS))
    finally:
        candidate.unload()
        if baseline is not None:
            baseline.unload()
    if warmup_path and warmup:
        report.warmup_records = write_warmup_file(warmup_path, warmup)
    logging.info("Validator: shadow traffic: %s", report.to_json())
    return report
