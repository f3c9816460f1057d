"""The REST front end's HTTP/1.1 server, spoken to with raw sockets."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from tfrelay.serving.rest.http_server import Request, start_http_server

LIMIT = 64


async def _echo(request: Request):
    if request.path == "/slow":
        await asyncio.sleep(0.2)
    body = b"%s %s %d %s" % (
        request.method.encode(),
        request.path_and_query.encode(),
        len(request.body),
        request.body[:20],
    )
    return 200, [(b"content-type", b"text/plain")], body


def _too_large(limit: int):
    return 413, [(b"content-type", b"application/json")], b'{"error": "too large"}'


@pytest.fixture(scope="module")
def port():
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder = {}

    async def main():
        holder["server"] = await start_http_server(_echo, "127.0.0.1", 0, LIMIT, _too_large)
        started.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(main()), loop.run_forever()), daemon=True
    )
    thread.start()
    started.wait(10)
    yield holder["server"].sockets[0].getsockname()[1]
    loop.call_soon_threadsafe(holder["server"].close)
    loop.call_soon_threadsafe(loop.stop)


def _exchange(port: int, data: bytes, expect_responses: int = 1, timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while received.count(b"HTTP/1.1 ") < expect_responses or not _complete(received):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def _complete(data: bytes) -> bool:
    # Every response carries Content-Length: check the last one is whole.
    head, sep, body = data.rpartition(b"\r\n\r\n")
    if not sep:
        return False
    length = int(head.lower().split(b"content-length: ")[-1].split(b"\r\n")[0])
    return len(body) >= length


def test_keep_alive_serves_several_requests_on_one_connection(port):
    request = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(request)
            response = sock.recv(65536)
            assert response.startswith(b"HTTP/1.1 200 OK\r\n")
            assert response.endswith(b"POST /a 3 abc")


def test_pipelined_requests_are_answered_in_order(port):
    data = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    response = _exchange(port, data, expect_responses=2)
    assert response.index(b"GET /slow 0") < response.index(b"GET /fast?q=1 0")


def test_chunked_bodies_and_expect_100_continue(port):
    chunked = b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert _exchange(port, chunked).endswith(b"POST /c 5 abcde")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"ok")
        assert sock.recv(65536).endswith(b"POST /e 2 ok")


def test_head_answers_headers_without_a_body(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
        response = sock.recv(65536)
    assert response.startswith(b"HTTP/1.1 200 OK")
    assert b"content-length: 10" in response and response.endswith(b"\r\n\r\n")  # len("HEAD /h 0 ")


@pytest.mark.parametrize(
    "data",
    [
        b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000,
        b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"40\r\n"
        + b"x" * 64
        + b"\r\n40\r\n"
        + b"x" * 64
        + b"\r\n0\r\n\r\n",
    ],
)
def test_bodies_over_the_limit_get_413_and_the_connection_closes(port, data):
    response = _exchange(port, data)
    assert response.startswith(b"HTTP/1.1 413 Request Entity Too Large")
    assert b"connection: close" in response and response.endswith(b'{"error": "too large"}')


def test_http_1_0_closes_after_the_response(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert b"connection: close" in response and response.endswith(b"GET /old 0 ")


def test_malformed_requests_get_400_and_the_server_keeps_serving(port):
    assert _exchange(port, b"NOT AN HTTP REQUEST\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert _exchange(port, b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n").endswith(b"GET /after 0 ")


def test_a_413_over_tls_reaches_a_client_still_sending_its_body(tmp_path):
    # TLS cannot half-close; the server closed at once after the 413, and the reset that
    # unread body bytes cause could destroy the answer. It now lingers (issue 12).
    import ssl
    from dataclasses import replace

    from support.certs import CertificateAuthority
    from tfrelay.serving.rest.limits import DEFAULT_LIMITS

    ca = CertificateAuthority(tmp_path, "ca")
    pair = ca.issue("localhost", server=True)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(pair.cert_path), str(pair.key_path))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder = {}
    # A generous linger: the client must only finish sending within it, even on a loaded CI.
    limits = replace(DEFAULT_LIMITS, linger_seconds=30)

    async def main():
        holder["server"] = await start_http_server(
            _echo, "127.0.0.1", 0, LIMIT, _too_large, server_context, limits
        )
        started.set()

    thread = threading.Thread(
        target=lambda: (loop.run_until_complete(main()), loop.run_forever()), daemon=True
    )
    thread.start()
    assert started.wait(10)
    tls_port = holder["server"].sockets[0].getsockname()[1]
    client_context = ssl.create_default_context(cadata=ca.cert_pem)
    try:
        with socket.create_connection(("127.0.0.1", tls_port), timeout=20) as raw:
            with client_context.wrap_socket(raw, server_hostname="localhost") as sock:
                body = 4 * 1024 * 1024
                sock.sendall(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % body)
                piece = b"x" * 65536
                for _ in range(body // len(piece)):  # the whole body, after the 413 is sent
                    sock.sendall(piece)
                received = b""
                while not _complete(received):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    received += chunk
        assert received.startswith(b"HTTP/1.1 413 "), received[:200]
        assert b"too large" in received
    finally:
        loop.call_soon_threadsafe(holder["server"].close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
