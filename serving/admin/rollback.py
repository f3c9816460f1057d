"""`tfrelay models rollback BASE_PATH --to N`: serve version N's model again, as a new version.

A rollback never deletes or rewrites a version: it republishes version N's files as the next
version number (above the high-water mark) through the bucket contract's writer
(`BucketWriter.publish_files`: claim, files, final record, publish marker last), copying them
server-side (`BucketWriter.copy_file`). Every replica polling the base path finds a new, higher
version and swaps to it as it would to any push: no restart, no config change, no replica left
behind on a number it already loaded.

Idempotent: the publication's key is "rollback-of-N/<N's checksum>", so a retry after a crash
resumes its own unpublished claim, and once the newest published version holds N's checksum
(this rollback succeeded, or N is newest already) nothing is done.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from tfrelay.serving.admin.errors import AdminError, storage_failure
from tfrelay.serving.storage import bucket
from tfrelay.serving.storage.bucket_writer import BucketWriter
from tfrelay.serving.storage.errors import StorageError
from tfrelay.serving.storage.publication import Publication, PushError

logger = logging.getLogger(__name__)

# Copied from the original record: who trained the model and why it was good. The writer's own
# fields (version, files, status, ...) are written afresh, and "pusher" says who wrote this copy.
_WRITER_FIELDS = frozenset(
    {
        "model_name",
        "version",
        "pushed_at",
        "status",
        "checksum",
        "idempotency_key",
        "files",
        "pusher",
    }
)


@dataclass(frozen=True)
class Source:
    """The version a rollback republishes.

    Attributes:
      version: its number.
      name: its directory name.
      files: {relative path: size}, the push record excluded.
      checksum: the model's checksum (from its record, or computed from its files).
      record: its push record, or None when another tool wrote it.
    """

    version: int
    name: str
    files: dict[str, int]
    checksum: str
    record: Mapping[str, object] | None


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback did.

    Attributes:
      source: the version rolled back to.
      publication: what the writer did (`already_published` when nothing was needed).
    """

    source: Source
    publication: Publication

    def describe(self) -> str:
        """The one result line `tfrelay models rollback` prints."""
        published = self.publication
        n = self.source.version
        if published.already_published:
            return (
                f"nothing to do: version {published.version} at {published.destination} already "
                f"holds version {n}'s model (checksum {self.source.checksum}); every replica "
                "polling the base path serves it once loaded."
            )
        resumed = " (resumed an interrupted rollback)" if published.resumed else ""
        return (
            f"rolled back: version {published.version} at {published.destination} now holds "
            f"version {n}'s model{resumed}; replicas polling the base path load it within one "
            "--file_system_poll_wait_seconds plus its load time."
        )


def idempotency_run_id(version: int) -> str:
    """What retries of "roll back to `version`" share (with the checksum: the idempotency key).

    Args:
      version: the version rolled back to.

    Returns:
      "rollback-of-<version>", the `run_id` given to `BucketWriter.publish_files`.
    """
    return f"rollback-of-{version}"


def rollback_description(source: Source) -> dict[str, object]:
    """The new push record's lineage fields: the original's, and "rollback_of".

    Args:
      source: the version rolled back to.

    Returns:
      Fields for `BucketWriter.publish_files(description=...)`.
    """
    original = dict(source.record or {})
    description = {k: v for k, v in original.items() if k not in _WRITER_FIELDS}
    description["rollback_of"] = source.version
    # The first version of a chain of rollbacks: what was actually trained and pushed.
    description["original_version"] = original.get("original_version", source.version)
    description["original_pushed_at"] = original.get(
        "original_pushed_at", original.get("pushed_at")
    )
    description["selection_reason"] = (
        f"rollback of version {source.version} with `tfrelay models rollback`"
    )
    return description


def _missing_version_error(base_path: str, version: int, versions: Mapping[int, str]) -> AdminError:
    present = ", ".join(map(str, sorted(versions))) or "none"
    return AdminError(
        f"version {version} does not exist in {base_path} (versions present: {present}). "
        f"Pick one with `tfrelay models list {base_path}`."
    )


def find_source(writer: BucketWriter, version: int) -> Source:
    """Finds version `version` and checks the server would serve it.

    Args:
      writer: the base path's writer.
      version: the version to roll back to.

    Returns:
      Its files and checksum.

    Raises:
      AdminError: it does not exist, is not published (incomplete, uploading, broken) or
        storage failed.
    """
    try:
        versions = writer.list_versions()
        if version not in versions:
            raise _missing_version_error(writer.url, version, versions)
        name = versions[version]
        try:
            inspection = writer.storage.inspect_version(name)
        except ValueError as err:
            raise AdminError(
                f"version {version} at {writer.version_url(name)} is broken ({err}); no server "
                "serves it, so it cannot be rolled back to. Pick a published version with "
                f"`tfrelay models list {writer.url}`."
            ) from err
        if not inspection.verdict.complete:
            raise AdminError(
                f"version {version} at {writer.version_url(name)} is not published "
                f"({inspection.verdict.describe()}); rolling back to it would serve nothing. "
                f"Pick a published version with `tfrelay models list {writer.url}`."
            )
        files = {
            path: info.size
            for path, info in inspection.files.items()
            if path != bucket.PUSH_RECORD_FILE
        }
        record_state = writer.inspect(version, name)
        record = record_state.record
        checksum = record.get("checksum") if record else None
        if not isinstance(checksum, str) or not checksum.startswith("sha256:"):
            # Written by another tool: name its content as the pusher would, reading it from
            # the bucket a chunk at a time.
            logger.info("Version %d has no checksum in a push record; computing it", version)
            root = writer.path(name)
            checksum = bucket.checksum_of(
                files, lambda relative: writer.fs.open(f"{root}/{relative}", "rb")
            )
    except AdminError:
        raise
    except (StorageError, OSError) as err:
        raise storage_failure(err, f"read version {version} in {writer.url}", writer.url) from err
    return Source(version, name, files, checksum, record)


def rollback(
    base_path: str,
    version: int,
    environ: Mapping[str, str] | None = None,
    timeout_seconds: float = 30.0,
) -> RollbackResult:
    """Republishes version `version`'s files as the next version of `base_path`.

    Args:
      base_path: the model's base path.
      version: the version to serve again.
      environ: the storage environment; defaults to `os.environ`.
      timeout_seconds: the deadline of each listing and small read.

    Returns:
      What was done (nothing when the newest published version already holds that model).

    Raises:
      AdminError: the version is missing or unpublished, permission was refused, or storage
        failed; nothing half-written is ever published, and the same command resumes.
    """
    try:
        writer = BucketWriter(base_path, environ=environ, timeout_seconds=timeout_seconds)
    except ValueError as err:
        raise AdminError(str(err)) from err
    source = find_source(writer, version)
    record = source.record or {}
    model_name = str(record.get("model_name") or writer.url.rsplit("/", 1)[-1])
    try:
        publication = writer.publish_files(
            source.files,
            source.checksum,
            model_name,
            lambda name, relative: writer.copy_file(source.name, relative, name),
            source=writer.version_url(source.name),
            run_id=idempotency_run_id(version),
            description=rollback_description(source),
        )
    except PushError as err:
        if err.__cause__ is None:  # the writer's own finding (a mark to restore, a race)
            raise AdminError(str(err)) from err
        raise storage_failure(
            err, f"roll back {writer.url} to version {version}", writer.url
        ) from err
    return RollbackResult(source, publication)
