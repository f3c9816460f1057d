"""Drives one `HttpProtocol` in memory (the HTTP/1.1 unit tests, issue 12): bytes in through
`data_received`, bytes out from a fake transport, time moved by hand through its sweeper."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

from support.fake_transport import FakeTransport, connect
from tfrelay.serving.net.timeouts import TimeoutSweeper
from tfrelay.serving.rest.http_server import HttpProtocol, Request
from tfrelay.serving.rest.limits import DEFAULT_LIMITS, HttpLimits

MAX_BODY = 1024


class HalfClosingTransport(FakeTransport):
    """A fake transport that, like a TCP socket, can send EOF while still reading."""

    def __init__(self) -> None:
        super().__init__()
        self.eof_written = False

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True


class Connection:
    """One protocol on a fake transport, with its own event loop and a hand-driven clock.

    Args:
      limits: the protocol's limits (fields given as keywords override the defaults).
      transport: the fake transport to use.
      handler: answers requests instead of the echo handler (records nothing in `started`).
      **overrides: HttpLimits fields.

    Attributes:
      started: the requests the handler was called with, in order.
      hold: while set (not None), handlers wait on it before answering.
    """

    def __init__(
        self,
        limits: HttpLimits = DEFAULT_LIMITS,
        transport: FakeTransport | None = None,
        handler=None,
        **overrides,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.started: list[Request] = []
        self.hold: asyncio.Event | None = None
        self.sweeper = TimeoutSweeper(None)
        self.protocol = HttpProtocol(
            handler or self._handler,
            MAX_BODY,
            _too_large,
            replace(limits, **overrides),
            self.sweeper,
        )
        self.transport = connect(self.protocol, transport)
        self.run()

    async def _handler(self, request: Request):
        self.started.append(request)
        if self.hold is not None:
            await self.hold.wait()
        body = b"%s %s %d" % (
            request.method.encode(),
            request.path_and_query.encode(),
            len(request.body),
        )
        return 200, [(b"content-type", b"text/plain")], body

    def run(self) -> None:
        """Lets every ready task and callback run."""
        for _ in range(5):
            self.loop.run_until_complete(asyncio.sleep(0))

    def send(self, data: bytes) -> bytes:
        """Feeds `data`, runs the loop, returns what the protocol wrote."""
        self.protocol.data_received(data)
        self.run()
        return self.transport.take()

    def advance(self, seconds: float) -> bytes:
        """Moves the clock on by `seconds`, runs due deadlines, returns what was written."""
        self.sweeper.sweep(self.sweeper.now + seconds)
        self.run()
        return self.transport.take()

    def release(self) -> bytes:
        """Lets held handlers answer; returns what was written."""
        assert self.hold is not None
        self.hold.set()
        self.hold = None
        self.run()
        return self.transport.take()

    def lingers_then_closes(self) -> bool:
        """Whether a refused connection stays open, dropping input, for linger_seconds and
        then closes (on any transport: TLS cannot half-close, and lingers too, issue 12)."""
        if self.transport.closed or not self.protocol._closing:
            return False
        self.advance(self.protocol._limits.linger_seconds / 2)
        if self.transport.closed:
            return False
        self.advance(self.protocol._limits.linger_seconds)
        return self.transport.closed

    def close(self) -> None:
        self.loop.close()
        asyncio.set_event_loop(None)


def _too_large(limit: int):
    return 413, [(b"content-type", b"application/json")], b'{"error": "too large"}'


def get(path: bytes = b"/", headers: bytes = b"") -> bytes:
    """A GET request with a Host header and `headers` (CRLF-terminated lines)."""
    return b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"


def post(body: bytes, path: bytes = b"/p") -> bytes:
    """A POST request with a Content-Length body."""
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (path, len(body), body)


def statuses(data: bytes) -> list[int]:
    """The status codes of the responses in `data`, in order."""
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


class SlowReaderTransport(FakeTransport):
    """A fake transport whose peer reads only when told: like asyncio's, it calls the
    protocol's pause_writing past its high-water mark and resume_writing once drained."""

    HIGH_WATER = 64 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.most_buffered = 0
        self._paused = False

    def write(self, data) -> None:
        super().write(data)
        self.most_buffered = max(self.most_buffered, len(self.written))
        if len(self.written) > self.HIGH_WATER and not self._paused and self._protocol:
            self._paused = True
            self._protocol.pause_writing()  # type: ignore[attr-defined]

    def drain(self) -> bytes:
        """The peer reads everything buffered; the protocol may write more."""
        data = self.take()
        if self._paused and self._protocol:
            self._paused = False
            self._protocol.resume_writing()  # type: ignore[attr-defined]
        return data
