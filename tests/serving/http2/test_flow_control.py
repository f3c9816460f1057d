"""Flow control both ways (RFC 9113 5.2, 6.9; issue 12): DATA past a window is refused, window
is granted only as data is consumed and never past the declared message length, and the send
side waits for the client's window."""

from __future__ import annotations

import pytest

from support.h2_client import data, grpc_message, setting, started, window_update
from tfrelay.serving.grpc import http2
from tfrelay.serving.grpc.flow_control import FlowControlError, ReceiveWindow, SendWindows
from tfrelay.serving.grpc.http2_limits import Http2Limits


def test_receive_window_grants_back_half_a_window_at_a_time():
    window = ReceiveWindow(1000)
    window.receive(400)
    assert window.consume(400) == 0
    window.receive(200)
    assert window.consume(200) == 600
    assert window.available == 1000


def test_receive_window_never_grants_past_its_cap():
    window = ReceiveWindow(1000)
    window.limit(1500)
    window.receive(1000)
    assert window.consume(1000) == 500
    window.receive(500)
    assert window.consume(500) == 0
    with pytest.raises(FlowControlError):
        window.receive(1)


def test_send_windows_apply_a_new_initial_size_to_every_stream_at_once():
    windows = SendWindows()
    offset = windows.grow_stream(0, 1000)  # a stream that got a 1000-byte WINDOW_UPDATE
    windows.set_initial(10)
    assert windows.initial + offset == 1010
    with pytest.raises(FlowControlError):
        windows.set_initial(2**31)


async def test_data_past_the_connection_window_is_a_connection_flow_control_error():
    limits = Http2Limits(connection_window=65_535, max_frame_size=65_535)
    client = started(limits=limits)
    # 30,000 received: under half the window, nothing given back yet, 35,535 left.
    client.send(client.headers(1), data(1, b"x" * 30_000))
    assert client.read() == []
    client.send(client.headers(3), data(3, b"x" * 40_000))
    client.read()
    assert client.goaway()[1] == http2.FLOW_CONTROL_ERROR
    assert client.transport.closed


async def test_data_past_the_stream_window_resets_only_that_stream():
    client = started(limits=Http2Limits(stream_window=1000))
    client.send(client.headers(1), data(1, b"x" * 1001))
    client.send(client.headers(3), data(3, grpc_message(b"ok"), end_stream=True))
    client.read()
    assert client.resets() == {1: http2.FLOW_CONTROL_ERROR}
    assert client.goaway() is None
    assert [stream.stream_id for stream in client.requests] == [3]


async def test_stream_window_is_never_granted_past_the_declared_length():
    def cap_at_declared(connection, stream):
        if stream.receive.cap is None and stream.body_bytes >= 5:
            stream.receive.limit(5 + int.from_bytes(b"".join(stream.body)[1:5], "big"))

    client = started(limits=Http2Limits(stream_window=1000), on_data=cap_at_declared)
    client.send(client.headers(1), data(1, grpc_message(b"x" * 995, declared=1495)))
    updates = [f for f in client.read() if f[0] == http2.WINDOW_UPDATE and f[2] == 1]
    assert [int.from_bytes(f[3], "big") for f in updates] == [500]  # 1000 + 500 = 5 + 1495
    client.send(data(1, b"x" * 500))
    assert not [f for f in client.read() if f[0] == http2.WINDOW_UPDATE and f[2] == 1]
    client.send(data(1, b"x"))  # one byte past the declared message: past the window too
    client.read()
    assert client.resets() == {1: http2.FLOW_CONTROL_ERROR}


async def test_response_waits_for_the_client_window_and_resumes_on_window_update():
    client = started()
    client.send(
        http2.frame(http2.SETTINGS, 0, 0, setting(http2.SETTINGS_INITIAL_WINDOW_SIZE, 10)),
        client.headers(1, end_stream=True),
    )
    client.read()
    stream = client.requests[0]
    client.connection.respond(stream, b"\x88", b"y" * 25, b"\x00")
    sent = [f for f in client.read() if f[0] == http2.DATA]
    assert [len(f[3]) for f in sent] == [10]
    assert client.connection.pending_bytes == 15
    client.send(window_update(1, 100))
    frames = client.read()
    assert [len(f[3]) for f in frames if f[0] == http2.DATA] == [15]
    assert frames[-1][0] == http2.HEADERS and frames[-1][1] & http2.END_STREAM
    assert client.connection.pending_bytes == 0


async def test_window_update_overflowing_a_stream_window_resets_the_stream():
    client = started()
    client.send(client.headers(1, end_stream=True))
    client.send(window_update(1, 2**31 - 1))
    client.read()
    assert client.resets() == {1: http2.FLOW_CONTROL_ERROR}
    assert client.goaway() is None


def _connection_updates(frames) -> list[int]:
    return [
        int.from_bytes(f[3], "big") for f in frames if f[0] == http2.WINDOW_UPDATE and f[2] == 0
    ]


async def test_the_connection_window_is_given_back_however_much_unfinished_requests_hold():
    # Withholding it past max_buffered_request_bytes deadlocked clients whose concurrent
    # requests passed the limit (issue 12 review); `admit` bounds what they hold instead.
    limits = Http2Limits(connection_window=65_535, max_buffered_request_bytes=10_000)
    client = started(limits=limits)
    client.send(client.headers(1), data(1, b"x" * 16_000), data(1, b"x" * 16_000))
    client.send(client.headers(3), data(3, b"y" * 16_000), data(3, b"y" * 16_000))
    assert _connection_updates(client.read()) == [48_000]  # half the window: all given back
    client.send(data(1, b"x" * 16_000), data(3, b"y" * 16_000))
    assert _connection_updates(client.read()) == [48_000]  # 16,000 left over + 32,000
    assert client.connection._buffered == 0  # no gRPC layer: nothing was admitted
    assert sorted(client.connection.streams) == [1, 3]  # 96,000 bytes held, window still granted


def test_admission_reserves_declared_lengths_within_the_budget():
    connection = http2.Http2Connection(lambda *_: None, limits=Http2Limits(
        max_buffered_request_bytes=1000))  # fmt: skip
    first, second = http2.Stream(1, []), http2.Stream(3, [])
    assert connection.admit(first, 600)
    assert not connection.admit(second, 401)
    assert connection.admit(second, 400)
    connection._forget(1)  # not in `streams`: nothing to forget
    connection.streams[1] = first
    connection._forget(1)  # its reservation goes with it
    assert connection.admit(http2.Stream(5, []), 600)
