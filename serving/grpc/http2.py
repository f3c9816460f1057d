"""The server side of HTTP/2 (RFC 9113) as unary gRPC uses it, as an asyncio Protocol.

grpc.aio costs ~240 us of CPU per call before the handler runs (a trivial handler tops out at
~4k calls/s on one core), more than tfrelay's whole REST request. Unary gRPC needs little of
HTTP/2: request HEADERS (+CONTINUATION) and DATA in; HEADERS, DATA and trailing HEADERS out;
SETTINGS, PING, WINDOW_UPDATE, RST_STREAM and GOAWAY for the connection. This module speaks
exactly that, with flow control in both directions, and hands complete requests to a callback.

Request headers are decoded by `header_block.py` (HPACK on `hpack`'s table). Responses use only
literal-without-indexing fields, so no encoder state exists.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

import hpack

from tfrelay.serving.grpc.header_block import HeaderBlockDecoder

logger = logging.getLogger(__name__)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY = range(8)
WINDOW_UPDATE, CONTINUATION = 8, 9
# Flags.
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
# Error codes.
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 0x5, 0x6, 0x7, 0x8, 0x9
# Settings.
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6

DEFAULT_WINDOW = 65_535
MAX_WINDOW = 2**31 - 1
DEFAULT_MAX_FRAME = 16_384
# What this side accepts: frames up to the largest legal size (lenient), windows large enough that
# a client never waits for a WINDOW_UPDATE on a request of a few MB.
RECEIVE_STREAM_WINDOW = 4 * 1024 * 1024
RECEIVE_CONNECTION_WINDOW = 16 * 1024 * 1024
MAX_HEADER_LIST_BYTES = 64 * 1024
_MAX_FRAME_ACCEPTED = 2**24 - 1

_FRAME_HEADER = struct.Struct(">HBBBI")  # 24-bit length split as 16 + 8 bits.
_SETTING = struct.Struct(">HI")
_U32 = struct.Struct(">I")
_GOAWAY = struct.Struct(">II")


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame's bytes (payload no larger than the peer's maximum frame size)."""
    size = len(payload)
    return _FRAME_HEADER.pack(size >> 8, size & 0xFF, kind, flags, stream_id) + payload


def hpack_integer(value: int, prefix_bits: int, first_byte_flags: int = 0) -> bytes:
    """HPACK's prefixed integer (RFC 7541, 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | limit])
    value -= limit
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal_header(name: bytes, value: bytes) -> bytes:
    """A "literal header field without indexing, new name" (no Huffman; no table change)."""
    return b"\x00" + hpack_integer(len(name), 7) + name + hpack_integer(len(value), 7) + value


def status_header(status: int) -> bytes:
    """`:status` as a static-table reference (200) or a literal with the indexed name."""
    if status == 200:
        return b"\x88"
    text = str(status).encode()
    return b"\x08" + hpack_integer(len(text), 7) + text  # name index 8, without indexing


class ConnectionError_(Exception):
    """A connection error (RFC 9113, 5.4.1): GOAWAY with `code`, then close."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Stream:
    """One request stream.

    Attributes:
      stream_id: the client-chosen odd id.
      headers: the request's header fields, decoded (bytes names and values; do not modify:
        identical header blocks share one list).
      body: the DATA received so far.
      body_bytes: total DATA payload received (padding excluded).
      closed_remote: END_STREAM received.
      send_window: what this side may still send on the stream.
      pending: response bytes waiting for window.
      trailers: the final HEADERS block, sent once all pending DATA is out.
      unacked: DATA bytes received and not yet returned to the client's stream window.
      task: the handler's task, cancelled when the client resets the stream.
      rejected: the request was answered early (e.g. too large); further DATA is dropped.
    """

    __slots__ = ("stream_id", "headers", "body", "body_bytes", "closed_remote", "send_window",
                 "pending", "trailers", "unacked", "task", "rejected")  # fmt: skip

    def __init__(self, stream_id: int, headers: list[tuple[bytes, bytes]], send_window: int):
        self.stream_id = stream_id
        self.headers = headers
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.closed_remote = False
        self.send_window = send_window
        self.pending = b""
        self.trailers: bytes | None = None
        self.unacked = 0
        self.task: asyncio.Future | None = None
        self.rejected = False


RequestCallback = Callable[["Http2Connection", Stream], None]
DataCallback = Callable[["Http2Connection", Stream], None]


class WriteCoalescer:
    """Groups the writes of one loop turn across a server's connections.

    Responses finished together (a batch of model calls) used to be written one by one, with
    Python work between the writes, so the client was woken for each; written back to back, one
    wake-up serves several (measured: ~10% less CPU per call at 64 connections). With no other
    stream in progress a response is written at once: deferring would only add latency.

    Attributes:
      open_streams: streams in progress on the server's connections.
    """

    def __init__(self) -> None:
        self.open_streams = 0
        # Insertion-ordered set: connections write in the order they finished.
        self._waiting: dict[Http2Connection, None] = {}

    def defer(self, connection: Http2Connection) -> bool:
        """Queues the connection's write for the end of this loop turn; False to write now."""
        if self._waiting:
            self._waiting[connection] = None
            return True
        if self.open_streams <= 0:
            return False
        self._waiting[connection] = None
        asyncio.get_running_loop().call_soon(self._write_all)
        return True

    def _write_all(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for connection in waiting:
            connection.write_now()


class Http2Connection(asyncio.Protocol):
    """One client connection (prior-knowledge HTTP/2 over TCP or a UNIX socket).

    Args:
      on_request: called with each stream once its request is complete (END_STREAM); answers
        with `respond` / `respond_trailers_only`, now or later.
      on_data: called after DATA arrives on a stream still open (lets the caller reject an
        oversized request before it is complete); may be None.
      on_close: called once when the connection is gone.
      coalescer: shared by the server's connections to group their writes; None writes at once.
    """

    def __init__(
        self,
        on_request: RequestCallback,
        on_data: DataCallback | None = None,
        on_close: Callable[[Http2Connection], None] | None = None,
        coalescer: WriteCoalescer | None = None,
    ) -> None:
        self._on_request = on_request
        self._on_data = on_data
        self._on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, Stream] = {}
        self.peer = ""
        self._buffer = b""
        self._preface_seen = False
        self._decoder = HeaderBlockDecoder(MAX_HEADER_LIST_BYTES)
        self._continuation: tuple[int, int, bytearray] | None = None  # (stream, flags, block)
        self._last_stream_id = 0
        self._going_away = False
        self._closed = False
        self._send_window = DEFAULT_WINDOW
        self._peer_initial_window = DEFAULT_WINDOW
        self._peer_max_frame = DEFAULT_MAX_FRAME
        self._connection_unacked = 0
        self._blocked: dict[int, Stream] = {}  # streams with pending output, in order
        self._out: list[bytes] = []
        self._coalescer = coalescer

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            host = f"[{peer[0]}]" if ":" in str(peer[0]) else peer[0]
            self.peer = f"ipv{6 if ':' in str(peer[0]) else 4}:{host}:{peer[1]}"
        else:
            self.peer = f"unix:{peer or ''}"
        settings = _SETTING.pack(SETTINGS_MAX_CONCURRENT_STREAMS, MAX_WINDOW)
        settings += _SETTING.pack(SETTINGS_INITIAL_WINDOW_SIZE, RECEIVE_STREAM_WINDOW)
        settings += _SETTING.pack(SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST_BYTES)
        transport.write(  # type: ignore[attr-defined]
            frame(SETTINGS, 0, 0, settings)
            + frame(WINDOW_UPDATE, 0, 0, _U32.pack(RECEIVE_CONNECTION_WINDOW - DEFAULT_WINDOW))
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        for stream_id, stream in list(self.streams.items()):
            if stream.task is not None and not stream.task.done():
                stream.task.cancel()
            self._forget(stream_id)
        self._blocked.clear()
        if self._on_close is not None:
            self._on_close(self)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        pos = 0
        if not self._preface_seen:
            if len(buffer) < len(PREFACE):
                if not PREFACE.startswith(buffer):
                    self._abort_connection(PROTOCOL_ERROR, "not an HTTP/2 client preface")
                    return
                self._buffer = buffer
                return
            if not buffer.startswith(PREFACE):
                self._abort_connection(PROTOCOL_ERROR, "not an HTTP/2 client preface")
                return
            self._preface_seen = True
            pos = len(PREFACE)
        size = len(buffer)
        try:
            while size - pos >= 9:
                high, low, kind, flags, stream_id = _FRAME_HEADER.unpack_from(buffer, pos)
                length = high << 8 | low
                if length > _MAX_FRAME_ACCEPTED:
                    raise ConnectionError_(FRAME_SIZE_ERROR, "frame too large")
                end = pos + 9 + length
                if end > size:
                    break
                payload = buffer[pos + 9 : end]
                pos = end
                self._frame_received(kind, flags, stream_id & 0x7FFFFFFF, payload)
                if self._closed:
                    return
        except ConnectionError_ as err:
            self._abort_connection(err.code, str(err))
            return
        self._buffer = buffer[pos:]
        if self._connection_unacked >= RECEIVE_CONNECTION_WINDOW // 2:
            self._out.append(frame(WINDOW_UPDATE, 0, 0, _U32.pack(self._connection_unacked)))
            self._connection_unacked = 0
        self.flush()

    # -- frames in ---------------------------------------------------------------------------

    def _frame_received(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self._continuation is not None and kind != CONTINUATION:
            raise ConnectionError_(PROTOCOL_ERROR, "expected CONTINUATION")
        if kind == HEADERS:
            self._headers_frame(flags, stream_id, payload)
        elif kind == DATA:
            self._data_frame(flags, stream_id, payload)
        elif kind == CONTINUATION:
            self._continuation_frame(flags, stream_id, payload)
        elif kind == SETTINGS:
            self._settings_frame(flags, stream_id, payload)
        elif kind == WINDOW_UPDATE:
            self._window_update_frame(stream_id, payload)
        elif kind == PING:
            if len(payload) != 8 or stream_id:
                raise ConnectionError_(
                    FRAME_SIZE_ERROR if stream_id == 0 else PROTOCOL_ERROR, "PING"
                )
            if not flags & ACK:
                self._out.append(frame(PING, ACK, 0, payload))
        elif kind == RST_STREAM:
            stream = self._forget(stream_id)
            self._blocked.pop(stream_id, None)
            if stream is not None and stream.task is not None and not stream.task.done():
                stream.task.cancel()
        elif kind == GOAWAY:
            self._going_away = True
        elif kind == PUSH_PROMISE:
            raise ConnectionError_(PROTOCOL_ERROR, "clients must not push")
        # PRIORITY and unknown frame types are ignored (RFC 9113, 4.1 and 5.3.2).

    def _headers_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id == 0 or stream_id % 2 == 0:
            raise ConnectionError_(PROTOCOL_ERROR, "HEADERS on an invalid stream id")
        block = payload
        if flags & PADDED:
            if not block or block[0] >= len(block):
                raise ConnectionError_(PROTOCOL_ERROR, "bad padding")
            block = block[1 : len(block) - block[0]]
        if flags & PRIORITY_FLAG:
            block = block[5:]
        if not flags & END_HEADERS:
            self._continuation = (stream_id, flags, bytearray(block))
            return
        self._header_block(stream_id, flags, bytes(block))

    def _continuation_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self._continuation is None or self._continuation[0] != stream_id:
            raise ConnectionError_(PROTOCOL_ERROR, "unexpected CONTINUATION")
        self._continuation[2].extend(payload)
        if len(self._continuation[2]) > MAX_HEADER_LIST_BYTES * 2:
            raise ConnectionError_(PROTOCOL_ERROR, "header block too large")
        if flags & END_HEADERS:
            first_stream, first_flags, block = self._continuation
            self._continuation = None
            self._header_block(first_stream, first_flags, bytes(block))

    def _decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        try:
            return self._decoder.decode(block)
        except hpack.HPACKError as err:
            raise ConnectionError_(COMPRESSION_ERROR, f"HPACK: {err}") from err

    def _header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        headers = self._decode(block)  # always decoded: HPACK state is per connection
        stream = self.streams.get(stream_id)
        if stream is not None:
            # Trailers from the client end the request; their fields are not used.
            if stream.closed_remote:
                raise ConnectionError_(STREAM_CLOSED, "HEADERS on a closed stream")
            if not flags & END_STREAM:
                raise ConnectionError_(PROTOCOL_ERROR, "trailers without END_STREAM")
            self._end_request(stream)
            return
        if stream_id <= self._last_stream_id:
            raise ConnectionError_(STREAM_CLOSED, "HEADERS on a closed stream")
        self._last_stream_id = stream_id
        if self._going_away:
            self._out.append(frame(RST_STREAM, 0, stream_id, _U32.pack(REFUSED_STREAM)))
            return
        stream = Stream(stream_id, headers, send_window=self._peer_initial_window)
        self.streams[stream_id] = stream
        if self._coalescer is not None:
            self._coalescer.open_streams += 1
        if flags & END_STREAM:
            self._end_request(stream)

    def _data_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        flow_controlled = len(payload)
        self._connection_unacked += flow_controlled
        stream = self.streams.get(stream_id)
        if stream is None or stream.closed_remote:
            if stream_id > self._last_stream_id or stream_id == 0:
                raise ConnectionError_(PROTOCOL_ERROR, "DATA on an idle stream")
            if stream is not None:
                self._out.append(frame(RST_STREAM, 0, stream_id, _U32.pack(STREAM_CLOSED)))
            return
        if flags & PADDED:
            if not payload or payload[0] >= len(payload):
                raise ConnectionError_(PROTOCOL_ERROR, "bad padding")
            payload = payload[1 : len(payload) - payload[0]]
        if not stream.rejected:
            stream.body.append(payload)
            stream.body_bytes += len(payload)
        if flags & END_STREAM:
            self._end_request(stream)
            return
        stream.unacked += flow_controlled
        if stream.unacked >= RECEIVE_STREAM_WINDOW // 2:
            self._out.append(frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(stream.unacked)))
            stream.unacked = 0
        if self._on_data is not None and not stream.rejected:
            self._on_data(self, stream)

    def _end_request(self, stream: Stream) -> None:
        stream.closed_remote = True
        if not stream.rejected:
            self._on_request(self, stream)

    def _settings_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise ConnectionError_(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            return
        if len(payload) % 6:
            raise ConnectionError_(FRAME_SIZE_ERROR, "SETTINGS length")
        for offset in range(0, len(payload), 6):
            key, value = _SETTING.unpack_from(payload, offset)
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ConnectionError_(FLOW_CONTROL_ERROR, "initial window too large")
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
            elif key == SETTINGS_MAX_FRAME_SIZE:
                if not DEFAULT_MAX_FRAME <= value <= _MAX_FRAME_ACCEPTED:
                    raise ConnectionError_(PROTOCOL_ERROR, "bad SETTINGS_MAX_FRAME_SIZE")
                self._peer_max_frame = value
            elif key == SETTINGS_HEADER_TABLE_SIZE:
                pass  # responses never use the dynamic table
        self._out.append(frame(SETTINGS, ACK, 0))
        self._drain_blocked()

    def _window_update_frame(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionError_(FRAME_SIZE_ERROR, "WINDOW_UPDATE length")
        increment = _U32.unpack(payload)[0] & 0x7FFFFFFF
        if stream_id == 0:
            if increment == 0:
                raise ConnectionError_(PROTOCOL_ERROR, "zero WINDOW_UPDATE")
            self._send_window += increment
            if self._send_window > MAX_WINDOW:
                raise ConnectionError_(FLOW_CONTROL_ERROR, "connection window overflow")
        else:
            stream = self.streams.get(stream_id)
            if stream is None:
                return
            stream.send_window += increment
        self._drain_blocked()

    # -- frames out --------------------------------------------------------------------------

    def respond(self, stream: Stream, headers: bytes, data: bytes, trailers: bytes) -> None:
        """Sends a response: HEADERS, DATA (flow-controlled), then trailing HEADERS.

        Args:
          stream: the request's stream.
          headers: the encoded response header block.
          data: the body.
          trailers: the encoded trailer block (sent with END_STREAM).
        """
        if self._closed or self.streams.get(stream.stream_id) is not stream:
            return  # reset by the client or the connection is gone
        self._out.append(frame(HEADERS, END_HEADERS, stream.stream_id, headers))
        stream.pending = data
        stream.trailers = trailers
        self._send_pending(stream)
        if stream.trailers is not None:
            self._blocked[stream.stream_id] = stream
        self.flush()

    def respond_trailers_only(self, stream: Stream, block: bytes) -> None:
        """Sends one HEADERS frame ending the stream (gRPC's "Trailers-Only" response)."""
        if self._closed or self.streams.get(stream.stream_id) is not stream:
            return
        self._out.append(frame(HEADERS, END_HEADERS | END_STREAM, stream.stream_id, block))
        self._finish(stream)
        self.flush()

    def _send_pending(self, stream: Stream) -> None:
        pending = stream.pending
        offset = 0
        while offset < len(pending):
            allowed = min(
                len(pending) - offset, stream.send_window, self._send_window, self._peer_max_frame
            )
            if allowed <= 0:
                break
            self._out.append(frame(DATA, 0, stream.stream_id, pending[offset : offset + allowed]))
            offset += allowed
            stream.send_window -= allowed
            self._send_window -= allowed
        if offset:
            stream.pending = pending[offset:] if offset < len(pending) else b""
        if stream.pending:
            return
        if stream.trailers is not None:
            block = stream.trailers
            self._out.append(frame(HEADERS, END_HEADERS | END_STREAM, stream.stream_id, block))
            stream.trailers = None
            self._finish(stream)

    def _drain_blocked(self) -> None:
        for stream in list(self._blocked.values()):
            self._send_pending(stream)
            if stream.trailers is None:
                self._blocked.pop(stream.stream_id, None)
            if self._send_window <= 0:
                break

    def _forget(self, stream_id: int) -> Stream | None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None and self._coalescer is not None:
            self._coalescer.open_streams -= 1
        return stream

    def _finish(self, stream: Stream) -> None:
        self._forget(stream.stream_id)
        self._blocked.pop(stream.stream_id, None)
        if not stream.closed_remote:
            # Answered before the request ended (rejected early): the client may stop sending.
            self._out.append(frame(RST_STREAM, 0, stream.stream_id, _U32.pack(NO_ERROR)))

    def flush(self) -> None:
        """Writes the frames queued so far in one call: now, or with other connections' writes
        at the end of this loop turn while other streams are in progress (`WriteCoalescer`)."""
        if not self._out:
            return
        if self._coalescer is not None and self._coalescer.defer(self):
            return
        self.write_now()

    def write_now(self) -> None:
        """Writes the frames queued so far in one call."""
        if self._out and not self._closed and self.transport is not None:
            self.transport.write(b"".join(self._out))
        self._out.clear()

    def go_away(self) -> None:
        """Refuses new streams (GOAWAY with the last accepted id); open streams finish."""
        if self._closed or self._going_away:
            return
        self._going_away = True
        self._out.append(frame(GOAWAY, 0, 0, _GOAWAY.pack(self._last_stream_id, NO_ERROR)))
        self.flush()

    def close(self) -> None:
        """Closes the connection now."""
        if self.transport is not None and not self._closed:
            self.transport.close()

    def _abort_connection(self, code: int, message: str) -> None:
        logger.debug("HTTP/2 connection error from %s: %s", self.peer, message)
        self._out.append(
            frame(GOAWAY, 0, 0, _GOAWAY.pack(self._last_stream_id, code) + message.encode())
        )
        self.flush()
        self.close()
        self._closed = True

    @property
    def idle(self) -> bool:
        """No stream is open."""
        return not self.streams
