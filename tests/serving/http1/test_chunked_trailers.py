"""Chunked bodies' trailers (issue 12): bounded like a head (431 past the field count, a field's
size or the total), never kept, and never overwriting the request's own headers."""

from __future__ import annotations

import json

from support.http1_connection import statuses
from tfrelay.serving.rest.http_server import Request
from tfrelay.serving.rest.limits import DEFAULT_LIMITS

HEAD = b"POST /p HTTP/1.1\r\nHost: x\r\nX-Real: yes\r\nTransfer-Encoding: chunked\r\n\r\n"
BODY = b"5\r\nhello\r\n0\r\n"


def _error(data: bytes) -> str:
    return json.loads(data.partition(b"\r\n\r\n")[2])["error"]


def _collecting(connect, **limits):
    seen: list[Request] = []

    async def handler(request: Request):
        seen.append(request)
        return 200, [], b"ok"

    return connect(handler=handler, **limits), seen


def test_trailers_are_dropped_and_do_not_overwrite_request_headers(connect):
    connection, seen = _collecting(connect)
    data = connection.send(HEAD + BODY + b"X-Real: forged\r\nHost: evil\r\nX-Trailer: t\r\n\r\n")
    assert statuses(data) == [200]
    (request,) = seen
    assert request.body == b"hello"
    assert request.headers[b"x-real"] == b"yes"
    assert request.headers[b"host"] == b"x"
    assert b"x-trailer" not in request.headers
    # The connection goes on: the next request is served.
    assert statuses(connection.send(HEAD + BODY + b"\r\n")) == [200]


def test_more_trailer_fields_than_headers_allowed_get_431(connect):
    count = DEFAULT_LIMITS.max_header_count
    connection, seen = _collecting(connect)
    trailers = b"".join(b"T%d: v\r\n" % i for i in range(count))
    assert statuses(connection.send(HEAD + BODY + trailers + b"\r\n")) == [200]
    connection, seen = _collecting(connect)
    data = connection.send(HEAD + BODY + trailers + b"T-More: v\r\n\r\n")
    assert statuses(data) == [431]
    assert "trailers exceed" in _error(data)
    assert seen == []
    assert connection.transport.closed or connection.protocol._closing


def test_200000_trailer_fields_in_one_read_are_refused_at_the_count(connect):
    connection, seen = _collecting(connect)
    data = connection.send(HEAD + BODY + b"A: b\r\n" * 200_000 + b"\r\n")
    assert statuses(data) == [431]
    assert seen == []
    assert len(connection.protocol._headers) <= DEFAULT_LIMITS.max_header_count + 3


def test_trailers_over_the_total_budget_get_431(connect):
    connection, _ = _collecting(connect, max_header_bytes=4096)
    data = connection.send(
        HEAD + BODY + b"".join(b"T%d: %s\r\n" % (i, b"v" * 500) for i in range(10)) + b"\r\n"
    )
    assert statuses(data) == [431]


def test_an_endless_trailer_line_is_refused_after_the_header_budget(connect):
    connection, _ = _collecting(connect, max_header_bytes=4096)
    assert connection.send(HEAD + BODY + b"X-Endless: ") == b""
    data = b""
    for _ in range(10):  # 10 KiB of one unfinished trailer line, in reads of its own
        data += connection.send(b"v" * 1024)
        if data:
            break
    assert statuses(data) == [431]


def test_a_body_split_after_its_chunk_header_is_not_counted_as_trailers(connect):
    connection, seen = _collecting(connect, max_header_bytes=200)
    assert connection.send(HEAD + b"384\r\n") == b""
    for _ in range(3):  # 900 bytes of chunk data, each read past the 200-byte head budget
        assert connection.send(b"d" * 300) == b""
    data = connection.send(b"\r\n0\r\n\r\n")
    assert statuses(data) == [200]
    assert len(seen[0].body) == 900
