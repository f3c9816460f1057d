"""A raw HTTP/2 client over a real socket for the attack suite (issue 12): it sends exactly the
frames a test builds, valid or not (the `h2` package refuses to send most attacks), and reads
the server's frames with a deadline. Frames are built with struct here, not with the server's
own code."""

from __future__ import annotations

import socket
import struct
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR = 0x0, 0x1, 0x3, 0x6
REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0x7, 0x8, 0xB
SETTINGS_INITIAL_WINDOW_SIZE = 0x4

Frame = tuple[int, int, int, bytes]


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", kind, flags, stream_id) + payload
    )


def grpc_message(body: bytes, declared: int | None = None, compressed: bool = False) -> bytes:
    return struct.pack(">BI", int(compressed), len(body) if declared is None else declared) + body


class RawClient:
    """One connection to the server's gRPC port.

    Args:
      host: the server's address.
      port: its gRPC port.
      settings: (key, value) pairs of the client's first SETTINGS frame.
    """

    def __init__(self, host: str, port: int, settings: list[tuple[int, int]] = ()) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self._buffer = b""
        self.frames: list[Frame] = []
        # Stream id -> (grpc-status, grpc-message) of each END_STREAM HEADERS read (decoded as
        # read: HPACK state is per connection).
        self.statuses: dict[int, tuple[str, str]] = {}
        payload = b"".join(struct.pack(">HI", key, value) for key, value in settings)
        self.send(PREFACE + frame(SETTINGS, 0, 0, payload) + frame(SETTINGS, ACK, 0))

    def send(self, data: bytes) -> bool:
        """Sends; False if the server closed the connection meanwhile."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def request_headers(
        self, path: str = "/tensorflow.serving.PredictionService/Predict", extra=()
    ) -> bytes:
        """An encoded gRPC request header block."""
        return self.encoder.encode(
            [(":method", "POST"), (":scheme", "http"), (":path", path),
             (":authority", "127.0.0.1"), ("te", "trailers"),
             ("content-type", "application/grpc"), *extra]
        )  # fmt: skip

    def read_until(self, done, timeout: float = 10.0) -> list[Frame]:
        """Reads frames until `done(frames so far)` or the connection ends or `timeout` s."""
        deadline = time.monotonic() + timeout
        while not done(self.frames) and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20)
            except OSError:  # a timeout or a reset: the caller looks at what came
                break
            if not chunk:
                break
            self._buffer += chunk
            while len(self._buffer) >= 9:
                length = int.from_bytes(self._buffer[:3], "big")
                if len(self._buffer) < 9 + length:
                    break
                kind, flags, stream_id = struct.unpack_from(">BBI", self._buffer, 3)
                payload = self._buffer[9 : 9 + length]
                self.frames.append((kind, flags, stream_id & 0x7FFFFFFF, payload))
                self._buffer = self._buffer[9 + length :]
                if kind == HEADERS:
                    fields = dict(self.decoder.decode(payload))
                    if flags & END_STREAM:
                        self.statuses[stream_id & 0x7FFFFFFF] = (
                            fields.get("grpc-status"),
                            fields.get("grpc-message", ""),
                        )
        return self.frames

    def goaway(self) -> tuple[int, int, bytes] | None:
        """(last stream id, error code, debug text) of the server's GOAWAY, if one came."""
        for kind, _, _, payload in self.frames:
            if kind == GOAWAY:
                last, code = struct.unpack_from(">II", payload)
                return last, code, payload[8:]
        return None

    def resets(self) -> dict[int, int]:
        return {
            sid: struct.unpack(">I", payload)[0]
            for kind, _, sid, payload in self.frames
            if kind == RST_STREAM
        }

    def close(self) -> None:
        self.sock.close()


def goaway_seen(frames: list[Frame]) -> bool:
    return any(f[0] == GOAWAY for f in frames)
