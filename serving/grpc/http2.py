"""The server side of HTTP/2 (RFC 9113) as unary gRPC uses it, as an asyncio Protocol.

grpc.aio costs ~240 us of CPU per call before the handler runs (a trivial handler tops out at
~4k calls/s on one core), more than tfrelay's whole REST request. Unary gRPC needs little of
HTTP/2: request HEADERS (+CONTINUATION) and DATA in; HEADERS, DATA and trailing HEADERS out;
SETTINGS, PING, WINDOW_UPDATE, RST_STREAM and GOAWAY for the connection. This module speaks
exactly that and hands requests to callbacks: `on_headers` when a request's headers are complete
(so authentication and routing happen before any body is buffered), `on_data` as DATA arrives,
`on_request` at END_STREAM.

Every client gets bounded resources (issue 12; `http2_limits.py` has the defaults and where they
come from): a concurrent-stream limit (REFUSED_STREAM beyond it), header-list, header-block and
CONTINUATION limits, FRAME_SIZE_ERROR above the advertised frame size, flow control enforced
both ways (`flow_control.py`), token-bucket budgets for resets, PINGs, SETTINGS and frames that do
no work (`frame_budget.py`), a write queue that stops reading while the client does not read and
disconnects it after a timeout, unfinished request bodies admitted by their declared length
(`admit`), and time limits on the preface, partial frames and unfinished requests checked by a
per-server sweep (`on_deadline`), never on the request path.

Request headers are decoded by `header_block.py` (HPACK on `hpack`'s table). Responses use only
literal-without-indexing fields, so no encoder state exists.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Callable

import hpack

from tfrelay.serving.grpc.flow_control import (
    DEFAULT_WINDOW,
    MAX_WINDOW,  # noqa: F401  (re-exported)
    FlowControlError,
    ReceiveWindow,
    SendWindows,
)
from tfrelay.serving.grpc.frame_budget import TokenBucket
from tfrelay.serving.grpc.header_block import HeaderBlockDecoder, HeaderListTooLarge
from tfrelay.serving.grpc.http2_limits import DEFAULT_MAX_FRAME, Http2Limits

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
ENHANCE_YOUR_CALM = 0xB
# Settings.
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6

DEFAULT_LIMITS = Http2Limits()
# Kept for callers of the previous module-level constants.
RECEIVE_STREAM_WINDOW = DEFAULT_LIMITS.stream_window
RECEIVE_CONNECTION_WINDOW = DEFAULT_LIMITS.connection_window
MAX_HEADER_LIST_BYTES = DEFAULT_LIMITS.max_header_list_size
_LARGEST_FRAME_SIZE = 2**24 - 1

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
        identical header blocks share one list). Empty when `oversized_headers` is set.
      oversized_headers: the decoded header list's size when it exceeded the limit (else 0).
      body: the DATA received so far.
      body_bytes: total DATA payload received (padding excluded).
      closed_remote: END_STREAM received.
      receive: the stream's receive window, once DATA arrived (`receive.limit(n)` caps what it
        will ever grant); None before.
      send_offset: the stream's send window minus the peer's initial window (`SendWindows`).
      pending: response bytes waiting for window.
      trailers: the final HEADERS block, sent once all pending DATA is out.
      task: the handler's task, cancelled when the client resets the stream.
      rejected: the request was answered early (e.g. too large); further DATA is dropped.
      call: whatever the application keeps for the call (set in `on_headers`).
      buffered: the bytes `admit` reserved for the unfinished request against the
        connection's `max_buffered_request_bytes` (its declared message length).
      swept_bytes, stalled_since: `body_bytes` at the last sweep and when it last changed
        (`on_deadline`; -1 before the first sweep).
    """

    __slots__ = ("stream_id", "headers", "oversized_headers", "body", "body_bytes",
                 "closed_remote", "receive", "send_offset", "pending", "trailers", "task",
                 "rejected", "call", "buffered", "swept_bytes", "stalled_since")  # fmt: skip

    def __init__(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], oversized_headers: int = 0
    ) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.oversized_headers = oversized_headers
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.closed_remote = False
        # Created with the first DATA frame that does not end the request (most unary requests
        # arrive whole in one frame and never need one).
        self.receive: ReceiveWindow | None = None
        self.send_offset = 0
        self.pending = b""
        self.trailers: bytes | None = None
        self.task: asyncio.Future | None = None
        self.rejected = False
        self.call: object = None
        self.buffered = 0  # bytes reserved in the connection's buffered request bytes
        self.swept_bytes = -1
        self.stalled_since = 0.0


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
      on_headers: called when a new stream's request headers are complete, before any of its
        DATA is handled (lets the caller authenticate and route first, and answer at once);
        may be None.
      limits: what the connection accepts (`Http2Limits`' production defaults if None).
      clock: monotonic seconds for the frame budgets and the stall check (tests pass their own).

    Attributes:
      deadline: when `on_deadline` is next due (a `TimeoutSweeper` calls it; issue 12).
    """

    def __init__(
        self,
        on_request: RequestCallback,
        on_data: DataCallback | None = None,
        on_close: Callable[[Http2Connection], None] | None = None,
        coalescer: WriteCoalescer | None = None,
        on_headers: RequestCallback | None = None,
        limits: Http2Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_request = on_request
        self._on_data = on_data
        self._on_close = on_close
        self._on_headers = on_headers
        self.limits = limits = limits or DEFAULT_LIMITS
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, Stream] = {}
        self.peer = ""
        self._buffer = b""
        self._preface_seen = False
        self._decoder = HeaderBlockDecoder(limits.max_header_list_size)
        # (stream, first frame's flags, block so far, CONTINUATION frames so far)
        self._continuation: tuple[int, int, bytearray, int] | None = None
        self._last_stream_id = 0
        self._going_away = False
        self._closed = False
        self._receive = ReceiveWindow(limits.connection_window)
        self._send = SendWindows()
        self._peer_max_frame = DEFAULT_MAX_FRAME
        self._max_frame = limits.max_frame_size  # read per frame / per DATA frame
        self._stream_window = limits.stream_window
        self._max_streams = limits.max_concurrent_streams
        self._buffered = 0  # bytes reserved by unfinished requests (`admit`)
        self._max_buffered = limits.max_buffered_request_bytes
        self._blocked: dict[int, Stream] = {}  # streams with pending output, in order
        self.pending_bytes = 0  # response bytes in streams' `pending`
        self._out: list[bytes] = []
        self._coalescer = coalescer
        self._write_paused = False
        self._write_timer: asyncio.TimerHandle | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._last_progress = 0.0  # when blocked output last moved (monotonic)
        self._clock = clock
        self._resets = TokenBucket(limits.resets, clock)
        self._pings = TokenBucket(limits.pings, clock)
        self._settings = TokenBucket(limits.settings, clock)
        self._glitches = TokenBucket(limits.glitches, clock)
        # Time limits (issue 12: a partial preface, frame or header block, or an unfinished
        # request was held forever). Checked by a sweep, never on the request path.
        self.deadline = 0.0  # due at the first sweep
        self._settings_seen = False
        self._opened_at: float | None = None  # the first sweep's time
        self._swept_input: tuple[bytes, object] | None = None
        self._input_since = 0.0

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            host = f"[{peer[0]}]" if ":" in str(peer[0]) else peer[0]
            self.peer = f"ipv{6 if ':' in str(peer[0]) else 4}:{host}:{peer[1]}"
        else:
            self.peer = f"unix:{peer or ''}"
        limits = self.limits
        settings = _SETTING.pack(SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams)
        settings += _SETTING.pack(SETTINGS_INITIAL_WINDOW_SIZE, limits.stream_window)
        settings += _SETTING.pack(SETTINGS_MAX_HEADER_LIST_SIZE, limits.max_header_list_size)
        if limits.max_frame_size != DEFAULT_MAX_FRAME:
            settings += _SETTING.pack(SETTINGS_MAX_FRAME_SIZE, limits.max_frame_size)
        out = frame(SETTINGS, 0, 0, settings)
        if limits.connection_window > DEFAULT_WINDOW:
            increment = limits.connection_window - DEFAULT_WINDOW
            out += frame(WINDOW_UPDATE, 0, 0, _U32.pack(increment))
        transport.write(out)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._cancel_timers()
        for stream_id, stream in list(self.streams.items()):
            if stream.task is not None and not stream.task.done():
                stream.task.cancel()
            self._forget(stream_id)
        # Queued responses go with the connection (issue 12: ~0.5 GB kept after it closed).
        self._blocked.clear()
        self._out.clear()
        self._buffer = b""
        self.pending_bytes = 0
        if self._on_close is not None:
            self._on_close(self)

    def pause_writing(self) -> None:
        """The transport's buffer is full: stop reading (the client's frames would only queue
        more answers) and stop moving responses into it; disconnect if it stays full."""
        self._write_paused = True
        if self.transport is not None and not self._closed:
            self.transport.pause_reading()
            loop = asyncio.get_running_loop()
            self._write_timer = loop.call_later(self.limits.write_timeout, self._write_timed_out)

    def resume_writing(self) -> None:
        """The client reads again: read its frames and send what waits."""
        self._write_paused = False
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        if self._closed or self.transport is None:
            return
        self.transport.resume_reading()
        self._drain_blocked()
        self.flush()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
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
        max_frame = self._max_frame
        try:
            while size - pos >= 9:
                high, low, kind, flags, stream_id = _FRAME_HEADER.unpack_from(buffer, pos)
                length = high << 8 | low
                if length > max_frame:
                    # Refused from its header: never buffered (a 16 MiB frame was, before).
                    raise ConnectionError_(
                        FRAME_SIZE_ERROR, f"frame of {length} bytes above {max_frame}"
                    )
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
            self._ping_frame(flags, stream_id, payload)
        elif kind == RST_STREAM:
            self._rst_stream_frame(stream_id, payload)
        elif kind == GOAWAY:
            self._going_away = True
        elif kind == PUSH_PROMISE:
            raise ConnectionError_(PROTOCOL_ERROR, "clients must not push")
        else:
            # PRIORITY and unknown frame types are ignored (RFC 9113, 4.1 and 5.3.2), but paid.
            self._glitch("PRIORITY or unknown frames")

    def _glitch(self, what: str) -> None:
        if not self._glitches.spend():
            raise ConnectionError_(ENHANCE_YOUR_CALM, f"too many {what}")

    def _ping_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise ConnectionError_(PROTOCOL_ERROR, "PING on a stream")
        if len(payload) != 8:
            raise ConnectionError_(FRAME_SIZE_ERROR, "PING length")
        if flags & ACK:
            self._glitch("unsolicited PING ACKs")  # this side never sends PINGs
            return
        if not self._pings.spend():
            raise ConnectionError_(ENHANCE_YOUR_CALM, "PING flood")
        self._out.append(frame(PING, ACK, 0, payload))

    def _rst_stream_frame(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionError_(FRAME_SIZE_ERROR, "RST_STREAM length")
        if stream_id == 0 or stream_id > self._last_stream_id:
            raise ConnectionError_(PROTOCOL_ERROR, "RST_STREAM on an idle stream")
        # Rapid Reset (CVE-2023-44487): a reset costs the server the stream's setup and handler
        # whatever the concurrency limit, so resets are budgeted.
        if not self._resets.spend():
            raise ConnectionError_(ENHANCE_YOUR_CALM, "too many stream resets")
        stream = self._forget(stream_id)
        if stream is not None and stream.task is not None and not stream.task.done():
            stream.task.cancel()

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
            self._continuation = (stream_id, flags, bytearray(block), 0)
            return
        self._header_block(stream_id, flags, bytes(block))

    def _continuation_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        pending = self._continuation
        if pending is None or pending[0] != stream_id:
            raise ConnectionError_(PROTOCOL_ERROR, "unexpected CONTINUATION")
        first_stream, first_flags, block, count = pending
        count += 1
        # The 2024 CONTINUATION floods (CVE-2024-28182 and others): a block that never ends,
        # of small or empty frames. As nghttp2 1.61: at most 8 CONTINUATIONs, a bounded block.
        if count > self.limits.max_continuations:
            raise ConnectionError_(ENHANCE_YOUR_CALM, "too many CONTINUATION frames")
        if not payload and not flags & END_HEADERS:
            self._glitch("empty CONTINUATION frames")
        block.extend(payload)
        if len(block) > self.limits.max_header_block_bytes:
            raise ConnectionError_(ENHANCE_YOUR_CALM, "header block too large")
        if flags & END_HEADERS:
            self._continuation = None
            self._header_block(first_stream, first_flags, bytes(block))
        else:
            self._continuation = (first_stream, first_flags, block, count)

    def _header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        oversized = 0
        try:  # always decoded: HPACK state is per connection
            headers = self._decoder.decode(block)
        except HeaderListTooLarge as err:
            headers, oversized = [], err.size  # the stream is answered; the table is in step
        except hpack.OversizedHeaderListError as err:
            raise ConnectionError_(ENHANCE_YOUR_CALM, f"HPACK: {err}") from err
        except hpack.HPACKError as err:
            raise ConnectionError_(COMPRESSION_ERROR, f"HPACK: {err}") from err
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
            self._reset_stream_id(stream_id, REFUSED_STREAM)
            return
        if len(self.streams) >= self._max_streams:
            # Half-open streams count: they hold headers and body buffers too.
            self._reset_stream_id(stream_id, REFUSED_STREAM)
            return
        stream = Stream(stream_id, headers, oversized)
        if flags & END_STREAM:
            stream.closed_remote = True  # an answer from the headers needs no RST_STREAM then
        self.streams[stream_id] = stream
        if self._coalescer is not None:
            self._coalescer.open_streams += 1
        if self._on_headers is not None:
            self._on_headers(self, stream)
            if stream_id not in self.streams:
                return  # answered from its headers
        if flags & END_STREAM:
            self._end_request(stream)

    def _data_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        length = len(payload)  # flow control counts padding too
        try:
            # The connection's window is given back at once: what streams keep is bounded by
            # their own windows, which grant no more than the message's declared length, and
            # their total by `admit`.
            increment = self._receive.pass_through(length)
        except FlowControlError as err:
            raise ConnectionError_(FLOW_CONTROL_ERROR, f"connection window: {err}") from err
        if increment:
            self._out.append(frame(WINDOW_UPDATE, 0, 0, _U32.pack(increment)))
        stream = self.streams.get(stream_id)
        if stream is None or stream.closed_remote:
            if stream_id > self._last_stream_id or stream_id == 0:
                raise ConnectionError_(PROTOCOL_ERROR, "DATA on an idle stream")
            if stream is not None:
                self._reset(stream, STREAM_CLOSED)
            # Else DATA still in flight for a stream answered or reset already: dropped.
            return
        window = stream.receive
        if window is not None:
            try:
                window.receive(length)
            except FlowControlError:
                self._reset(stream, FLOW_CONTROL_ERROR)  # a stream error (RFC 9113, 6.9)
                return
        elif length > self._stream_window:
            self._reset(stream, FLOW_CONTROL_ERROR)
            return
        elif not flags & END_STREAM:
            # A request in several frames keeps a window from now on; one that arrives whole in
            # its first DATA frame (most unary calls) never needs one.
            window = stream.receive = ReceiveWindow(self._stream_window)
            window.receive(length)
        if flags & PADDED:
            if not payload or payload[0] >= length:
                raise ConnectionError_(PROTOCOL_ERROR, "bad padding")
            payload = payload[1 : length - payload[0]]
        if not payload and not flags & END_STREAM:
            self._glitch("empty DATA frames")
        if not stream.rejected:
            stream.body.append(payload)
            stream.body_bytes += len(payload)
        if flags & END_STREAM:
            self._end_request(stream)
            return
        if self._on_data is not None and not stream.rejected:
            self._on_data(self, stream)  # may cap the stream's window, or answer it
            if self.streams.get(stream_id) is not stream:
                return
        increment = window.consume(length)  # type: ignore[union-attr]  (not END_STREAM)
        if increment:
            self._out.append(frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(increment)))

    def _end_request(self, stream: Stream) -> None:
        stream.closed_remote = True
        if stream.buffered:
            self._unbuffer(stream)
        if not stream.rejected:
            self._on_request(self, stream)

    def admit(self, stream: Stream, size: int) -> bool:
        """Reserves `size` bytes (the request's declared length) of the connection's
        `max_buffered_request_bytes` for an unfinished request; False if they do not fit (the
        caller refuses the request).

        Unfinished requests together hold at most that much (each is capped by its declared
        length, but 100 of them could hold 100 x 256 MiB). Admission is by declared length so
        that an admitted request always gets window up to its length: withholding the
        connection window instead deadlocked ordinary clients whose concurrent requests
        passed the limit, as none could finish (issue 12 review).
        """
        if self._buffered + size - stream.buffered > self._max_buffered:
            return False
        self._buffered += size - stream.buffered
        stream.buffered = size
        return True

    def _unbuffer(self, stream: Stream) -> None:
        """The stream's reservation leaves the connection's buffered total (its request was
        handed to the application, or dropped)."""
        self._buffered -= stream.buffered
        stream.buffered = 0

    def _settings_frame(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise ConnectionError_(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise ConnectionError_(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
            return
        if len(payload) % 6:
            raise ConnectionError_(FRAME_SIZE_ERROR, "SETTINGS length")
        if len(payload) // 6 > self.limits.max_settings_entries:
            raise ConnectionError_(ENHANCE_YOUR_CALM, "too many SETTINGS entries")
        if not self._settings.spend():
            raise ConnectionError_(ENHANCE_YOUR_CALM, "SETTINGS flood")
        self._settings_seen = True
        for offset in range(0, len(payload), 6):
            key, value = _SETTING.unpack_from(payload, offset)
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                try:
                    self._send.set_initial(value)  # O(1), whatever the number of streams
                except FlowControlError as err:
                    raise ConnectionError_(FLOW_CONTROL_ERROR, str(err)) from err
            elif key == SETTINGS_MAX_FRAME_SIZE:
                if not DEFAULT_MAX_FRAME <= value <= _LARGEST_FRAME_SIZE:
                    raise ConnectionError_(PROTOCOL_ERROR, "bad SETTINGS_MAX_FRAME_SIZE")
                self._peer_max_frame = value
            elif key == SETTINGS_ENABLE_PUSH:
                if value > 1:
                    raise ConnectionError_(PROTOCOL_ERROR, "bad SETTINGS_ENABLE_PUSH")
            # SETTINGS_HEADER_TABLE_SIZE: responses never use the dynamic table.
        self._out.append(frame(SETTINGS, ACK, 0))
        self._drain_blocked()  # only streams with output waiting: at most the stream limit

    def _window_update_frame(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionError_(FRAME_SIZE_ERROR, "WINDOW_UPDATE length")
        increment = _U32.unpack(payload)[0] & 0x7FFFFFFF
        if stream_id == 0:
            if increment == 0:
                raise ConnectionError_(PROTOCOL_ERROR, "zero WINDOW_UPDATE")
            try:
                self._send.grow_connection(increment)
            except FlowControlError as err:
                raise ConnectionError_(FLOW_CONTROL_ERROR, str(err)) from err
            self._drain_blocked()
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self._last_stream_id:
                raise ConnectionError_(PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream")
            self._glitch("WINDOW_UPDATE frames for closed streams")
            return
        if increment == 0:
            self._reset(stream, PROTOCOL_ERROR)
            return
        try:
            stream.send_offset = self._send.grow_stream(stream.send_offset, increment)
        except FlowControlError:
            self._reset(stream, FLOW_CONTROL_ERROR)
            return
        if stream.stream_id in self._blocked:
            before = self.pending_bytes
            self._send_pending(stream)
            if self.pending_bytes != before:
                self._last_progress = self._clock()
            if stream.trailers is None:
                self._blocked.pop(stream.stream_id, None)

    # -- frames out --------------------------------------------------------------------------

    def can_queue(self, size: int) -> bool:
        """Whether a response of `size` bytes may be queued now: always when nothing waits,
        else while the connection's waiting response bytes stay under the limit."""
        return not self.pending_bytes or self.pending_bytes + size <= (
            self.limits.max_pending_response_bytes
        )

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
        self.pending_bytes += len(data)
        stream.trailers = trailers
        self._send_pending(stream)
        if stream.trailers is not None:
            self._blocked[stream.stream_id] = stream
            self._watch_stall()
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
        if not self._write_paused:  # while paused, responses wait here, not in the transport
            send = self._send
            while offset < len(pending):
                # SendWindows.allowed, inlined: this runs for every response.
                allowed = min(
                    len(pending) - offset,
                    send.initial + stream.send_offset,
                    send.connection,
                    self._peer_max_frame,
                )
                if allowed <= 0:
                    break
                self._out.append(
                    frame(DATA, 0, stream.stream_id, pending[offset : offset + allowed])
                )
                offset += allowed
                stream.send_offset -= allowed
                send.connection -= allowed
        if offset:
            self.pending_bytes -= offset
            stream.pending = pending[offset:] if offset < len(pending) else b""
        if stream.pending or self._write_paused:
            return
        if stream.trailers is not None:
            block = stream.trailers
            self._out.append(frame(HEADERS, END_HEADERS | END_STREAM, stream.stream_id, block))
            stream.trailers = None
            self._finish(stream)

    def _drain_blocked(self) -> None:
        if not self._blocked:
            return
        before = self.pending_bytes
        for stream in list(self._blocked.values()):
            self._send_pending(stream)
            if stream.trailers is None:
                self._blocked.pop(stream.stream_id, None)
            if self._send.connection <= 0 or self._write_paused:
                break
        if self.pending_bytes != before:
            self._last_progress = self._clock()  # the stall timer counts from bytes sent

    def _watch_stall(self) -> None:
        """Disconnects a client that leaves responses waiting on a zero window for the write
        timeout (issue 12: such a client held ~0.5 GB). A timer only while output waits."""
        if self._stall_timer is None and not self._closed:
            self._last_progress = self._clock()
            self._stall_timer = asyncio.get_running_loop().call_later(
                self.limits.write_timeout, self._check_stall
            )

    def _check_stall(self) -> None:
        self._stall_timer = None
        if self._closed or not self._blocked:
            return
        waited = self._clock() - self._last_progress
        if waited >= self.limits.write_timeout:
            self._abort_connection(ENHANCE_YOUR_CALM, "flow-control window left at 0")
            return
        self._stall_timer = asyncio.get_running_loop().call_later(
            self.limits.write_timeout - waited, self._check_stall
        )

    def _write_timed_out(self) -> None:
        self._write_timer = None
        if not self._closed and self._write_paused:
            logger.debug(
                "HTTP/2 client %s did not read for %ss", self.peer, self.limits.write_timeout
            )
            self._closed = True
            if self.transport is not None:
                self.transport.abort()  # its buffer is what it did not read: nothing to flush

    def _reset_stream_id(self, stream_id: int, code: int) -> None:
        # MadeYouReset (CVE-2025-8671): error resets the client makes this side send are budgeted
        # with the ones it sends itself. An early answer's RST_STREAM(NO_ERROR) is not: the
        # request cost no handler, as a normal cheap call.
        if code != NO_ERROR and not self._resets.spend():
            self._abort_connection(ENHANCE_YOUR_CALM, "too many stream resets")
            return
        self._out.append(frame(RST_STREAM, 0, stream_id, _U32.pack(code)))

    def _reset(self, stream: Stream, code: int) -> None:
        """A stream error: RST_STREAM with `code`, the stream forgotten and its call cancelled."""
        self._forget(stream.stream_id)
        if stream.task is not None and not stream.task.done():
            stream.task.cancel()
        self._reset_stream_id(stream.stream_id, code)

    def _forget(self, stream_id: int) -> Stream | None:
        stream = self.streams.pop(stream_id, None)
        if stream is not None:
            if self._coalescer is not None:
                self._coalescer.open_streams -= 1
            if stream.trailers is not None:  # output waiting: drop it with the stream
                self.pending_bytes -= len(stream.pending)
                stream.pending = b""
                stream.trailers = None
                self._blocked.pop(stream_id, None)
            if stream.body:
                stream.body = []
            if stream.buffered:
                self._unbuffer(stream)
        return stream

    def _finish(self, stream: Stream) -> None:
        self._forget(stream.stream_id)
        if not stream.closed_remote:
            # Answered before the request ended (rejected early): the client may stop sending.
            self._reset_stream_id(stream.stream_id, NO_ERROR)

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
        """Closes the connection now (what is written is flushed for `close_grace` seconds, then
        the transport is aborted: a client that does not read cannot keep the buffer)."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.close()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        loop.call_later(self.limits.close_grace, transport.abort)

    def _cancel_timers(self) -> None:
        for timer in (self._write_timer, self._stall_timer):
            if timer is not None:
                timer.cancel()
        self._write_timer = self._stall_timer = None

    def _abort_connection(self, code: int, message: str) -> None:
        logger.debug("HTTP/2 connection error from %s: %s", self.peer, message)
        self._out.append(
            frame(GOAWAY, 0, 0, _GOAWAY.pack(self._last_stream_id, code) + message.encode())
        )
        self.write_now()  # at once: not deferred behind other connections
        self._buffer = b""
        self._closed = True  # nothing more is processed: `data_received` discards
        self._cancel_timers()
        self._linger()

    def _linger(self) -> None:
        """Half-closes after a GOAWAY and reads (discarding) for `abort_linger` s, then closes.

        Closing with the client's frames unread makes the kernel send a TCP RST, which can
        destroy the GOAWAY before the client reads it (issue 12 review; loopback delivered it
        by luck). After write_eof the client reads the GOAWAY and then EOF, and closes.
        """
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        try:
            half_close = self.limits.abort_linger > 0 and transport.can_write_eof()
        except NotImplementedError:  # a transport that cannot half-close closes at once
            half_close = False
        if not half_close:
            self.close()
            return
        transport.write_eof()
        transport.resume_reading()  # paused while its buffer was full: drain the input
        asyncio.get_running_loop().call_later(self.limits.abort_linger, self.close)

    def on_deadline(self, now: float) -> None:
        """The periodic check of the connection's time limits (a `TimeoutSweeper` calls it at
        every sweep; issue 12: slowloris on the gRPC port). Progress is compared between two
        sweeps, so the request path records nothing:

        - the client preface and first SETTINGS must arrive within `preface_timeout`;
        - a partial frame, preface or header block must advance within `request_timeout`
          (else GOAWAY; the connection can do nothing else meanwhile);
        - an unfinished request (headers without END_STREAM, a body not advancing) must
          receive DATA within `request_timeout`, as REST's body timeout: else RST_STREAM
          CANCEL (the client gave up on it, or never meant it).

        No idle timeout: an idle connection holds no stream, no partial input and no queued
        output (all bounded above), and grpc-core's max_connection_idle is off by default.

        Args:
          now: the sweeper's clock (monotonic seconds).
        """
        self.deadline = now  # due again at the next sweep
        if self._closed:
            return
        limits = self.limits
        if self._opened_at is None:
            self._opened_at = now
        elif not self._settings_seen and now - self._opened_at >= limits.preface_timeout:
            self._abort_connection(PROTOCOL_ERROR, "no client preface and SETTINGS in time")
            return
        # Identity, not equality: a new read always makes a new buffer object (`data_received`
        # concatenates), so an unchanged object means nothing arrived since the last sweep.
        pending = (self._buffer, self._continuation)
        swept = self._swept_input
        if not self._buffer and self._continuation is None:
            self._swept_input = None
        elif swept is None or swept[0] is not pending[0] or swept[1] is not pending[1]:
            self._swept_input, self._input_since = pending, now
        elif now - self._input_since >= limits.request_timeout:
            self._abort_connection(PROTOCOL_ERROR, "frame or header block unfinished in time")
            return
        stalled = None
        for stream in self.streams.values():
            if stream.closed_remote:
                continue  # the call runs: its own deadline applies
            if stream.body_bytes != stream.swept_bytes:
                stream.swept_bytes, stream.stalled_since = stream.body_bytes, now
            elif now - stream.stalled_since >= limits.request_timeout:
                stalled = [stream] if stalled is None else stalled + [stream]
        if stalled:
            for stream in stalled:
                if not self._closed:
                    self._reset(stream, CANCEL)
            self.flush()

    @property
    def idle(self) -> bool:
        """No stream is open."""
        return not self.streams
