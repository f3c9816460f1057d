"""One periodic sweep enforcing every connection's deadline (issue 12).

A timer per connection re-armed per request costs a `call_later` and a `cancel` (~1.5 us, 10%
of a pipelined request through the protocol); here a connection only stores a deadline (a float)
on the request path, and one timer per server compares the deadlines of its open connections a
few times per second. Deadlines are computed from the sweeper's coarse clock (`now`, refreshed
each sweep), so a timeout fires up to one sweep interval late, which is nothing next to 60 s.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

NEVER = math.inf


class TimedConnection(Protocol):
    """What the sweeper needs of a connection."""

    deadline: float

    def on_deadline(self, now: float) -> None:
        """Called once `deadline` has passed (the connection sets a new one or closes)."""


class TimeoutSweeper:
    """Checks the deadlines of registered connections every `interval` seconds.

    Args:
      loop: the event loop (its clock is used); None for a sweeper driven by hand in tests.
      interval: seconds between two sweeps.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None, interval: float = 0.5) -> None:
        self._loop = loop
        self.interval = interval
        self.now = loop.time() if loop is not None else 0.0
        # Insertion-ordered and O(1) to add and remove (a dict used as an ordered set).
        self._connections: dict[TimedConnection, None] = {}
        self._handle: asyncio.TimerHandle | None = None

    def add(self, connection: TimedConnection) -> None:
        """Starts watching `connection` (the timer runs only while there is one)."""
        self._connections[connection] = None
        if self._loop is not None:
            self.now = self._loop.time()
            if self._handle is None:
                self._handle = self._loop.call_later(self.interval, self._tick)

    def discard(self, connection: TimedConnection) -> None:
        """Stops watching `connection`."""
        self._connections.pop(connection, None)

    def sweep(self, now: float) -> None:
        """Calls `on_deadline` of every connection whose deadline is at or before `now`.

        Args:
          now: the current time on the loop's clock.
        """
        self.now = now
        expired = [c for c in self._connections if c.deadline <= now]
        for connection in expired:
            connection.on_deadline(now)

    def _tick(self) -> None:
        assert self._loop is not None
        self._handle = None
        self.sweep(self._loop.time())
        if self._connections:
            self._handle = self._loop.call_later(self.interval, self._tick)

    def close(self) -> None:
        """Stops the timer."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
