"""A raw-socket HTTP/1.1 client for the attack suite (issue 12): sends what no well-behaved
client would, stops sending once the server answered, and reads answers byte-exactly."""

from __future__ import annotations

import re
import select
import socket
import time
from dataclasses import dataclass

_STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


@dataclass
class Answer:
    """What the server sent on one connection.

    Attributes:
      data: every byte received.
      seconds: from the first byte sent to the first status line received (or the end).
      bytes_sent: how much of the attack was sent before the answer (or the end).
      closed: the server closed the connection.
    """

    data: bytes
    seconds: float
    bytes_sent: int
    closed: bool

    @property
    def statuses(self) -> list[int]:
        return [int(status) for status in _STATUS.findall(self.data)]

    @property
    def body(self) -> bytes:
        return self.data.partition(b"\r\n\r\n")[2]


def connect(host: str, port: int, timeout: float = 10) -> socket.socket:
    """A TCP connection to host:port."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _readable(sock: socket.socket, seconds: float) -> bool:
    return bool(select.select([sock], [], [], seconds)[0])


def send_until_answered(
    sock: socket.socket,
    first: bytes,
    piece: bytes = b"",
    max_bytes: int = 0,
    time_limit: float = 30,
) -> Answer:
    """Sends `first`, then `piece` over and over (up to `max_bytes`), until the server answers.

    Args:
      sock: a connected socket.
      first: the attack's first bytes.
      piece: what is repeated after it (b"": nothing).
      max_bytes: the most bytes sent in all.
      time_limit: seconds before giving up.

    Returns:
      The answer, read until the server closed or a whole response arrived.
    """
    started = time.monotonic()
    sent = 0
    data = bytearray()
    closed = False
    pending = memoryview(first)
    sock.setblocking(False)
    try:
        while time.monotonic() - started < time_limit:
            readable, writable, _ = select.select(
                [sock], [sock] if pending or (piece and sent < max_bytes) else [], [], 0.05
            )
            if readable:
                try:
                    chunk = sock.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                    closed = True
                    break
                if not chunk:
                    closed = True
                    break
                data += chunk
                if _STATUS.search(data):
                    break
            if writable:
                if not pending:
                    pending = memoryview(piece)
                try:
                    count = sock.send(pending)
                except (BlockingIOError, InterruptedError):
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    closed = True
                    break
                sent += count
                pending = pending[count:]
        seconds = time.monotonic() - started
        data, closed = _read_rest(sock, data, closed, time_limit)
    finally:
        sock.setblocking(True)
    return Answer(bytes(data), seconds, sent, closed)


def _complete(data: bytearray) -> bool:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    match = re.search(rb"(?i)content-length: (\d+)", data[:end])
    return match is not None and len(data) - end - 4 >= int(match.group(1))


def _read_rest(
    sock: socket.socket, data: bytes, closed: bool, seconds: float
) -> tuple[bytes, bool]:
    deadline = time.monotonic() + seconds
    while not closed and not _complete(data) and time.monotonic() < deadline:
        if not _readable(sock, 0.1):
            continue
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, closed


def wait_closed(sock: socket.socket, seconds: float) -> tuple[bytes, float | None]:
    """Reads until the server closes the connection.

    Returns:
      (what was received, seconds until the close or None if it stayed open).
    """
    started = time.monotonic()
    data = b""
    while time.monotonic() - started < seconds:
        if not _readable(sock, 0.1):
            continue
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return data, time.monotonic() - started
        if not chunk:
            return data, time.monotonic() - started
        data += chunk
    return data, None


def predict_request(host: str, model: str, body: bytes) -> bytes:
    """A keep-alive POST of `body` to the model's predict endpoint."""
    return (
        b"POST /v1/models/%s:predict HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (model.encode(), host.encode(), len(body), body)
    )
