"""tfrelay's own gRPC front end (HTTP/2 for unary calls), held to what grpcio clients expect of a
gRPC server: flow control both ways, multiplexing, compression, PING, GOAWAY on
connection age, UNIX sockets, grpcio's statuses, and exactly the bytes the protobuf API would send.
Every call goes through the real `tensorflow-serving-api` stubs or a real grpcio channel."""

from __future__ import annotations

import socket
import struct
import time
from concurrent import futures

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import predict_pb2

from support import grpc_clients as clients
from support.servers import LOOPBACK, ModelServerProcess, wait_for_version
from tfrelay.serving.grpc.unary_server import parse_timeout, percent_encode

MODEL = "half_plus_two"


@pytest.fixture(scope="module")
def server(model_root, tmp_path_factory):
    """The real command on the fixture half_plus_two: default front end, a UNIX socket too."""
    work = tmp_path_factory.mktemp("grpc-front-end")
    flags = [
        f"--model_name={MODEL}",
        f"--model_base_path={model_root / MODEL}",
        f"--grpc_socket_path={work / 'grpc.sock'}",
    ]
    with ModelServerProcess(flags, log_path=work / "server.log") as process:
        wait_for_version(process.url, MODEL, 123)
        process.socket_path = work / "grpc.sock"
        yield process


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"{LOOPBACK}:{server.grpc_port}") as channel:
        yield channel


def _predict(channel: grpc.Channel, x, **kwargs) -> np.ndarray:
    prediction, _ = clients.stubs(channel)
    result = prediction.Predict(clients.predict_request(MODEL, x), clients.RPC_TIMEOUT, **kwargs)
    return tf.make_ndarray(result.outputs["y"])


def test_megabyte_request_and_response_cross_frames_and_flow_control_windows(channel):
    # 4 MB each way: many 16 KB frames, well past HTTP/2's 64 KB default windows.
    x = np.arange(1_000_000, dtype=np.float32)
    np.testing.assert_allclose(_predict(channel, x.tolist()), x * 0.5 + 2.0)


def test_request_and_response_larger_than_the_connection_window(server):
    # 24 MB each way: past the 16 MiB connection window the server grants up front.
    x = np.linspace(-1, 1, 6_000_000, dtype=np.float32)
    request = clients.predict_request(MODEL, [0.0])
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x))
    options = [("grpc.max_receive_message_length", -1)]
    with grpc.insecure_channel(f"{LOOPBACK}:{server.grpc_port}", options=options) as channel:
        prediction, _ = clients.stubs(channel)
        result = prediction.Predict(request, clients.RPC_TIMEOUT)
    np.testing.assert_allclose(tf.make_ndarray(result.outputs["y"]), x * 0.5 + 2.0)


def test_many_concurrent_calls_multiplexed_on_one_connection(channel):
    prediction, _ = clients.stubs(channel)
    calls = [
        prediction.Predict.future(clients.predict_request(MODEL, [float(i)]), clients.RPC_TIMEOUT)
        for i in range(300)
    ]
    answers = [list(call.result().outputs["y"].float_val) for call in calls]
    assert answers == [[i * 0.5 + 2.0] for i in range(300)]


def test_gzip_compressed_request(channel):
    assert _predict(channel, [4.0], compression=grpc.Compression.Gzip).tolist() == [4.0]


def test_unknown_method_is_unimplemented_as_grpcio_says_it(channel):
    method = channel.unary_unary("/tensorflow.serving.PredictionService/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as info:
        method(b"", timeout=clients.RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert info.value.details() == "Method not found!"


def test_undecodable_request_is_internal_as_grpcio_says_it(channel):
    method = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    with pytest.raises(grpc.RpcError) as info:
        method(b"\xff\xff\xff", timeout=clients.RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details() == "Exception deserializing request!"


def test_error_message_with_non_ascii_text_reaches_the_client_intact(channel):
    prediction, _ = clients.stubs(channel)
    request = clients.predict_request("modèle-absent")
    with pytest.raises(grpc.RpcError) as info:
        prediction.Predict(request, clients.RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "modèle-absent" in info.value.details()


def test_cancelled_calls_leave_the_connection_serving(channel):
    prediction, _ = clients.stubs(channel)
    big = clients.predict_request(MODEL, [1.0] * 200_000)
    for _ in range(20):
        prediction.Predict.future(big, clients.RPC_TIMEOUT).cancel()
    assert _predict(channel, [2.0]).tolist() == [3.0]


class _RawHttp2Client:
    """A bare HTTP/2 client (the `h2` library) for what grpcio clients do not let a test control:
    PING payloads, tiny flow-control windows, the frames of the answer."""

    def __init__(self, port: int, initial_window: int | None = None) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        if initial_window is not None:
            self.conn.update_settings(
                {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window}
            )
        self.flush()

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def events(self) -> list[h2.events.Event]:
        data = self.sock.recv(65536)
        assert data, "the server closed the connection"
        events = self.conn.receive_data(data)
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                # Reopen the windows only by what was consumed: the server must wait for this.
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        self.flush()
        return events

    def predict(
        self, x: list[float], extra_headers: tuple[tuple[str, str], ...] = ()
    ) -> tuple[dict[bytes, bytes], bytes, dict[bytes, bytes], int]:
        """(response headers, body, trailers, DATA frames received) of a unary Predict; a
        Trailers-Only answer comes back as headers with the status and no trailers."""
        message = clients.predict_request(MODEL, x).SerializeToString()
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(
            stream_id,
            [(":method", "POST"), (":scheme", "http"), (":authority", "test"),
             (":path", "/tensorflow.serving.PredictionService/Predict"),
             ("content-type", "application/grpc"), ("te", "trailers"), *extra_headers],
        )  # fmt: skip
        payload = struct.pack(">BI", 0, len(message)) + message
        while payload:  # respect the server's windows and frame size, as a client must
            size = min(len(payload), self.conn.local_flow_control_window(stream_id), 16384)
            if size == 0:
                self.events()
                continue
            self.conn.send_data(stream_id, payload[:size])
            payload = payload[size:]
            self.flush()
        self.conn.end_stream(stream_id)
        self.flush()
        headers, trailers, body, frames = {}, {}, b"", 0
        while True:
            for event in self.events():
                if isinstance(event, h2.events.ResponseReceived):
                    headers = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    frames += 1
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers = dict(event.headers)
                elif isinstance(event, h2.events.StreamEnded):
                    return headers, body, trailers, frames

    def close(self) -> None:
        self.sock.close()


def test_raw_http2_client_gets_settings_ping_acks_and_a_grpc_answer(server):
    client = _RawHttp2Client(server.grpc_port)
    try:
        client.conn.ping(b"tfrelay!")
        client.flush()
        acked = []
        while not acked:
            acked = [e for e in client.events() if isinstance(e, h2.events.PingAckReceived)]
        assert acked[0].ping_data == b"tfrelay!"
        headers, body, trailers, _ = client.predict([2.0, 4.0])
        assert headers[b":status"] == b"200" and headers[b"content-type"] == b"application/grpc"
        assert trailers[b"grpc-status"] == b"0"
        compressed, length = struct.unpack(">BI", body[:5])
        assert compressed == 0 and length == len(body) - 5
        response = predict_pb2.PredictResponse.FromString(body[5:])
        assert list(response.outputs["y"].float_val) == [3.0, 4.0]
        assert response.model_spec.version.value == 123
    finally:
        client.close()


def test_server_waits_for_window_updates_when_the_client_window_is_tiny(server):
    client = _RawHttp2Client(server.grpc_port, initial_window=1000)
    try:
        x = [float(i) for i in range(20_000)]
        _, body, trailers, frames = client.predict(x)
        assert trailers[b"grpc-status"] == b"0"
        assert frames > 80  # ~80 KB answered 1,000 bytes at a time, never past the window
        response = predict_pb2.PredictResponse.FromString(body[5:])
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["y"]), np.array(x) * 0.5 + 2)
    finally:
        client.close()


def test_grpc_timeout_past_is_deadline_exceeded_and_the_connection_goes_on(server):
    client = _RawHttp2Client(server.grpc_port)
    try:
        headers, body, _, _ = client.predict([1.0] * 100_000, (("grpc-timeout", "1n"),))
        assert headers[b"grpc-status"] == b"4" and body == b""
        assert headers[b"grpc-message"] == b"Deadline Exceeded"
        _, _, trailers, _ = client.predict([1.0], (("grpc-timeout", "10S"),))
        assert trailers[b"grpc-status"] == b"0"
    finally:
        client.close()


def test_connections_past_max_age_go_away_without_failing_calls(model_root, tmp_path):
    flags = [
        f"--model_name={MODEL}",
        f"--model_base_path={model_root / MODEL}",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=500,grpc.max_connection_age_grace_ms=2000",
    ]
    with ModelServerProcess(flags, log_path=tmp_path / "server.log") as server:
        wait_for_version(server.url, MODEL, 123)
        states: list[grpc.ChannelConnectivity] = []
        with grpc.insecure_channel(f"{LOOPBACK}:{server.grpc_port}") as channel:
            channel.subscribe(states.append)
            deadline = time.monotonic() + 2.5
            count = 0
            while time.monotonic() < deadline:
                assert _predict(channel, [float(count)]).tolist() == [count * 0.5 + 2.0]
                count += 1
    assert count > 10
    # Each GOAWAY sends the channel back to IDLE, and it reconnects on the next call.
    assert states.count(grpc.ChannelConnectivity.READY) >= 3


def test_unix_socket(server):
    with grpc.insecure_channel(f"unix:{server.socket_path}") as channel:
        assert _predict(channel, [6.0]).tolist() == [5.0]


def test_a_client_that_is_not_http2_is_dropped_and_the_server_keeps_serving(server, channel):
    with socket.create_connection((LOOPBACK, server.grpc_port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := raw.recv(4096):
            received += chunk
    assert b"not an HTTP/2 client preface" in received  # the GOAWAY's debug data
    assert _predict(channel, [8.0]).tolist() == [6.0]


def test_concurrent_callers_from_many_threads(server):
    def caller(i: int) -> list[float]:
        with grpc.insecure_channel(f"{LOOPBACK}:{server.grpc_port}") as channel:
            return [_predict(channel, [float(i + k)]).tolist()[0] for k in range(20)]

    with futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(caller, range(8)))
    assert results == [[(i + k) * 0.5 + 2.0 for k in range(20)] for i in range(8)]


def test_grpc_timeout_and_message_encodings():
    assert parse_timeout(b"100m") == pytest.approx(0.1)
    assert parse_timeout(b"5S") == 5.0 and parse_timeout(b"2H") == 7200.0
    assert parse_timeout(b"1") is None and parse_timeout(b"123456789S") is None
    assert percent_encode("ok 100%") == b"ok 100%25"
    assert percent_encode("é\n") == b"%C3%A9%0A"


def test_dtypes_round_trip_through_the_front_end(channel):
    prediction, _ = clients.stubs(channel)
    request = clients.predict_request(MODEL, [1.0, 2.0])
    request.inputs["x"].Clear()
    request.inputs["x"].dtype = types_pb2.DT_FLOAT
    request.inputs["x"].tensor_shape.dim.add(size=2)
    request.inputs["x"].tensor_content = np.array([1.0, 2.0], dtype="<f4").tobytes()
    result = prediction.Predict(request, clients.RPC_TIMEOUT)
    assert tf.make_ndarray(result.outputs["y"]).tolist() == [2.5, 3.0]
