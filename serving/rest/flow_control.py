"""Read and write back-pressure for one HTTP/1.1 connection (issue 12).

Reading pauses for any of three reasons and resumes only when none holds: too many requests
queued on the connection (pipelining cap), the bodies of requests not yet answered over the
connection's budget (a request body's limit in all), or the transport's write buffer above its
high-water mark (asyncio called `pause_writing`: the peer does not read its responses). While writing is
paused no further response is written, so a peer that never reads costs at most the transport's
buffer plus the responses already queued, and no new request is parsed for it.
"""

from __future__ import annotations

import asyncio


class FlowControl:
    """Tracks why reading is paused and whether writing may go on.

    Args:
      transport: the connection's transport (pause_reading / resume_reading are called on it).
    """

    __slots__ = ("_transport", "_queue_full", "bodies_held", "writing_paused")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._queue_full = False
        # True while unanswered requests' bodies fill the connection's budget.
        self.bodies_held = False
        # True between the transport's pause_writing and resume_writing.
        self.writing_paused = False

    @property
    def reading_paused(self) -> bool:
        """Whether reading is paused for any reason."""
        return self._queue_full or self.bodies_held or self.writing_paused

    def queue_full(self) -> None:
        """The connection holds as many requests as it may: stop reading."""
        if not self._queue_full:
            was_paused = self.reading_paused
            self._queue_full = True
            if not was_paused:
                self._pause_reading()

    def queue_drained(self) -> None:
        """The request queue is below its cap again: read unless writing is paused."""
        if self._queue_full:
            self._queue_full = False
            if not self.reading_paused:
                self._resume_reading()

    def bodies_full(self) -> None:
        """Unanswered requests' bodies fill the connection's budget: stop reading."""
        if not self.bodies_held:
            was_paused = self.reading_paused
            self.bodies_held = True
            if not was_paused:
                self._pause_reading()

    def bodies_drained(self) -> None:
        """Answers released enough bodies: read unless something else holds reading."""
        if self.bodies_held:
            self.bodies_held = False
            if not self.reading_paused:
                self._resume_reading()

    def pause_writing(self) -> None:
        """The transport's buffer is over its high-water mark: stop writing and reading."""
        if not self.writing_paused:
            was_paused = self.reading_paused
            self.writing_paused = True
            if not was_paused:
                self._pause_reading()

    def resume_writing(self) -> None:
        """The transport's buffer drained below its low-water mark."""
        if self.writing_paused:
            self.writing_paused = False
            if not self.reading_paused:
                self._resume_reading()

    def _pause_reading(self) -> None:
        if not self._transport.is_closing():
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if not self._transport.is_closing():
            self._transport.resume_reading()
