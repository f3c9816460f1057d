"""The concurrent-stream limit (issue 12: 2^31-1 was advertised and 200k half-open streams cost
178 MB): advertised, enforced with REFUSED_STREAM, half-open streams counted, and set from
`grpc.max_concurrent_streams`."""

from __future__ import annotations

import struct

from support.h2_client import data, grpc_message, started
from tfrelay.serving.grpc import http2
from tfrelay.serving.grpc.http2_limits import Http2Limits
from tfrelay.serving.grpc.unary_server import (
    channel_argument_settings,
    limits_from_channel_arguments,
)


def _advertised(client) -> dict[int, int]:
    settings = next(f for f in client.received if f[0] == http2.SETTINGS and not f[1])
    payload = settings[3]
    return dict(struct.unpack_from(">HI", payload, i) for i in range(0, len(payload), 6))


async def test_the_connection_advertises_100_concurrent_streams():
    client = started()
    assert _advertised(client)[http2.SETTINGS_MAX_CONCURRENT_STREAMS] == 100


async def test_half_open_streams_count_and_the_next_one_is_refused():
    client = started()
    client.send(*(client.headers(2 * i + 1) for i in range(100)))  # no END_STREAM: half-open
    assert client.read() == []
    client.send(client.headers(201))
    client.read()
    assert client.resets() == {201: http2.REFUSED_STREAM}
    assert len(client.connection.streams) == 100
    assert client.goaway() is None


async def test_a_finished_stream_makes_room_for_a_new_one():
    client = started(limits=Http2Limits(max_concurrent_streams=2))
    client.send(client.headers(1, end_stream=True), client.headers(3, end_stream=True))
    client.connection.respond_trailers_only(client.requests[0], b"\x88")
    client.send(client.headers(5), data(5, grpc_message(b""), end_stream=True))
    client.read()
    assert client.resets() == {}
    assert [stream.stream_id for stream in client.requests] == [1, 3, 5]


async def test_streams_reset_by_the_client_free_their_slot():
    client = started(limits=Http2Limits(max_concurrent_streams=1))
    client.send(client.headers(1))
    client.send(http2.frame(http2.RST_STREAM, 0, 1, struct.pack(">I", http2.CANCEL)))
    client.send(client.headers(3, end_stream=True))
    client.read()
    assert client.resets() == {}
    assert [stream.stream_id for stream in client.requests] == [3]


def test_grpc_max_concurrent_streams_channel_argument_sets_the_limit():
    applied, ignored = channel_argument_settings([("grpc.max_concurrent_streams", 7)])
    assert ignored == []
    assert limits_from_channel_arguments(applied).max_concurrent_streams == 7
    assert limits_from_channel_arguments({}).max_concurrent_streams == 100


def test_grpc_max_metadata_size_channel_argument_sets_the_header_list_limit():
    applied, _ = channel_argument_settings([("grpc.max_metadata_size", 300_000)])
    limits = limits_from_channel_arguments(applied)
    assert limits.max_header_list_size == 300_000
    assert limits.max_header_block_bytes >= 300_000
