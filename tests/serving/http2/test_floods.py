"""Budgets for frames that cost work without a request (issue 12): Rapid Reset
(CVE-2023-44487), server-caused resets (MadeYouReset, CVE-2025-8671), PING and SETTINGS floods
(CVE-2019-9512/9515), empty frames; each ends in GOAWAY ENHANCE_YOUR_CALM once its token bucket
is empty, and normal traffic never draws from one."""

from __future__ import annotations

import struct

from support.h2_client import data, grpc_message, setting, started
from tfrelay.serving.grpc import http2
from tfrelay.serving.grpc.frame_budget import Budget, TokenBucket
from tfrelay.serving.grpc.http2_limits import Http2Limits

SMALL = Budget(burst=10, per_second=0.001)


def _rst(stream_id: int) -> bytes:
    return http2.frame(http2.RST_STREAM, 0, stream_id, struct.pack(">I", http2.CANCEL))


def test_token_bucket_allows_its_burst_then_refills_at_its_rate():
    now = [0.0]
    bucket = TokenBucket(Budget(burst=3, per_second=2.0), clock=lambda: now[0])
    assert [bucket.spend() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert [bucket.spend(), bucket.spend()] == [True, False]
    now[0] += 100.0  # never more than the burst
    assert sum(bucket.spend() for _ in range(10)) == 3


async def test_rapid_reset_is_enhance_your_calm_past_the_budget():
    client = started(limits=Http2Limits(resets=SMALL))
    for stream_id in range(1, 21, 2):  # 10 streams opened and reset: the whole burst
        client.send(client.headers(stream_id), _rst(stream_id))
    assert client.goaway() is None
    client.send(client.headers(21), _rst(21))
    client.read()
    assert client.goaway() == (21, http2.ENHANCE_YOUR_CALM)
    assert client.transport.closed


async def test_the_default_reset_budget_is_nghttp2s_1000():
    # A stopped clock: no token refills however slowly the machine runs (issue 12 review: a
    # token came back every 30 ms of real time).
    client = started(connection=http2.Http2Connection(lambda *_: None, clock=lambda: 0.0))
    frames = []
    for i in range(1000):
        frames += [client.headers(2 * i + 1), _rst(2 * i + 1)]
    client.send(*frames)
    client.read()
    assert client.goaway() is None
    client.send(client.headers(2001), _rst(2001))
    client.read()
    assert client.goaway()[1] == http2.ENHANCE_YOUR_CALM


async def test_resets_the_client_makes_the_server_send_share_the_budget():
    client = started(limits=Http2Limits(resets=SMALL))
    # DATA after END_STREAM: each makes the server reset the stream (STREAM_CLOSED).
    for stream_id in range(1, 23, 2):
        client.send(client.headers(stream_id, end_stream=True), data(stream_id, b"x"))
    client.read()
    assert list(client.resets().values()) == [http2.STREAM_CLOSED] * 10
    assert client.goaway()[1] == http2.ENHANCE_YOUR_CALM


async def test_ping_flood_is_enhance_your_calm_and_pings_within_budget_are_acked():
    client = started(limits=Http2Limits(pings=SMALL))
    ping = http2.frame(http2.PING, 0, 0, b"12345678")
    client.send(*[ping] * 10)
    assert [f[1] for f in client.read() if f[0] == http2.PING] == [http2.ACK] * 10
    client.send(ping)
    client.read()
    assert client.goaway()[1] == http2.ENHANCE_YOUR_CALM


async def test_settings_flood_is_enhance_your_calm():
    client = started(limits=Http2Limits(settings=SMALL))
    settings = http2.frame(http2.SETTINGS, 0, 0, setting(http2.SETTINGS_ENABLE_PUSH, 0))
    client.send(*[settings] * 9)  # the client preface's SETTINGS took one token
    assert client.goaway() is None
    client.send(settings)
    client.read()
    assert client.goaway()[1] == http2.ENHANCE_YOUR_CALM


async def test_a_settings_frame_with_more_than_32_entries_is_enhance_your_calm():
    client = started()
    payload = setting(http2.SETTINGS_ENABLE_PUSH, 0) * 33
    client.send(http2.frame(http2.SETTINGS, 0, 0, payload))
    client.read()
    assert client.goaway()[1] == http2.ENHANCE_YOUR_CALM


async def test_empty_data_frames_are_glitches_with_a_budget():
    client = started(limits=Http2Limits(glitches=SMALL))
    client.send(client.headers(1), *[data(1, b"")] * 10)
    assert client.goaway() is None
    client.send(data(1, b""))
    client.read()
    assert client.goaway()[1] == http2.ENHANCE_YOUR_CALM


async def test_priority_and_unknown_frames_are_glitches_with_a_budget():
    client = started(limits=Http2Limits(glitches=SMALL))
    client.send(*[http2.frame(http2.PRIORITY, 0, 1, b"\x00\x00\x00\x00\x10")] * 5)
    client.send(*[http2.frame(0xFA, 0, 0, b"unknown")] * 5)
    assert client.goaway() is None
    client.send(http2.frame(0xFA, 0, 0))
    client.read()
    assert client.goaway()[1] == http2.ENHANCE_YOUR_CALM


async def test_requests_never_draw_from_a_budget():
    empty = Budget(burst=0, per_second=0.0)
    limits = Http2Limits(resets=empty, pings=empty, settings=Budget(1, 0.0), glitches=empty)
    client = started(limits=limits)
    for stream_id in range(1, 400, 2):
        client.send(client.headers(stream_id), data(stream_id, grpc_message(b"x"), end_stream=True))
        client.connection.respond_trailers_only(client.requests[-1], b"\x88")
    client.read()
    assert client.goaway() is None
    assert len(client.requests) == 200
