"""Timeouts (issue 12): a head must arrive whole within header_timeout (slowloris), a body may
pause at most body_timeout between reads, an idle keep-alive connection closes quietly."""

from __future__ import annotations

import asyncio

from support.http1_connection import get, statuses

HEAD_TIMEOUT = 60.0


def test_a_partial_head_gets_408_after_the_header_timeout(connect):
    connection = connect()
    connection.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert connection.advance(HEAD_TIMEOUT - 1) == b""
    data = connection.advance(2)
    assert statuses(data) == [408]
    assert b"request headers" in data
    assert connection.lingers_then_closes()


def test_a_slowloris_trickle_does_not_extend_the_header_timeout(connect):
    connection = connect()
    connection.send(b"GET / HTTP/1.1\r\n")
    for _ in range(5):  # one header byte every 10 s
        assert connection.advance(10) == b""
        connection.send(b"X")
    data = connection.advance(11)
    assert statuses(data) == [408]


def test_a_body_that_stops_arriving_gets_408_after_the_body_timeout(connect):
    connection = connect(body_timeout=30)
    connection.send(b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
    for _ in range(3):  # reads within the timeout keep it alive
        assert connection.advance(20) == b""
        connection.send(b"c")
    data = connection.advance(31)
    assert statuses(data) == [408]
    assert b"request body" in data


def test_an_idle_keep_alive_connection_closes_quietly(connect):
    connection = connect(idle_timeout=5)
    assert statuses(connection.send(get())) == [200]
    assert connection.advance(4) == b""
    assert not connection.transport.closed
    assert connection.advance(2) == b""
    assert connection.transport.closed


def test_a_connection_waiting_for_its_answer_is_not_timed_out(connect):
    connection = connect(idle_timeout=5)
    connection.hold = asyncio.Event()
    connection.send(get())
    assert connection.advance(100) == b""
    assert not connection.transport.closed
    assert statuses(connection.release()) == [200]


def test_a_head_timing_out_behind_an_answer_in_flight_gets_408_after_that_answer(connect):
    connection = connect()
    connection.hold = asyncio.Event()
    connection.send(get(b"/first") + b"GET /second HTTP/1.1\r\n")
    connection.advance(HEAD_TIMEOUT + 1)
    assert statuses(connection.release()) == [200, 408]
    assert connection.lingers_then_closes()


def test_a_refusal_queued_behind_a_slow_answer_waits_for_it_even_across_a_write_pause(connect):
    connection = connect()
    connection.hold = asyncio.Event()
    connection.send(get(b"/slow") + b"GET /" + b"a" * 20_000)  # the second URL is too long
    connection.protocol.pause_writing()
    connection.protocol.resume_writing()
    assert connection.advance(30) == b""  # not closed by the lingering deadline
    assert not connection.transport.closed
    assert statuses(connection.release()) == [200, 414]
