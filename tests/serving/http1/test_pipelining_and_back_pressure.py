"""Pipelining and back-pressure (issue 12): at most max_pipelined requests run per connection
(reading pauses beyond it), and a peer that does not read its answers stops the server writing
and reading for it, and is disconnected after send_timeout."""

from __future__ import annotations

import asyncio

from support.http1_connection import SlowReaderTransport, get, statuses
from tfrelay.serving.rest.limits import DEFAULT_LIMITS

CAP = DEFAULT_LIMITS.max_pipelined


def test_pipelined_requests_beyond_the_cap_wait_unstarted_and_reading_pauses(connect):
    connection = connect()
    connection.hold = asyncio.Event()
    connection.send(b"".join(get(b"/%d" % i) for i in range(100)))
    assert len(connection.started) == CAP
    assert connection.transport.reading_paused
    data = connection.release()
    assert statuses(data) == [200] * 100
    # Answered in request order.
    assert [int(part.split(b" ")[0]) for part in data.split(b"GET /")[1:]] == list(range(100))
    assert not connection.transport.reading_paused


def test_reading_resumes_only_once_the_queue_is_below_the_cap(connect):
    connection = connect()
    connection.hold = asyncio.Event()
    connection.send(b"".join(get() for _ in range(CAP)))
    assert connection.transport.reading_paused
    connection.release()
    assert not connection.transport.reading_paused


def test_answers_wait_while_the_transport_is_paused_and_go_out_on_resume(connect):
    connection = connect()
    connection.protocol.pause_writing()
    assert connection.transport.reading_paused
    assert connection.send(get(b"/a") + get(b"/b")) == b""
    connection.protocol.resume_writing()
    connection.run()
    assert statuses(connection.transport.take()) == [200, 200]
    assert not connection.transport.reading_paused


def test_a_queue_full_and_a_paused_transport_both_hold_reading(connect):
    connection = connect()
    connection.hold = asyncio.Event()
    connection.send(b"".join(get() for _ in range(CAP)))
    connection.protocol.pause_writing()
    connection.release()  # answers are ready but the transport is still paused
    assert connection.transport.reading_paused
    connection.protocol.resume_writing()
    connection.run()
    assert statuses(connection.transport.take()) == [200] * CAP
    assert not connection.transport.reading_paused


def test_a_peer_that_leaves_answers_unread_is_aborted_after_the_send_timeout(connect):
    connection = connect(send_timeout=10)
    connection.send(get())
    connection.protocol.pause_writing()
    assert connection.advance(9) == b""
    assert not connection.transport.closed
    connection.advance(2)
    assert connection.transport.aborted


def test_a_paused_transport_does_not_count_as_idle(connect):
    connection = connect(idle_timeout=5, send_timeout=60)
    connection.send(get())
    connection.protocol.pause_writing()
    connection.advance(30)
    assert not connection.transport.closed
    connection.protocol.resume_writing()
    connection.advance(6)
    assert connection.transport.closed  # idle again once writing resumed


def test_requests_read_before_the_clients_eof_are_answered_then_the_connection_closes(connect):
    connection = connect()
    connection.hold = asyncio.Event()
    connection.send(get(b"/a") + get(b"/b"))
    assert connection.protocol.eof_received() is True  # keep writing after the half-close
    assert not connection.transport.closed
    assert statuses(connection.release()) == [200, 200]
    assert connection.transport.closed


def test_an_eof_with_nothing_to_answer_closes_at_once(connect):
    connection = connect()
    connection.send(b"GET /partial HTTP/1.1\r\n")
    assert connection.protocol.eof_received() is None


def test_reading_resumes_as_soon_as_answers_free_room_not_when_all_are_done(connect):
    first = asyncio.Event()
    held = asyncio.Event()

    async def handler(request):
        await (first if request.path == "/0" else held).wait()
        return 200, [], b""

    connection = connect(handler=handler)
    connection.send(b"".join(get(b"/%d" % i) for i in range(CAP)))
    assert connection.transport.reading_paused
    first.set()
    connection.run()
    assert statuses(connection.transport.take()) == [200]
    assert not connection.transport.reading_paused  # CAP - 1 in flight
    held.set()
    connection.run()
    assert statuses(connection.transport.take()) == [200] * (CAP - 1)


def test_a_large_answer_to_a_slow_reader_is_written_in_slices_as_it_drains(connect):
    big = bytes(range(256)) * (5 * 4096)  # 5 MiB

    async def handler(request):
        return 200, [], big

    transport = SlowReaderTransport()
    connection = connect(handler=handler, transport=transport)
    one = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(big) + big
    received = bytearray(connection.send(get() + get()))
    for _ in range(100):
        received += transport.drain()
        connection.run()
        if len(received) >= 2 * len(one):
            break
    assert bytes(received) == one * 2
    # Never more than the high-water mark plus one slice waited in the transport.
    assert transport.most_buffered <= SlowReaderTransport.HIGH_WATER + (1 << 20) + 100


def _post(size: int) -> bytes:
    return b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size + b"b" * size


def test_unanswered_bodies_past_the_connections_budget_pause_reading(connect):
    # The budget is the body limit (MAX_BODY, 1,024 bytes here): 16 pipelined bodies of the
    # limit each were held at once before (4 GiB per connection with defaults: issue 12).
    connection = connect(body_timeout=10)
    connection.hold = asyncio.Event()
    connection.send(_post(600))
    assert not connection.transport.reading_paused  # one body alone always fits
    connection.send(_post(600)[:-100])  # 600 + 500 bytes would pass 1,024 unanswered bytes
    assert connection.transport.reading_paused
    assert len(connection.started) == 1
    # Waiting on the server's answer is not the client's body timeout.
    assert connection.advance(60) == b""
    assert not connection.transport.closed
    data = connection.release()  # the first answer releases its body: reading resumes
    assert statuses(data) == [200]
    assert not connection.transport.reading_paused
    data = connection.send(b"b" * 100)
    assert statuses(data) == [200]
    assert [len(request.body) for request in connection.started] == [600, 600]


def test_bodies_within_the_budget_are_read_while_earlier_ones_wait(connect):
    connection = connect()
    connection.hold = asyncio.Event()
    connection.send(_post(500) + _post(500))
    assert not connection.transport.reading_paused
    assert len(connection.started) == 2
    assert statuses(connection.release()) == [200, 200]
