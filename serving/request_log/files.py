"""The rotated TFRecord files of one `filename_prefix`: a reader of the prefix only ever sees whole
files.

A file is written under a temporary name and appears under its final name when it is closed:
on rotation (size or age), on a config change, and on shutdown. A local prefix gets the final
name by `os.replace`, in the same directory. A bucket prefix is written to a local spool file and
uploaded whole when it closes (one PUT: object stores show an object whole or not at all), with
the storage layer's deadline; an upload that fails twice loses that file's records, counted.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from tfrelay.serving.storage.calls import StorageCalls, copy_timeout
from tfrelay.serving.storage.filesystem import filesystem_for, is_local, split_url

logger = logging.getLogger(__name__)

TEMP_SUFFIX = ".tfrelay-partial"
_UPLOAD_ATTEMPTS = 2


@dataclass(frozen=True)
class RotationPolicy:
    """When a log file is closed and the next one opened.

    Attributes:
      max_bytes: a file is closed once it holds at least this many bytes.
      max_seconds: a file is closed this long after it was opened, however small.
    """

    max_bytes: int
    max_seconds: float


@dataclass(frozen=True)
class ClosedFile:
    """A file that was closed: where it ended and what it held.

    Attributes:
      url: its final name ("" when it was lost).
      records: the records it held.
      size: its bytes.
      error: why it was lost, or "".
    """

    url: str
    records: int
    size: int
    error: str = ""


class LogFiles:
    """Writes framed records to the rotated files of one prefix (one writer thread calls it).

    Args:
      prefix: `filename_prefix`: a local path prefix or a bucket URL prefix.
      policy: when files rotate.
      spool_dir: where bucket-bound files are written before their upload.
      storage_timeout_seconds: `--storage_timeout_seconds`, the deadline of an upload's first
        megabyte (larger files get proportionally longer, as model copies do).
      on_closed: told about every closed file (metrics).
      clock: seconds, monotonic.
    """

    def __init__(
        self,
        prefix: str,
        policy: RotationPolicy,
        spool_dir: str,
        storage_timeout_seconds: float,
        on_closed: Callable[[ClosedFile], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prefix = prefix
        self._policy = policy
        self._spool_dir = spool_dir
        self._timeout = storage_timeout_seconds
        self._on_closed = on_closed
        self._clock = clock
        self._local = is_local(prefix)
        self._calls = StorageCalls(prefix, storage_timeout_seconds)
        self._sequence = itertools.count()
        self._file = None
        self._final = ""
        self._temporary = ""
        self._opened_at = 0.0
        self._records = 0
        self._size = 0

    def write(self, chunks: list[tuple[bytes, int]]) -> None:
        """Appends chunks of framed records, opening a file first if none is open and closing it
        once it holds `max_bytes` (a file may pass it by its last chunk; consecutive chunks go out
        in one write call).

        Args:
          chunks: (framed records, how many), in order.

        Raises:
          OSError: the local file could not be opened or written (the caller counts the records
            as lost; the next write tries a new file).
        """
        start = 0
        while start < len(chunks):
            if self._file is None:
                self._open()
            room = self._policy.max_bytes - self._size
            end, taken, records = start, 0, 0
            while end < len(chunks) and (taken < room or end == start):
                taken += len(chunks[end][0])
                records += chunks[end][1]
                end += 1
            try:
                self._file.write(b"".join(data for data, _ in chunks[start:end]))
            except OSError:
                self._abandon()
                raise
            self._records += records
            self._size += taken
            if self._size >= self._policy.max_bytes:
                self.close()
            start = end

    def rotate_if_due(self) -> None:
        """Closes the open file when it is older than the policy allows."""
        if self._file is not None and self._clock() - self._opened_at >= self._policy.max_seconds:
            self.close()

    def close(self) -> None:
        """Closes the open file, if any, and gives it its final name (or uploads it)."""
        if self._file is None:
            return
        file, self._file = self._file, None
        records, size = self._records, self._size
        try:
            file.close()
            if self._local:
                os.replace(self._temporary, self._final)
            else:
                self._upload(self._temporary, self._final, size)
                os.remove(self._temporary)
        except Exception as err:  # noqa: BLE001 (a lost file must not stop the log: count it)
            logger.warning("Request log file %s was lost: %s", self._final, err)
            self._remove_temporary()
            self._on_closed(ClosedFile("", records, size, f"{type(err).__name__}: {err}"))
            return
        self._on_closed(ClosedFile(self._final, records, size))

    def _open(self) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        name = (
            f"{self.prefix}-{stamp}-{socket.gethostname()}-{os.getpid()}-"
            f"{next(self._sequence):05d}.tfrecord"
        )
        if self._local:
            path = split_url(name)[1]
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            self._final, self._temporary = path, path + TEMP_SUFFIX
        else:
            os.makedirs(self._spool_dir, exist_ok=True)
            handle, self._temporary = tempfile.mkstemp(
                prefix="request-log-", suffix=TEMP_SUFFIX, dir=self._spool_dir
            )
            os.close(handle)
            self._final = name
        self._file = open(self._temporary, "wb")
        self._opened_at = self._clock()
        self._records = 0
        self._size = 0

    def _upload(self, local: str, url: str, size: int) -> None:
        filesystem = filesystem_for(url, timeout_seconds=self._timeout)
        target = split_url(url)[1]
        for attempt in range(1, _UPLOAD_ATTEMPTS + 1):
            try:
                self._calls.run(
                    f"upload the request log {url}",
                    lambda: filesystem.put_file(local, target),
                    timeout=copy_timeout(self._timeout, size),
                )
                return
            except Exception:
                if attempt == _UPLOAD_ATTEMPTS:
                    raise
                time.sleep(0.5)

    def _abandon(self) -> None:
        file, self._file = self._file, None
        try:
            file.close()
        except OSError:
            pass
        self._remove_temporary()
        self._on_closed(ClosedFile("", self._records, self._size, "write failed"))

    def _remove_temporary(self) -> None:
        try:
            os.remove(self._temporary)
        except OSError:
            pass
