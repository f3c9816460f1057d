"""A raw HTTP/2 client for `Http2Connection` on the fake transport (issue 12): frames in,
frames out, no sockets. Used by tests/serving/http2/."""

from __future__ import annotations

import struct
from collections.abc import Callable

import hpack

from support.fake_transport import FakeTransport, connect
from tfrelay.serving.grpc import http2
from tfrelay.serving.grpc.http2_limits import Http2Limits

Frame = tuple[int, int, int, bytes]  # (type, flags, stream id, payload)

REQUEST_HEADERS = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/tensorflow.serving.PredictionService/Predict"),
    (":authority", "localhost"),
    ("te", "trailers"),
    ("content-type", "application/grpc"),
]


def parse_frames(data: bytes) -> list[Frame]:
    """The frames in `data` (complete frames only)."""
    frames = []
    pos = 0
    while len(data) - pos >= 9:
        length = int.from_bytes(data[pos : pos + 3], "big")
        kind, flags = data[pos + 3], data[pos + 4]
        stream_id = struct.unpack_from(">I", data, pos + 5)[0] & 0x7FFFFFFF
        frames.append((kind, flags, stream_id, data[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    return frames


class Client:
    """Drives one `Http2Connection` as an HTTP/2 client would, frame by frame.

    Attributes:
      connection: the connection under test.
      transport: the fake transport it writes to.
      requests: streams handed to `on_request`, in order.
      received: every frame the connection wrote, in order.
    """

    def __init__(
        self,
        limits: Http2Limits | None = None,
        on_request: Callable | None = None,
        on_headers: Callable | None = None,
        on_data: Callable | None = None,
        connection: http2.Http2Connection | None = None,
    ) -> None:
        self.requests: list[http2.Stream] = []
        self.connection = connection or http2.Http2Connection(
            on_request or (lambda _connection, stream: self.requests.append(stream)),
            on_data,
            None,
            None,
            on_headers=on_headers,
            limits=limits,
        )
        self.transport: FakeTransport = connect(self.connection)
        self.encoder = hpack.Encoder()
        self.received: list[Frame] = []
        self.read()

    def send(self, *frames: bytes) -> None:
        """Feeds the bytes to the connection as one read."""
        self.connection.data_received(b"".join(frames))

    def start(self, settings: bytes = b"") -> None:
        """The client preface and its SETTINGS."""
        self.send(http2.PREFACE, http2.frame(http2.SETTINGS, 0, 0, settings))

    def header_block(self, extra: list[tuple[str, str]] | None = None) -> bytes:
        return self.encoder.encode(REQUEST_HEADERS + (extra or []))

    def headers(
        self, stream_id: int, end_stream: bool = False, extra: list[tuple[str, str]] | None = None
    ) -> bytes:
        flags = http2.END_HEADERS | (http2.END_STREAM if end_stream else 0)
        return http2.frame(http2.HEADERS, flags, stream_id, self.header_block(extra))

    def read(self) -> list[Frame]:
        """The frames written since the last read."""
        frames = parse_frames(self.transport.take())
        self.received.extend(frames)
        return frames

    def goaway(self) -> tuple[int, int] | None:
        """(last stream id, error code) of the GOAWAY received so far, if any."""
        for kind, _, _, payload in self.received:
            if kind == http2.GOAWAY:
                return struct.unpack_from(">II", payload)
        return None

    def resets(self) -> dict[int, int]:
        """Stream id -> RST_STREAM error code, for the resets received so far."""
        return {
            stream_id: struct.unpack(">I", payload)[0]
            for kind, _, stream_id, payload in self.received
            if kind == http2.RST_STREAM
        }


def data(stream_id: int, payload: bytes, end_stream: bool = False) -> bytes:
    return http2.frame(http2.DATA, http2.END_STREAM if end_stream else 0, stream_id, payload)


def grpc_message(body: bytes, declared: int | None = None, compressed: bool = False) -> bytes:
    """gRPC's 5-byte prefix (declaring `declared` bytes, by default the body's) + the body."""
    return struct.pack(">BI", int(compressed), len(body) if declared is None else declared) + body


def setting(key: int, value: int) -> bytes:
    return struct.pack(">HI", key, value)


def window_update(stream_id: int, increment: int) -> bytes:
    return http2.frame(http2.WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment))


def started(**kwargs) -> Client:
    """A `Client` (keyword arguments as its) that sent its preface and SETTINGS."""
    client = Client(**kwargs)
    client.start()
    client.read()
    return client
