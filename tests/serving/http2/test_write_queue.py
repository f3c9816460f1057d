"""The write queue (issue 12: a client that opened streams and never read made the server hold
~0.5 GB of queued responses, kept after it closed): reading stops while the transport is full,
a client that does not read or leaves a window at 0 is disconnected after the write timeout,
queued responses are bounded per connection and released on close."""

from __future__ import annotations

import asyncio

from support.h2_client import setting, started, window_update
from tfrelay.serving.grpc import http2
from tfrelay.serving.grpc.http2_limits import Http2Limits

SHORT = Http2Limits(write_timeout=0.05)


async def test_a_full_transport_pauses_reading_until_it_drains():
    client = started()
    client.connection.pause_writing()
    assert client.transport.reading_paused
    client.connection.resume_writing()
    assert not client.transport.reading_paused


async def test_responses_wait_while_the_transport_is_full_and_go_out_on_resume():
    client = started()
    client.send(client.headers(1, end_stream=True))
    client.connection.pause_writing()
    client.connection.respond(client.requests[0], b"\x88", b"y" * 1000, b"\x00")
    assert [f[0] for f in client.read()] == [http2.HEADERS]  # no DATA into a full buffer
    assert client.connection.pending_bytes == 1000
    client.connection.resume_writing()
    assert [f[0] for f in client.read()] == [http2.DATA, http2.HEADERS]
    assert client.connection.pending_bytes == 0


async def test_a_client_that_does_not_read_is_aborted_after_the_write_timeout():
    client = started(limits=SHORT)
    client.connection.pause_writing()
    await asyncio.sleep(0.1)
    assert client.transport.aborted


async def test_a_client_that_reads_again_in_time_stays():
    client = started(limits=SHORT)
    client.connection.pause_writing()
    client.connection.resume_writing()
    await asyncio.sleep(0.1)
    assert not client.transport.closed


async def test_a_window_left_at_zero_is_enhance_your_calm_after_the_write_timeout():
    client = started(limits=SHORT)
    client.send(
        http2.frame(http2.SETTINGS, 0, 0, setting(http2.SETTINGS_INITIAL_WINDOW_SIZE, 0)),
        client.headers(1, end_stream=True),
    )
    client.connection.respond(client.requests[0], b"\x88", b"y" * 100, b"\x00")
    await asyncio.sleep(0.1)
    client.read()
    assert client.goaway()[1] == http2.ENHANCE_YOUR_CALM
    assert client.transport.closed


async def test_a_window_that_keeps_moving_is_not_a_stall():
    # Updates every 30 ms against a 2 s timeout: dozens of times the gap, so a loaded machine
    # cannot turn a late sleep into a stall (issue 12 review; 50 ms raced 30 ms sleeps).
    client = started(limits=Http2Limits(write_timeout=2.0))
    client.send(
        http2.frame(http2.SETTINGS, 0, 0, setting(http2.SETTINGS_INITIAL_WINDOW_SIZE, 0)),
        client.headers(1, end_stream=True),
    )
    client.connection.respond(client.requests[0], b"\x88", b"y" * 100, b"\x00")
    for _ in range(4):
        await asyncio.sleep(0.03)
        client.send(window_update(1, 10))
    client.read()
    assert client.goaway() is None


async def test_queued_response_bytes_are_bounded_per_connection():
    limits = Http2Limits(max_pending_response_bytes=1000)
    client = started(limits=limits)
    client.send(
        http2.frame(http2.SETTINGS, 0, 0, setting(http2.SETTINGS_INITIAL_WINDOW_SIZE, 0)),
        client.headers(1, end_stream=True),
    )
    connection = client.connection
    assert connection.can_queue(10_000)  # nothing waits: one response of any size is taken
    connection.respond(client.requests[0], b"\x88", b"y" * 900, b"\x00")
    assert connection.can_queue(100)
    assert not connection.can_queue(101)


async def test_queued_responses_are_released_when_the_connection_closes():
    client = started()
    client.send(
        http2.frame(http2.SETTINGS, 0, 0, setting(http2.SETTINGS_INITIAL_WINDOW_SIZE, 0)),
        *(client.headers(2 * i + 1, end_stream=True) for i in range(50)),
    )
    for stream in client.requests:
        client.connection.respond(stream, b"\x88", b"y" * 100_000, b"\x00")
    assert client.connection.pending_bytes == 5_000_000
    blocked = list(client.requests)
    client.connection.connection_lost(None)
    assert client.connection.pending_bytes == 0
    assert client.connection.streams == {}
    assert all(stream.pending == b"" for stream in blocked)


async def test_close_aborts_a_transport_that_does_not_flush_within_the_grace():
    client = started(limits=Http2Limits(close_grace=0.02))
    client.connection.close()
    assert client.transport.closed and not client.transport.aborted
    await asyncio.sleep(0.05)
    assert client.transport.aborted
