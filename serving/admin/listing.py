"""`tfrelay models list`: every version in a base path as the model server judges it.

Versions are listed and judged with the server's own `ModelStorage` (`list_versions`,
`inspect_version`: the bucket contract's completeness rule) and the writer's listing, never a
second implementation. The pure half (`version_state`, `lineage`, `render_table`, `as_json`)
words what the I/O half (`list_base_path`) found.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from tfrelay.serving.admin.endpoints import EndpointStatus
from tfrelay.serving.admin.errors import AdminError, storage_failure
from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.bucket_writer import BucketWriter
from tfrelay.serving.storage.errors import StorageError
from tfrelay.serving.storage.publication import PushError, human_bytes

logger = logging.getLogger(__name__)

PUBLISHED = "published"
UPLOADING = "uploading"
INCOMPLETE = "incomplete"
BROKEN = "broken"


@dataclass(frozen=True)
class VersionRow:
    """One version directory and what the server would make of it.

    Attributes:
      version: the version number.
      name: its directory name.
      state: PUBLISHED (the server loads it), UPLOADING (a tfrelay writer's claim without its
        publish marker yet: in progress, or interrupted and resumed by a retry), INCOMPLETE
        (files missing) or BROKEN (an unreadable push record or SavedModel: never served).
      detail: why, when not published.
      size: bytes of every file in the directory.
      files: how many files.
      record: its push record when valid, else None.
    """

    version: int
    name: str
    state: str
    detail: str
    size: int
    files: int
    record: Mapping[str, object] | None = None


@dataclass(frozen=True)
class Listing:
    """A base path's versions, newest first, and its high-water mark.

    Attributes:
      base_path: the base path listed.
      versions: the rows, newest first.
      high_water_mark: the highest number ever used (0 when none recorded).
      endpoints: what each asked replica serves.
      model: the model name the replicas were asked about.
    """

    base_path: str
    versions: tuple[VersionRow, ...]
    high_water_mark: int
    endpoints: tuple[EndpointStatus, ...] = field(default_factory=tuple)
    model: str = ""


def version_state(
    complete: bool, marker: str | None, detail: str, record: Mapping[str, object] | None
) -> tuple[str, str]:
    """The listing's state of a version the completeness rule judged (not a broken one).

    Args:
      complete: the verdict (`bucket.Completeness.complete`).
      marker: the publish marker found, or None.
      detail: the verdict's description.
      record: the version's push record, when valid.

    Returns:
      (state, detail).
    """
    if complete:
        return PUBLISHED, ""
    if marker is None and record is not None:
        # The bucket writer's claim: the record comes first, the marker last.
        return UPLOADING, f"push record {record.get('status', '?')}, no publish marker yet"
    return INCOMPLETE, detail


def lineage(record: Mapping[str, object] | None) -> dict[str, object]:
    """Where a version came from, from its push record.

    Args:
      record: the push record, or None.

    Returns:
      {"run_id", "pushed_at", "metrics", "rollback_of", "checksum"}, each None when unknown.
    """
    record = record or {}
    metrics = record.get("metrics")
    return {
        "run_id": record.get("pipeline_run_id"),
        "pushed_at": record.get("pushed_at"),
        "metrics": dict(metrics) if isinstance(metrics, Mapping) and metrics else None,
        "rollback_of": record.get("rollback_of"),
        "checksum": record.get("checksum"),
    }


def describe_lineage(record: Mapping[str, object] | None) -> str:
    """The table's lineage column: "rollback of N", the run id and the metrics.

    Args:
      record: the version's push record, or None.

    Returns:
      e.g. "rollback of 1; run run-1; accuracy=0.9", or "no push record".
    """
    info = lineage(record)
    parts: list[str] = []
    if info["rollback_of"] is not None:
        parts.append(f"rollback of {info['rollback_of']}")
    if info["run_id"]:
        parts.append(f"run {info['run_id']}")
    if info["metrics"]:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in sorted(info["metrics"].items())[:3])
        parts.append(shown)
    if record is None:
        parts.append("no push record")
    return "; ".join(parts) or "-"


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _read_record(writer: BucketWriter, name: str, files: Mapping) -> dict | None:
    info = files.get(bucket.PUSH_RECORD_FILE)
    if info is None or info.size > bucket.MAX_PUSH_RECORD_BYTES:
        return None
    try:
        return dict(
            bucket.parse_push_record(
                writer.storage.read_file(name, bucket.PUSH_RECORD_FILE, info.size)
            ).raw
        )
    except ValueError:
        return None


def inspect_row(writer: BucketWriter, number: int, name: str) -> VersionRow:
    """Judges one version with the server's completeness rule.

    Args:
      writer: the base path's writer (its `storage` is the server's ModelStorage).
      number: the version number.
      name: its directory name.

    Returns:
      The row.

    Raises:
      StorageError: storage failed while looking.
    """
    storage = writer.storage
    try:
        inspection = storage.inspect_version(name)
    except ValueError as err:
        files = storage.list_version_files(name)
        return VersionRow(
            number,
            name,
            BROKEN,
            str(err),
            sum(info.size for info in files.values()),
            len(files),
            _read_record(writer, name, files),
        )
    files = inspection.files
    record = _read_record(writer, name, files)
    verdict = inspection.verdict
    state, detail = version_state(verdict.complete, verdict.marker, verdict.describe(), record)
    return VersionRow(
        number, name, state, detail, sum(i.size for i in files.values()), len(files), record
    )


def list_base_path(
    base_path: str, environ: Mapping[str, str] | None = None, timeout_seconds: float = 30.0
) -> Listing:
    """Lists and judges every version under a base path.

    Args:
      base_path: the model's base path (what the server's --model_base_path names).
      environ: the storage environment; defaults to `os.environ`.
      timeout_seconds: the deadline of each storage call.

    Returns:
      The listing, newest first.

    Raises:
      AdminError: the base path does not exist or storage refused (the message says what to
        fix).
    """
    try:
        writer = BucketWriter(base_path, environ=environ, timeout_seconds=timeout_seconds)
    except ValueError as err:
        raise AdminError(str(err)) from err
    try:
        versions = writer.storage.list_versions()
        rows = tuple(inspect_row(writer, n, versions[n]) for n in sorted(versions, reverse=True))
        mark = writer.read_high_water_mark()
    except StorageError as err:
        raise storage_failure(err, f"list the versions in {writer.url}", writer.url) from err
    except PushError as err:
        raise AdminError(str(err)) from err
    return Listing(writer.url, rows, mark)


def _endpoint_cell(status: EndpointStatus, version: int) -> str:
    if status.error:
        return "unreachable" if status.error.startswith("unreachable") else "error"
    state = status.states.get(version)
    return state if state is not None else "-"


def render_table(listing: Listing) -> str:
    """The human table: one line per version, newest first, one column per endpoint.

    Args:
      listing: what `list_base_path` found (with endpoint statuses when asked).

    Returns:
      The table text, ending with a summary line.
    """
    header = ["VERSION", "STATE", "SIZE", "FILES", "PUSHED AT", "LINEAGE"]
    header += [status.endpoint for status in listing.endpoints]
    lines = [header]
    for row in listing.versions:
        info = lineage(row.record)
        line = [
            str(row.version),
            row.state,
            human_bytes(row.size),
            str(row.files),
            str(info["pushed_at"] or "-"),
            describe_lineage(row.record) + (f" ({row.detail})" if row.detail else ""),
        ]
        line += [_endpoint_cell(status, row.version) for status in listing.endpoints]
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    published = [row.version for row in listing.versions if row.state == PUBLISHED]
    summary = (
        f"{listing.base_path}: {len(listing.versions)} versions, newest published "
        f"{published[0] if published else 'none'}, high-water mark {listing.high_water_mark}"
    )
    for status in listing.endpoints:
        if status.error:
            summary += f"\n{status.endpoint}: {status.error}"
        else:
            serving = status.serving
            summary += f"\n{status.endpoint} serves {listing.model} " + (
                ", ".join(map(str, serving)) if serving else "nothing"
            )
    if not listing.versions:
        return summary
    return "\n".join(text) + "\n" + summary


def as_json(listing: Listing) -> dict[str, object]:
    """The `--json` document: the same facts as the table, for scripts.

    Args:
      listing: what `list_base_path` found (with endpoint statuses when asked).

    Returns:
      A JSON-serializable dict: base_path, high_water_mark, versions (newest first), endpoints.
    """
    return {
        "base_path": listing.base_path,
        "high_water_mark": listing.high_water_mark,
        "versions": [
            {
                "version": row.version,
                "directory": row.name,
                "state": row.state,
                "detail": row.detail,
                "size_bytes": row.size,
                "files": row.files,
                **lineage(row.record),
            }
            for row in listing.versions
        ],
        "endpoints": [
            {
                "endpoint": status.endpoint,
                "model": listing.model,
                "serving": status.serving,
                "states": {str(v): s for v, s in sorted(status.states.items())},
                "error": status.error or None,
            }
            for status in listing.endpoints
        ],
    }
