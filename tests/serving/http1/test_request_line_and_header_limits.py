"""Request line and header limits (issue 12): 414 for a long URL, 431 for long or many headers,
decided as the bytes arrive and not after reading the whole head."""

from __future__ import annotations

import json

from support.http1_connection import get, statuses
from tfrelay.serving.rest.limits import DEFAULT_LIMITS


def _error(data: bytes) -> str:
    return json.loads(data.partition(b"\r\n\r\n")[2])["error"]


def test_a_url_over_the_limit_gets_414_and_the_connection_closes(connect):
    connection = connect()
    data = connection.send(get(b"/" + b"a" * DEFAULT_LIMITS.max_url_bytes))
    assert statuses(data) == [414]
    assert b"connection: close" in data
    assert "URI too long" in _error(data)
    assert connection.lingers_then_closes()


def test_a_url_at_the_limit_is_served(connect):
    connection = connect()
    data = connection.send(get(b"/" + b"a" * (DEFAULT_LIMITS.max_url_bytes - 1)))
    assert statuses(data) == [200]


def test_a_url_sent_in_pieces_is_refused_once_it_passes_the_limit(connect):
    connection = connect()
    connection.send(b"GET /")
    piece = b"a" * 4096
    sent = 0
    data = b""
    while not data:
        data = connection.send(piece)
        sent += len(piece)
        assert sent <= DEFAULT_LIMITS.max_url_bytes + len(piece)
    assert statuses(data) == [414]


def test_an_endless_header_line_is_refused_after_the_header_budget_not_at_its_end(connect):
    connection = connect()
    connection.send(b"GET / HTTP/1.1\r\nX-Big: ")
    piece = b"v" * 65536
    sent = 0
    data = b""
    while not data:
        data = connection.send(piece)
        sent += len(piece)
        assert sent <= DEFAULT_LIMITS.max_header_bytes + 2 * len(piece), "read on past the limit"
    assert statuses(data) == [431]
    assert "--rest_api_max_header_bytes" in _error(data)
    # Whatever the client still sends is dropped, not parsed.
    assert connection.send(piece) == b""


def test_a_single_header_over_16_kib_gets_431(connect):
    connection = connect()
    data = connection.send(
        get(headers=b"X-Big: " + b"v" * DEFAULT_LIMITS.max_header_field_bytes + b"\r\n")
    )
    assert statuses(data) == [431]
    assert "a header exceeds" in _error(data)


def test_headers_over_the_total_budget_get_431(connect):
    connection = connect()
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(70))
    data = connection.send(get(headers=headers))
    assert statuses(data) == [431]


def test_more_than_100_headers_get_431_and_100_are_served(connect):
    hundred = b"".join(b"X-H%d: v\r\n" % i for i in range(DEFAULT_LIMITS.max_header_count - 1))
    assert statuses(connect().send(get(headers=hundred))) == [200]  # + Host = 100
    data = connect().send(get(headers=hundred + b"X-One-More: v\r\n"))
    assert statuses(data) == [431]
    assert "more than 100 headers" in _error(data)


def test_300000_repeated_headers_in_one_read_are_refused(connect):
    connection = connect()
    data = connection.send(get(headers=b"A: b\r\n" * 300_000))
    assert statuses(data) == [431]


def test_a_burst_of_small_pipelined_requests_is_not_mistaken_for_a_big_head(connect):
    connection = connect(max_header_bytes=1024, max_pipelined=10_000)
    burst = get(b"/q", b"X-Pad: " + b"p" * 100 + b"\r\n") * 200  # 30 KiB in one read
    data = connection.send(burst + b"GET /partial HTTP/1.1\r\n")
    assert statuses(data) == [200] * 200
    assert not connection.transport.closed


def test_the_header_budget_is_a_setting(connect):
    connection = connect(max_header_bytes=512)
    data = connection.send(get(headers=b"X-Pad: " + b"p" * 600 + b"\r\n"))
    assert statuses(data) == [431]
