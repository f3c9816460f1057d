"""Reading a configuration file named by a flag, from a local path or the bucket, bounded.

`--model_config_file` may live in the bucket and is re-read every
`--model_config_file_poll_wait_seconds` (issue 12: every byte the bucket sends reaches a limit).
A ModelServerConfig of 1,000 models with labels and policies is ~150 kB, so 4 MiB leaves room for
any real fleet while a wrong object (a SavedModel, a log) is refused with a message instead of
being read whole into memory on every poll.
"""

from __future__ import annotations

MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024


class ConfigFileError(ValueError):
    """A configuration file that cannot be read; the message names the file and what to do."""


def read_config_text(
    path: str, max_bytes: int = MAX_CONFIG_FILE_BYTES, timeout_seconds: float | None = None
) -> str:
    """The UTF-8 text of a configuration file, read through the storage layer.

    The read has a deadline like every other storage call (`StorageCalls`): a bucket that hangs
    no longer holds the config reload forever (issue 13 review).

    Args:
      path: local path or any supported storage URL (s3://, gs://).
      max_bytes: larger files are refused without reading past the limit.
      timeout_seconds: the read's deadline; None: the storage default (60 s).

    Returns:
      The file's text.

    Raises:
      ConfigFileError: unreadable, not UTF-8, or larger than `max_bytes`.
    """
    from tfrelay.serving.storage.calls import DEFAULT_TIMEOUT_SECONDS, StorageCalls
    from tfrelay.serving.storage.errors import StorageError
    from tfrelay.serving.storage.filesystem import filesystem_for, split_url

    timeout = DEFAULT_TIMEOUT_SECONDS if timeout_seconds is None else timeout_seconds

    def read() -> bytes:
        with fs.open(split_url(path)[1], "rb") as f:
            return f.read(max_bytes + 1)

    try:
        fs = filesystem_for(path, timeout_seconds=timeout)
        try:
            data = StorageCalls(path, timeout).run(f"read {path}", read)
        except StorageError as err:
            raise ConfigFileError(f"cannot read {path}: {err.message}") from err
        if len(data) > max_bytes:
            raise ConfigFileError(
                f"{path} is larger than {max_bytes} bytes, the limit for a configuration file; "
                "check that the flag names the config file and not another object"
            )
        return data.decode("utf-8")
    except (OSError, ValueError, UnicodeDecodeError) as err:
        if isinstance(err, ConfigFileError):
            raise
        raise ConfigFileError(f"cannot read {path}: {err}") from err
