"""Reference-counted handles: the request path's view of a loaded version.

A request acquires a handle, runs, and releases it. Unloading first hides the version from new
lookups, then retires the handle and waits until the last in-flight request releases it, so every
request finishes on the version it started on (TF Serving's ServableHandle semantics).
"""

from __future__ import annotations

import threading

from tfrelay.serving.servables.base import Servable


class LoadedVersion:
    """A loaded servable plus its in-flight request count."""

    __slots__ = ("servable", "version", "_lock", "_in_flight", "_retired", "_drained")

    def __init__(self, servable: Servable) -> None:
        self.servable = servable
        self.version = servable.version
        self._lock = threading.Lock()
        self._in_flight = 0
        self._retired = False
        self._drained = threading.Event()

    def acquire(self) -> bool:
        """Counts a request in. Returns False once the version is retired (look it up again)."""
        with self._lock:
            if self._retired:
                return False
            self._in_flight += 1
            return True

    def release(self) -> None:
        """Counts a request out."""
        with self._lock:
            self._in_flight -= 1
            if self._retired and self._in_flight == 0:
                self._drained.set()

    def __enter__(self) -> Servable:
        return self.servable

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def retire_and_wait(self, timeout: float | None = None) -> bool:
        """Refuses new acquisitions and waits for in-flight requests to finish.

        Args:
          timeout: seconds to wait at most; None waits as long as it takes.

        Returns:
          Whether all in-flight requests finished.
        """
        with self._lock:
            self._retired = True
            if self._in_flight == 0:
                self._drained.set()
        return self._drained.wait(timeout)
