"""Time limits on a connection (issue 12 review: slowloris on the gRPC port). A sweeper calls
`Http2Connection.on_deadline(now)` once per interval; here the test calls it with chosen times,
so nothing depends on the machine's speed."""

from __future__ import annotations

import asyncio

from support.h2_client import Client, data, grpc_message, started
from tfrelay.serving.grpc import http2
from tfrelay.serving.grpc.http2_limits import Http2Limits
from tfrelay.serving.net.timeouts import TimeoutSweeper

LIMITS = Http2Limits(preface_timeout=10.0, request_timeout=60.0)


def _sweep(client: Client, *times: float) -> None:
    for now in times:
        client.connection.on_deadline(now)


async def test_no_preface_within_the_preface_timeout_is_a_goaway():
    client = Client(limits=LIMITS)  # connected; sends nothing
    _sweep(client, 100.0, 109.0)
    assert not client.transport.closed
    _sweep(client, 110.0)
    client.read()
    assert client.goaway()[1] == http2.PROTOCOL_ERROR
    assert client.transport.closed


async def test_a_preface_without_settings_is_not_enough():
    client = Client(limits=LIMITS)
    _sweep(client, 0.0)
    client.send(http2.PREFACE)
    _sweep(client, 10.0)
    client.read()
    assert client.goaway()[1] == http2.PROTOCOL_ERROR


async def test_a_client_that_sent_its_preface_and_settings_is_kept_while_idle():
    client = started(limits=LIMITS)
    _sweep(client, 0.0, 10.0, 1000.0, 100_000.0)
    client.read()
    assert client.goaway() is None
    assert not client.transport.closed


async def test_a_partial_frame_that_does_not_advance_is_a_goaway_after_the_request_timeout():
    client = started(limits=LIMITS)
    frame = data(1, b"x" * 100)
    client.send(client.headers(1), frame[:50])
    _sweep(client, 0.0, 30.0)
    client.send(frame[50:60])  # progress: counted from here
    _sweep(client, 31.0, 90.0)
    assert not client.transport.closed
    _sweep(client, 91.0)
    client.read()
    assert client.goaway()[1] == http2.PROTOCOL_ERROR


async def test_an_unfinished_header_block_is_a_goaway_after_the_request_timeout():
    client = started(limits=LIMITS)
    block = client.header_block()
    client.send(http2.frame(http2.HEADERS, 0, 1, block))  # no END_HEADERS, no CONTINUATION
    _sweep(client, 0.0, 59.0)
    assert not client.transport.closed
    _sweep(client, 60.0)
    client.read()
    assert client.goaway()[1] == http2.PROTOCOL_ERROR


async def test_a_partial_preface_is_a_goaway_after_the_preface_timeout():
    client = Client(limits=LIMITS)
    client.send(http2.PREFACE[:10])
    _sweep(client, 0.0, 10.0)
    client.read()
    assert client.goaway()[1] == http2.PROTOCOL_ERROR


async def test_an_unfinished_request_is_cancelled_after_the_request_timeout_without_data():
    client = started(limits=LIMITS)
    client.send(client.headers(1))  # half-open: headers without END_STREAM
    client.send(client.headers(3), data(3, grpc_message(b"x" * 10, declared=100)))
    _sweep(client, 0.0, 50.0)
    client.send(data(3, b"x" * 10))  # stream 3 advances; stream 1 does not
    _sweep(client, 60.0)  # stream 3's progress is seen here (a sweep interval late at most)
    client.read()
    assert client.resets() == {1: http2.CANCEL}
    _sweep(client, 119.0)
    client.read()
    assert client.resets() == {1: http2.CANCEL}
    _sweep(client, 120.0)
    client.read()
    assert client.resets() == {1: http2.CANCEL, 3: http2.CANCEL}
    assert client.connection.streams == {}
    assert client.goaway() is None  # the connection stays


async def test_a_complete_request_whose_call_runs_long_is_not_cancelled():
    client = started(limits=LIMITS)
    client.send(client.headers(1), data(1, grpc_message(b"x"), end_stream=True))
    _sweep(client, 0.0, 1000.0)
    client.read()
    assert client.resets() == {}
    assert list(client.connection.streams) == [1]  # waits for its answer


async def test_the_sweeper_runs_the_checks_on_its_own_timer():
    limits = Http2Limits(preface_timeout=0.05)
    client = Client(limits=limits)
    sweeper = TimeoutSweeper(asyncio.get_running_loop(), interval=0.01)
    sweeper.add(client.connection)
    for _ in range(500):  # bounded: up to 5 s for a 0.05 s timeout
        if client.transport.closed:
            break
        await asyncio.sleep(0.01)
    sweeper.close()
    client.read()
    assert client.goaway()[1] == http2.PROTOCOL_ERROR
