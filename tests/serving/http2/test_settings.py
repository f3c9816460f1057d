"""SETTINGS (RFC 9113 6.5; issue 12: one SETTINGS frame changing INITIAL_WINDOW_SIZE looped over
200k open streams for 9 s): applied in time independent of the number of streams, invalid
values refused with the RFC's error codes."""

from __future__ import annotations

from support.h2_client import setting, started
from tfrelay.serving.grpc import http2
from tfrelay.serving.grpc.http2_limits import Http2Limits


def _settings(*entries: bytes) -> bytes:
    return http2.frame(http2.SETTINGS, 0, 0, b"".join(entries))


async def test_initial_window_change_touches_no_stream_without_pending_output():
    client = started(limits=Http2Limits(max_concurrent_streams=20_000))
    client.send(*(client.headers(2 * i + 1) for i in range(20_000)))
    streams = list(client.connection.streams.values())
    client.send(_settings(setting(http2.SETTINGS_INITIAL_WINDOW_SIZE, 1)))
    # Each stream's window is an offset against the initial size: none was rewritten.
    assert all(stream.send_offset == 0 for stream in streams)
    assert client.connection._send.initial == 1
    assert [f[1] for f in client.read() if f[0] == http2.SETTINGS] == [http2.ACK]


async def test_a_larger_initial_window_releases_waiting_responses():
    client = started()
    client.send(_settings(setting(http2.SETTINGS_INITIAL_WINDOW_SIZE, 0)))
    client.send(client.headers(1, end_stream=True))
    client.connection.respond(client.requests[0], b"\x88", b"y" * 100, b"\x00")
    assert http2.DATA not in [f[0] for f in client.read()]
    client.send(_settings(setting(http2.SETTINGS_INITIAL_WINDOW_SIZE, 1000)))
    assert [f[0] for f in client.read()] == [http2.SETTINGS, http2.DATA, http2.HEADERS]


async def test_a_smaller_initial_window_can_make_a_stream_window_negative():
    client = started()
    client.send(client.headers(1, end_stream=True))
    client.send(_settings(setting(http2.SETTINGS_INITIAL_WINDOW_SIZE, 10)))
    client.connection.respond(client.requests[0], b"\x88", b"y" * 30, b"\x00")
    client.read()
    client.send(_settings(setting(http2.SETTINGS_INITIAL_WINDOW_SIZE, 0)))  # window -10 now
    client.send(http2.frame(http2.WINDOW_UPDATE, 0, 1, (15).to_bytes(4, "big")))
    assert [len(f[3]) for f in client.read() if f[0] == http2.DATA] == [5]


async def test_initial_window_above_2_31_is_flow_control_error():
    client = started()
    client.send(_settings(setting(http2.SETTINGS_INITIAL_WINDOW_SIZE, 2**31)))
    client.read()
    assert client.goaway()[1] == http2.FLOW_CONTROL_ERROR


async def test_max_frame_size_outside_its_range_is_protocol_error():
    client = started()
    client.send(_settings(setting(http2.SETTINGS_MAX_FRAME_SIZE, 100)))
    client.read()
    assert client.goaway()[1] == http2.PROTOCOL_ERROR


async def test_enable_push_above_1_is_protocol_error():
    client = started()
    client.send(_settings(setting(http2.SETTINGS_ENABLE_PUSH, 2)))
    client.read()
    assert client.goaway()[1] == http2.PROTOCOL_ERROR


async def test_settings_ack_with_a_payload_is_frame_size_error():
    client = started()
    client.send(http2.frame(http2.SETTINGS, http2.ACK, 0, setting(1, 1)))
    client.read()
    assert client.goaway()[1] == http2.FRAME_SIZE_ERROR


async def test_the_peer_max_frame_size_sizes_response_data_frames():
    client = started()
    client.send(
        _settings(setting(http2.SETTINGS_MAX_FRAME_SIZE, 20_000)),
        http2.frame(http2.WINDOW_UPDATE, 0, 0, (1_000_000).to_bytes(4, "big")),
        client.headers(1, end_stream=True),
    )
    client.send(http2.frame(http2.WINDOW_UPDATE, 0, 1, (1_000_000).to_bytes(4, "big")))
    client.connection.respond(client.requests[0], b"\x88", b"y" * 50_000, b"\x00")
    sizes = [len(f[3]) for f in client.read() if f[0] == http2.DATA]
    assert sizes == [20_000, 20_000, 10_000]
