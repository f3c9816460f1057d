"""Attack: slowloris on the gRPC port (issue 12 review), over real sockets against
`UnaryGrpcServer` with short time limits (the defaults, 10 s and 60 s, are too long for a
test): a connection that never sends its preface, a partial frame, and a half-open stream are
each ended, and the connection keeps serving other calls."""

from __future__ import annotations

import socket

import pytest

from support import raw_h2
from support.raw_h2 import RawClient, frame, goaway_seen, grpc_message
from support.servers import LOOPBACK
from support.unary_grpc_servers import unary_grpc_server
from tfrelay.serving.grpc.http2_limits import Http2Limits

# The sweep runs once a second: an end is expected within a few seconds of these.
LIMITS = Http2Limits(preface_timeout=0.5, request_timeout=1.0)
WAIT = 15.0


@pytest.fixture
def server():
    """An UnaryGrpcServer answering /test.Echo/Echo, on a loop in a thread."""

    async def echo(request: bytes, context) -> bytes:
        return request

    with unary_grpc_server("test.Echo", "Echo", echo, LIMITS) as grpc_server:
        yield grpc_server


def _closed_by_server(sock: socket.socket) -> bytes:
    """What the server sent until it closed the connection (fails after `WAIT` s)."""
    sock.settimeout(WAIT)
    received = b""
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return received
        received += chunk


def test_a_connection_that_never_sends_its_preface_is_closed(server):
    with socket.create_connection((LOOPBACK, server.port), timeout=WAIT) as sock:
        sock.sendall(raw_h2.PREFACE[:5])
        received = _closed_by_server(sock)
    kinds, pos = [], 0
    while pos + 9 <= len(received):  # the server's frames: SETTINGS, WINDOW_UPDATE, GOAWAY
        kinds.append(received[pos + 3])
        pos += 9 + int.from_bytes(received[pos : pos + 3], "big")
    assert kinds[-1] == raw_h2.GOAWAY


def test_a_partial_frame_that_stalls_is_a_goaway(server):
    client = RawClient(LOOPBACK, server.port)
    client.send(frame(raw_h2.HEADERS, raw_h2.END_HEADERS, 1, client.request_headers())[:12])
    client.read_until(goaway_seen, timeout=WAIT)
    client.close()
    assert client.goaway()[1] == raw_h2.PROTOCOL_ERROR


def test_a_half_open_stream_is_cancelled_and_the_connection_still_serves(server):
    client = RawClient(LOOPBACK, server.port)
    client.send(frame(raw_h2.HEADERS, raw_h2.END_HEADERS, 1, client.request_headers(
        "/test.Echo/Echo")))  # fmt: skip
    client.read_until(lambda frames: 1 in client.resets(), timeout=WAIT)
    assert client.resets() == {1: raw_h2.CANCEL}
    client.send(frame(raw_h2.HEADERS, raw_h2.END_HEADERS, 3, client.request_headers(
        "/test.Echo/Echo")))  # fmt: skip
    client.send(frame(raw_h2.DATA, raw_h2.END_STREAM, 3, grpc_message(b"hi")))
    client.read_until(lambda frames: 3 in client.statuses, timeout=WAIT)
    client.close()
    assert client.statuses[3] == ("0", "")
    assert client.goaway() is None
