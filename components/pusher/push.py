"""Pushing a model: the BucketPusher's side effect, free of TFX types (issue 15: orchestration).

`push_model` fetches the model directory (downloading it first when it is in a bucket), hands it
to the bucket contract's writer (`tfrelay.serving.storage.bucket_writer`, next to the server's
reader, which documents the publishing steps: versions, claim record, files, final record,
marker last, high-water mark, resume, retention) and words the result. Settings are validated
once, when the `PushSettings` are built (`settings.py`); which model to push and why is decided
in `selection.py`. Credentials are never arguments: the file system comes from `filesystem_for`,
which reads the environment (AWS_* / S3_ENDPOINT / S3_USE_HTTPS for s3://,
GOOGLE_APPLICATION_CREDENTIALS for gs://).

Everything the executor, `cli.py` and the tests used from this module before the split is still
importable from here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import fsspec

from tfrelay.components.pusher.selection import (
    SELECTED_FALLBACK,
    SELECTED_MODEL,
    fallback_not_blessed_reason,
    fallback_reason,
    not_blessed_reason,
    parse_failed_checks,
    parse_metrics,
    selection_reason,
)
from tfrelay.components.pusher.settings import (
    SUPPORTED_PROTOCOLS,
    VERSIONING_CHOICES,
    VERSIONING_NEXT_INTEGER,
    VERSIONING_UNIX_TIMESTAMP,
    PushSettings,
    default_model_name,
    validate_base_path,
    validate_keep_last,
    validate_model_name,
    validate_versioning,
)
from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.bucket_writer import BucketWriter
from tfrelay.serving.storage.filesystem import filesystem_for, split_url
from tfrelay.serving.storage.publication import (
    STATUS_UPLOADED,
    STATUS_UPLOADING,
    Publication,
    PushError,
    idempotency_key,
    list_model_files,
    upload_order,
)

__all__ = [
    "SELECTED_FALLBACK",
    "SELECTED_MODEL",
    "STATUS_UPLOADED",
    "STATUS_UPLOADING",
    "SUPPORTED_PROTOCOLS",
    "VERSIONING_CHOICES",
    "VERSIONING_NEXT_INTEGER",
    "VERSIONING_UNIX_TIMESTAMP",
    "Lineage",
    "PushError",
    "PushRequest",
    "PushResult",
    "PushSettings",
    "default_model_name",
    "fallback_not_blessed_reason",
    "fallback_reason",
    "idempotency_key",
    "list_model_files",
    "model_checksum",
    "not_blessed_reason",
    "parse_failed_checks",
    "parse_metrics",
    "push_model",
    "selection_reason",
    "upload_order",
    "validate_base_path",
    "validate_keep_last",
    "validate_model_name",
    "validate_versioning",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lineage:
    """Which pipeline run pushed the model (each None when the orchestrator does not say).

    Attributes:
      pipeline_name: the pipeline's name.
      pipeline_run_id: the run's id; part of the idempotency key.
      component_id: the pusher's node id in the pipeline.
    """

    pipeline_name: str | None = None
    pipeline_run_id: str | None = None
    component_id: str | None = None


@dataclass(frozen=True)
class PushRequest:
    """What to push where.

    The four settings fields (`base_path`, `model_name`, `keep_last`, `versioning`) are
    validated once, at construction, into `settings`; a caller that validated them already (the
    executor) passes `settings=` (see `from_settings`) and they are not checked again.

    Attributes:
      model_dir: the SavedModel (or TFLite model) directory: a local path, or a URL that
        `filesystem_for` reads (it is downloaded to a temporary directory first).
      base_path: the model's base path, the directory holding the integer version directories.
      model_name: recorded in the push record; None for the last component of `base_path`.
      keep_last: 0 keeps every version; N > 0 keeps only the newest N published versions.
      versioning: VERSIONING_NEXT_INTEGER or VERSIONING_UNIX_TIMESTAMP.
      lineage: the pipeline run, for the push record and the idempotency key.
      source_model_uri: the Model artifact's URI, for the push record.
      metrics: the validator's metrics, for the push record.
      blessed: whether a validator blessed the model; None when none was consulted.
      selected_input: which of the pusher's inputs this is: SELECTED_MODEL, or SELECTED_FALLBACK
        when the model was not blessed and the pusher fell back.
      selection_reason: why this input was pushed, in one sentence.
      warmup_requests: a TF Serving warmup file (local or a URL `filesystem_for` reads) pushed
        as the version's `assets.extra/tf_serving_warmup_requests` in place of the model's own,
        e.g. the logged requests the Validator replayed (`warmup_from_logs`); "" keeps the
        model's files as they are.
      settings: the validated settings (built from the four fields when not given).

    Raises:
      ValueError: an invalid setting, or `settings` that contradict the four fields.
    """

    model_dir: str
    base_path: str
    model_name: str | None
    keep_last: int = 0
    versioning: str = VERSIONING_NEXT_INTEGER
    lineage: Lineage = field(default_factory=Lineage)
    source_model_uri: str = ""
    metrics: Mapping[str, object] = field(default_factory=dict)
    blessed: bool | None = None
    selected_input: str = SELECTED_MODEL
    selection_reason: str = ""
    warmup_requests: str = ""
    settings: PushSettings | None = field(default=None, kw_only=True, compare=False)

    def __post_init__(self) -> None:
        given = (self.base_path, self.keep_last, self.versioning)
        if self.settings is None:
            object.__setattr__(
                self,
                "settings",
                PushSettings(self.base_path, self.model_name, self.keep_last, self.versioning),
            )
        elif given != (self.settings.base_path, self.settings.keep_last, self.settings.versioning):
            raise ValueError(f"PushRequest fields {given} contradict its settings {self.settings}")
        if self.model_name is None:
            object.__setattr__(self, "model_name", self.settings.model_name)

    @classmethod
    def from_settings(cls, settings: PushSettings, model_dir: str, **fields: object) -> PushRequest:
        """A request for validated settings (not validated again).

        Args:
          settings: built once, e.g. by the executor from its exec properties.
          model_dir: the model directory (see the attribute).
          **fields: the other attributes (`lineage`, `metrics`, `selection_reason`, ...).

        Returns:
          The request.
        """
        return cls(
            model_dir,
            settings.base_path,
            settings.model_name,
            settings.keep_last,
            settings.versioning,
            settings=settings,
            **fields,  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class PushResult:
    """What a push did.

    Attributes:
      version: the version that now holds the model.
      destination: that version directory's URL.
      record: the push record that describes it.
      reason: one human-readable sentence on what happened.
      already_pushed: True when the newest published version already held this model.
      resumed: True when an interrupted attempt of the same run was completed.
      deleted_versions: versions removed by retention, oldest first.
    """

    version: int
    destination: str
    record: dict
    reason: str
    already_pushed: bool = False
    resumed: bool = False
    deleted_versions: tuple[int, ...] = ()


def model_checksum(model_dir: str, files: Mapping[str, int]) -> str:
    """The model's identity (`bucket.model_checksum`, the definition the server verifies).

    Args:
      model_dir: the local model directory.
      files: its listing, as `list_model_files` returns it.

    Returns:
      "sha256:<hex digest>".
    """
    return bucket.model_checksum(model_dir, files)


@contextlib.contextmanager
def _local_model_dir(model_dir: str, environ: Mapping[str, str] | None) -> Iterator[str]:
    """Yields a local copy of the model directory (itself when it is local already)."""
    protocol, path = split_url(model_dir)
    if protocol == "file":
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="tfrelay-push-") as scratch:
        local = os.path.join(scratch, "model")
        logger.info("Downloading the model from %s to %s", model_dir, local)
        try:
            filesystem_for(model_dir, environ).get(path.rstrip("/") + "/", local, recursive=True)
        except Exception as err:
            raise PushError(
                f"Could not download the model from {model_dir}: {type(err).__name__}: {err}. "
                "Check the storage credentials in the environment (AWS_* / S3_ENDPOINT for "
                "s3://, GOOGLE_APPLICATION_CREDENTIALS for gs://)."
            ) from err
        yield local


@contextlib.contextmanager
def _with_warmup(
    model_dir: str, warmup_requests: str, environ: Mapping[str, str] | None
) -> Iterator[str]:
    """Yields the model directory with `warmup_requests` as its warmup file (a staged copy,
    so the Model artifact itself is never changed); the directory itself when there is none."""
    if not warmup_requests:
        yield model_dir
        return
    with tempfile.TemporaryDirectory(prefix="tfrelay-push-warmup-") as scratch:
        staged = os.path.join(scratch, "model")
        shutil.copytree(model_dir, staged)
        target = os.path.join(staged, *bucket.WARMUP_FILE.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            _, path = split_url(warmup_requests)
            filesystem_for(warmup_requests, environ).get(path, target)
        except Exception as err:
            raise PushError(
                f"Could not read the warmup requests {warmup_requests}: {type(err).__name__}: {err}"
            ) from err
        logger.info("Pushing the warmup requests %s as %s", warmup_requests, bucket.WARMUP_FILE)
        yield staged


def _description(request: PushRequest) -> dict[str, object]:
    """The push record's fields that say where the model came from and why it was pushed."""
    return {
        "pipeline_name": request.lineage.pipeline_name,
        "pipeline_run_id": request.lineage.pipeline_run_id,
        "component_id": request.lineage.component_id,
        "source_model_uri": request.source_model_uri,
        "metrics": dict(request.metrics),
        "blessed": request.blessed,
        "selected_input": request.selected_input,
        "selection_reason": request.selection_reason,
    }


def push_model(
    request: PushRequest,
    fs: fsspec.AbstractFileSystem | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> PushResult:
    """Publishes a model as a version of `request.base_path`, following the bucket contract.

    Args:
      request: what to push where (its settings were validated when it was built).
      fs: the file system of the base path; by default `filesystem_for(base_path, environ)`.
      environ: the environment that configures storage access; defaults to `os.environ`.
      clock: seconds since the epoch (for `unix_timestamp` versions and `pushed_at`).

    Returns:
      What was done: the version holding the model, and whether it was new, resumed or there
      already.

    Raises:
      PushError: the model is not servable, or storage failed; nothing half-written is ever
        published, and running the same push again resumes it.
    """
    settings = request.settings
    assert settings is not None  # set by PushRequest.__post_init__
    with (
        _local_model_dir(request.model_dir, environ) as downloaded,
        _with_warmup(downloaded, request.warmup_requests, environ) as model_dir,
    ):
        writer = BucketWriter(settings.base_path, fs=fs, environ=environ, clock=clock)
        published = writer.publish(
            model_dir,
            settings.model_name,
            run_id=request.lineage.pipeline_run_id,
            description=_description(request),
            versioning=settings.versioning,
            keep_last=settings.keep_last,
        )
    return PushResult(
        version=published.version,
        destination=published.destination,
        record=published.record,
        reason=_reason(settings.model_name, published),
        already_pushed=published.already_published,
        resumed=published.resumed,
        deleted_versions=published.deleted_versions,
    )


def _reason(model_name: str, published: Publication) -> str:
    """The one sentence the PushedModel and `tfrelay push` report."""
    if published.already_published:
        record = published.record
        return (
            f"already pushed: version {published.version} at {published.destination} holds this "
            f"exact model (checksum {record.get('checksum')}, pushed at "
            f"{record.get('pushed_at')} by run {record.get('pipeline_run_id')}); nothing was "
            "uploaded."
        )
    deleted = published.deleted_versions
    return (
        f"pushed: {model_name} version {published.version} published at {published.destination}"
        + (" (resumed an interrupted attempt of this run)" if published.resumed else "")
        + (f"; retention removed versions {list(deleted)}" if deleted else "")
        + "."
    )
