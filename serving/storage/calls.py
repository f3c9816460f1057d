"""Every storage call with a deadline, a log line when it is slow or failing, and a count.

A LIST held for 80 s used to block the poll thread without a word (issue 13: s3fs retried
quietly every ~15 s). Here each call runs on a small shared pool and the caller waits at most
its timeout; a call still running after `slow_after` seconds is logged at once, and failures are
logged the first time at once and then at most once a minute per base path and kind, with the
number of calls that failed in between.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from tfrelay.serving.storage import errors

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 60.0
# Copies get the base timeout plus the time this throughput needs for the file's size, so a big
# variables shard is not cut off while a hung connection still is.
MIN_COPY_BYTES_PER_SECOND = 4 * 1024 * 1024
# Repeated failures of one kind on one base path are logged at most this often.
LOG_INTERVAL_SECONDS = 60.0
# Calls of one base path abandoned at their timeout and still running; beyond this many, new
# calls fail at once instead of taking more of the shared threads from healthy base paths.
MAX_HANGING_CALLS = 4

# Storage calls of every model share these threads. A call that outlives its timeout keeps its
# thread until the client library gives up (botocore's read_timeout is set to the same value);
# 32 leaves room for several hung calls without starving the others.
_POOL = ThreadPoolExecutor(32, thread_name_prefix="tfrelay-storage")


def copy_timeout(base_timeout: float, size: int) -> float:
    """The deadline for copying one file of `size` bytes.

    Args:
      base_timeout: the timeout of a small call (LIST, HEAD), `--storage_timeout_seconds`.
      size: the file's size in bytes.

    Returns:
      Seconds.
    """
    return base_timeout + size / MIN_COPY_BYTES_PER_SECOND


class StorageCalls:
    """Runs one base path's storage calls with timeouts, logs and error counters.

    Args:
      where: the base path, for log lines.
      timeout_seconds: the deadline of a small call; <= 0 waits forever.
      clock: monotonic clock.
    """

    def __init__(
        self,
        where: str,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.where = where
        self.timeout_seconds = timeout_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self.error_counts: dict[str, int] = {}
        self.slow_calls = 0
        self._hanging = 0
        # kind -> (when last logged, failures since then)
        self._last_logged: dict[str, tuple[float, int]] = {}

    def run(self, doing: str, fn: Callable[[], T], timeout: float | None = None) -> T:
        """Calls `fn` on a storage thread and waits for it at most `timeout` seconds.

        Args:
          doing: what the call does, e.g. "list s3://b/m" (log lines and errors say it).
          fn: the call.
          timeout: its deadline; defaults to `timeout_seconds`.

        Returns:
          What `fn` returned.

        Raises:
          StorageError: `fn` raised (classified by `errors.classify`) or timed out.
        """
        timeout = self.timeout_seconds if timeout is None else timeout
        with self._lock:
            hanging = self._hanging
        if hanging >= MAX_HANGING_CALLS:
            error = errors.StorageError(
                f"Could not {doing} ({errors.TIMEOUT}): {hanging} earlier calls to {self.where} "
                "are still hanging past --storage_timeout_seconds; not starting another",
                errors.TIMEOUT,
            )
            self._record_failure(error)
            raise error
        started = self._clock()
        future = _POOL.submit(fn)
        slow_after = max(1.0, timeout / 4) if timeout > 0 else 10.0
        try:
            try:
                return future.result(
                    timeout=min(slow_after, timeout) if timeout > 0 else slow_after
                )
            except FutureTimeout:
                if self._should_log("slow"):
                    logger.warning(
                        "Storage is slow: %s has taken %.0fs so far (timeout %s); loaded versions "
                        "keep serving meanwhile",
                        doing,
                        self._clock() - started,
                        f"{timeout:g}s" if timeout > 0 else "none",
                    )
                remaining = None if timeout <= 0 else max(0.0, timeout - (self._clock() - started))
                return future.result(timeout=remaining)
        except FutureTimeout:
            if not future.cancel():
                with self._lock:
                    self._hanging += 1
                future.add_done_callback(self._hung_call_ended)
            error = errors.StorageError(
                f"Could not {doing} ({errors.TIMEOUT}): no answer within {timeout:g}s "
                "(--storage_timeout_seconds)",
                errors.TIMEOUT,
            )
            self._record_failure(error)
            raise error from None
        except errors.StorageError as err:
            self._record_failure(err)
            raise
        except Exception as err:
            error = errors.as_storage_error(err, doing)
            self._record_failure(error)
            raise error from err

    def _hung_call_ended(self, _future: object) -> None:
        with self._lock:
            self._hanging -= 1

    def record(self, error: errors.StorageError) -> None:
        """Counts and logs a storage failure detected outside `run` (e.g. a copy mismatch)."""
        self._record_failure(error)

    def _should_log(self, key: str) -> bool:
        """Counts an event; True when it should be logged (the first, then once a minute)."""
        now = self._clock()
        with self._lock:
            if key == "slow":
                self.slow_calls += 1
            last = self._last_logged.get(key)
            if last is not None and now - last[0] < LOG_INTERVAL_SECONDS:
                self._last_logged[key] = (last[0], last[1] + 1)
                return False
            self._last_logged[key] = (now, 0)
            return True

    def _record_failure(self, error: errors.StorageError) -> None:
        now = self._clock()
        with self._lock:
            self.error_counts[error.kind] = self.error_counts.get(error.kind, 0) + 1
            last = self._last_logged.get(error.kind)
            if last is not None and now - last[0] < LOG_INTERVAL_SECONDS:
                self._last_logged[error.kind] = (last[0], last[1] + 1)
                return
            suppressed = last[1] if last is not None else 0
            self._last_logged[error.kind] = (now, 0)
        more = (
            f" ({suppressed} more {error.kind} errors since the last report)" if suppressed else ""
        )
        logger.warning("Storage error on %s: %s%s", self.where, error.message, more)

    def errors_by_kind(self) -> dict[str, int]:
        """{kind: failures so far} (for the storage_errors metric)."""
        with self._lock:
            return dict(self.error_counts)
