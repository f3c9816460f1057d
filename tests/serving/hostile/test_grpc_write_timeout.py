"""Attack: clients that hold the server's responses (issue 12), over real sockets against
`UnaryGrpcServer` with a short write timeout (the default, 30 s, is too long for a test): one
that never reads while its window is open, one that keeps its window at 0. Both are
disconnected once the timeout passes, and what was queued for them is released."""

from __future__ import annotations

import socket
import time

import pytest

from support import raw_h2
from support.raw_h2 import RawClient, frame, goaway_seen, grpc_message
from support.servers import LOOPBACK
from support.unary_grpc_servers import unary_grpc_server
from tfrelay.serving.grpc.http2_limits import Http2Limits
from tfrelay.serving.grpc.unary_server import UnaryGrpcServer

# Several times the 0.2 s the first test waits before checking the client is still connected
# (a loaded 2-core CI machine may take a while to queue 8 MB; issue 12 review).
TIMEOUT = 2.0
RESPONSE = b"r" * (8 << 20)


@pytest.fixture
def server():
    """An UnaryGrpcServer answering /test.Big/Get with 8 MB, on a loop in a thread."""

    async def big(request: bytes, context) -> bytes:
        return RESPONSE

    with unary_grpc_server(
        "test.Big", "Get", big, Http2Limits(write_timeout=TIMEOUT)
    ) as grpc_server:
        yield grpc_server


def _call(client: RawClient) -> None:
    block = client.request_headers("/test.Big/Get")
    client.send(frame(raw_h2.HEADERS, raw_h2.END_HEADERS, 1, block))
    client.send(frame(raw_h2.DATA, raw_h2.END_STREAM, 1, grpc_message(b"")))


def _wait_for_no_connection(server: UnaryGrpcServer, seconds: float) -> float:
    started = time.monotonic()
    while server._connections and time.monotonic() - started < seconds:
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_client_that_stops_reading_is_disconnected_after_the_write_timeout(server):
    client = RawClient(LOOPBACK, server.port, [(raw_h2.SETTINGS_INITIAL_WINDOW_SIZE, 2**31 - 1)])
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.send(frame(raw_h2.WINDOW_UPDATE, 0, 0, (2**31 - 1 - 65_535).to_bytes(4, "big")))
    _call(client)  # 8 MB come back; the client reads none of it
    time.sleep(0.2)
    assert server._connections  # still connected while within the timeout
    waited = _wait_for_no_connection(server, TIMEOUT + 5)
    client.close()
    assert not server._connections, "a client that does not read was kept"
    assert waited < TIMEOUT + 5


def test_a_window_left_at_zero_is_enhance_your_calm_after_the_write_timeout(server):
    client = RawClient(LOOPBACK, server.port, [(raw_h2.SETTINGS_INITIAL_WINDOW_SIZE, 0)])
    started = time.monotonic()
    _call(client)
    client.read_until(goaway_seen, timeout=TIMEOUT + 5)
    elapsed = time.monotonic() - started
    client.close()
    assert client.goaway()[1] == raw_h2.ENHANCE_YOUR_CALM
    assert TIMEOUT <= elapsed < TIMEOUT + 5
    assert _wait_for_no_connection(server, 5) < 5
