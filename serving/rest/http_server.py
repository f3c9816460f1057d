"""A lean HTTP/1.1 server for the REST front end: an asyncio Protocol on httptools.

The REST API needs little of HTTP: a method, a path, a few headers and a body in; a status,
headers and a body out. Going through ASGI (uvicorn) costs more per request than the model call
itself for small models (measured: ~6.6k vs ~17k trivial requests/s on one core), so the server
speaks HTTP directly: keep-alive, pipelined requests answered in order, chunked request bodies,
`Expect: 100-continue`, HEAD and TLS through asyncio.

Every client's cost is bounded (issue 12; the limits and their sources are in `limits.py`): the
request line and headers are measured as they arrive (414 / 431 before reading more), a body over
the limit is refused from its Content-Length or running size (413 at once, also instead of a
`100 Continue`), a head or body that stops arriving is answered 408 and closed, at most
`max_pipelined` requests run per connection (reading pauses beyond it, `flow_control.py`), and a
peer that leaves its responses unread stops the server writing and reading for it and is
disconnected after `send_timeout`. A refused request's connection is closed after a short
lingering read, so the client reads the answer rather than a connection reset.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import httptools

from tfrelay.serving.net.timeouts import NEVER, TimeoutSweeper
from tfrelay.serving.rest.flow_control import FlowControl
from tfrelay.serving.rest.limits import DEFAULT_LIMITS, HttpLimits

logger = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
Response = tuple[int, Headers, bytes]

_REASONS = {status.value: status.phrase.encode("latin-1") for status in HTTPStatus}
# Python 3.13 took RFC 9110's phrases ("Content Too Large", ...); keep RFC 7231's, which the server
# sent on 3.10, so the status line is the same on both stacks (issue 14). Clients read the code.
_REASONS.update(
    {
        413: b"Request Entity Too Large",
        414: b"Request-URI Too Long",
        416: b"Requested Range Not Satisfiable",
        422: b"Unprocessable Entity",
    }
)
_REASONS[499] = b"Client Closed Request"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# Where a connection is in its current request; which deadline applies.
_IDLE, _HEAD, _BODY, _SEND, _LINGER = range(5)
# What happens after an answer is written: keep the connection, close it, or (after refusing a
# request) stop sending and drain the client's remaining bytes for a moment before closing.
_KEEP, _CLOSE, _LINGER_CLOSE = 1, 0, 2
# A Content-Length with more digits than this is over any limit (and int() of thousands of
# digits is slow or refused by Python).
_MAX_LENGTH_DIGITS = 18
# Responses larger than this are written a slice at a time, as the transport drains.
_WRITE_SLICE = 1 << 20


@dataclass
class Request:
    """One parsed HTTP request.

    Attributes:
      method: "GET", "POST", ...
      path: the raw path, without the query string.
      path_and_query: the raw path with `?query` (TF Serving matches routes against both).
      headers: lower-cased header names -> values (the last one wins).
      body: the request body.
    """

    method: str
    path: str
    path_and_query: str
    headers: dict[bytes, bytes] = field(default_factory=dict)
    body: bytes = b""


Handler = Callable[[Request], Awaitable[Response]]


class _Refused(Exception):
    """Raised inside an httptools callback to stop parsing a refused request."""


def _status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))


def encode_response(
    status: int, headers: Headers, body: bytes, keep_alive: bool, head: bool = False
) -> bytes:
    """The bytes of a response (Content-Length always set; no body for HEAD).

    Args:
      status: the HTTP status.
      headers: the response headers (Content-Length is added).
      body: the response body.
      keep_alive: False adds `connection: close`.
      head: the request was HEAD: the body is left out.

    Returns:
      The response, ready to write.
    """
    parts = [_status_line(status)]
    parts.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
    parts.append(b"content-length: %d\r\n" % len(body))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if not head:
        parts.append(body)
    return b"".join(parts)


def error_response(status: int, message: str) -> bytes:
    """A protocol-level refusal: `{"error": message}` and `connection: close`."""
    body = json.dumps({"error": message}).encode()
    return encode_response(status, [(b"content-type", b"application/json")], body, False)


class HttpProtocol(asyncio.Protocol):
    """One connection. Requests are handled concurrently but answered in arrival order.

    Args:
      handler: answers a Request with (status, headers, body).
      max_body_bytes: larger bodies get 413 (from Content-Length, before reading the body).
      too_large: the 413 response, given the limit.
      limits: the connection's header, timeout and pipelining limits.
      sweeper: enforces the deadlines (shared by a server's connections); a private one by
        default.
    """

    def __init__(
        self,
        handler: Handler,
        max_body_bytes: int,
        too_large: Callable[[int], Response],
        limits: HttpLimits = DEFAULT_LIMITS,
        sweeper: TimeoutSweeper | None = None,
    ) -> None:
        self._handler = handler
        self._max_body = max_body_bytes
        self._too_large = too_large
        self._limits = limits
        self._loop = asyncio.get_event_loop()
        self._sweeper = sweeper if sweeper is not None else TimeoutSweeper(self._loop)
        self._transport: asyncio.Transport | None = None
        self._flow: FlowControl | None = None
        self._parser = httptools.HttpRequestParser(self)
        # Answers in request order, each [asyncio.Task | bytes, _KEEP/_CLOSE/_LINGER_CLOSE,
        # head, request body bytes]; at most limits.max_pipelined. Requests parsed beyond that wait, unstarted, in
        # the backlog (a single read can hold thousands of pipelined requests).
        self._pipeline: collections.deque = collections.deque()
        self._backlog: collections.deque = collections.deque()
        self._phase = _IDLE
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._header_bytes = 0
        self._max_header_field = limits.max_header_field_bytes
        # Chunked trailers are counted from here, past the field limit, so that on_header's
        # one comparison sends every trailer to _on_trailer (issue 12).
        self._trailer_base = limits.max_header_field_bytes + 1
        self._trailer_count = 0
        # Set at a chunk header, cleared by the chunk's data: what follows the last one is
        # trailers.
        self._after_chunk_header = False
        # Bytes of the current head counted across reads (the read it began in is not).
        self._head_bytes = 0
        self._heads_done = 0
        self._body: list[bytes] = []
        self._body_size = 0
        # Body bytes of requests read but not yet answered (their bodies are held), and the
        # most they may be: up to max_pipelined bodies of max_body_bytes each were 4 GiB per
        # connection (issue 12). Past it, reading pauses until answers go out.
        self._unanswered_body_bytes = 0
        self._body_budget = max_body_bytes
        self._refused = False
        self._closing = False
        self._eof = False
        # A large response being written in slices, and what follows it (_KEEP, ...).
        self._out: memoryview | None = None
        self._out_action = _KEEP
        self.deadline = NEVER
        self._deadline_kind = _IDLE

    # -- connection -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._flow = FlowControl(self._transport)  # type: ignore[arg-type]
        self._sweeper.add(self)
        self._set_deadline(_IDLE, self._limits.idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self.deadline = NEVER
        self._sweeper.discard(self)
        for item, _, _, _ in self._pipeline:
            if isinstance(item, asyncio.Task):
                item.cancel()
        self._pipeline.clear()
        self._backlog.clear()
        self._out = None

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a refusal: the client's remaining bytes are dropped
        phase = self._phase
        heads_done = self._heads_done
        if phase == _BODY:
            self.deadline = self._sweeper.now + self._limits.body_timeout
            in_trailers = self._after_chunk_header
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError:
            if not self._refused:
                logger.exception("HTTP request callback failed")
                self._refuse(400, "Malformed HTTP request")
            return
        except httptools.HttpParserUpgrade:
            self._refuse(400, "Upgrade is not supported")
            return
        except httptools.HttpParserError as err:
            self._refuse(400, f"Malformed HTTP request: {err}")
            return
        if self._phase == _HEAD and phase == _HEAD and self._heads_done == heads_done:
            # The whole read belongs to one unfinished head. httptools buffers a header field
            # by concatenation until it ends, so stop here rather than after the field (a 100
            # MiB header line took 12 s of quadratic copying before: issue 12).
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_header_bytes:
                self._refuse_head_too_large()
        elif phase == _BODY and in_trailers and self._after_chunk_header and self._phase == _BODY:
            # The whole read belongs to the unfinished trailers of a chunked body: counted like
            # an unfinished head, since httptools buffers a trailer line whole too (issue 12).
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_header_bytes:
                self._refuse_trailers_too_large()

    def pause_writing(self) -> None:
        """The transport's buffer is over its high-water mark: the peer is not reading."""
        assert self._flow is not None
        self._flow.pause_writing()
        self._set_deadline(_SEND, self._limits.send_timeout)

    def resume_writing(self) -> None:
        """The transport's buffer drained: write what is ready and read again."""
        assert self._flow is not None
        self._flow.resume_writing()
        self._restore_deadline()
        self._flush()

    # -- deadlines ------------------------------------------------------------------------------

    def _set_deadline(self, kind: int, seconds: float) -> None:
        self._deadline_kind = kind
        self.deadline = self._sweeper.now + seconds if seconds > 0 else NEVER

    def _restore_deadline(self) -> None:
        """The deadline of the current phase, after writing resumed."""
        if self._refused:
            if self._closing:  # lingering; else the refusal waits behind answers in flight
                self._set_deadline(_LINGER, self._limits.linger_seconds)
            else:
                self.deadline = NEVER
        elif self._phase == _HEAD:
            self._set_deadline(_HEAD, self._limits.header_timeout)
        elif self._phase == _BODY:
            assert self._flow is not None
            if self._flow.bodies_held:
                self.deadline = NEVER  # waiting on the server's answers, not on the client
            else:
                self._set_deadline(_BODY, self._limits.body_timeout)
        elif not self._pipeline:
            self._set_deadline(_IDLE, self._limits.idle_timeout)
        else:
            self.deadline = NEVER

    def on_deadline(self, now: float) -> None:
        """Called by the sweeper once the current deadline passed.

        Args:
          now: the sweeper's clock.
        """
        self.deadline = NEVER
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        kind = self._deadline_kind
        if kind == _SEND:
            # The peer left its answers unread for send_timeout: nothing more will get out.
            transport.abort()
        elif kind == _LINGER:
            transport.close()
        elif kind == _HEAD:
            self._refuse(408, "Timed out reading the request headers")
        elif kind == _BODY:
            self._refuse(408, "Timed out reading the request body")
        elif not self._pipeline:
            transport.close()  # idle keep-alive connection

    # -- refusals -------------------------------------------------------------------------------

    def _refuse(self, status: int, message: str, response: bytes | None = None) -> None:
        """Answers a request the server will not read, after the answers already queued.

        Args:
          status: the HTTP status.
          message: the `{"error": ...}` message.
          response: the whole response instead (the API's 413).
        """
        if self._refused:
            return
        self._refused = True
        self._phase = _IDLE
        self._body = []
        self._enqueue([response or error_response(status, message), _LINGER_CLOSE, False, 0])
        self._flush()

    def _refuse_head_too_large(self) -> None:
        self._refuse(
            431,
            f"Request header fields too large: the request line and headers exceed the "
            f"{self._limits.max_header_bytes} bytes this server accepts "
            "(--rest_api_max_header_bytes)",
        )

    def _refuse_body_too_large(self) -> None:
        status, headers, body = self._too_large(self._max_body)
        self._refuse(status, "", encode_response(status, headers, body, False))

    def _linger_close(self) -> None:
        """Stops sending, then drops what the client still sends for a moment, then closes.

        Closing a socket with unread input makes the kernel send a reset, which can destroy
        the answer before the client read it (nginx's lingering close). TLS cannot half-close
        (`can_write_eof()` is False): it lingers all the same, without the EOF, since the
        reset is the same (closed at once before, so a 413/431/408 over TLS could be lost while
        the body still arrived: issue 12). The client has the answer's length and
        `connection: close`. Lingering is bounded by time only, as nginx's: discarding costs
        no memory, and a byte bound would reset the uploads the linger is for.
        """
        transport = self._transport
        assert transport is not None and self._flow is not None
        self._closing = True
        if self._limits.linger_seconds <= 0:
            transport.close()
            return
        if transport.can_write_eof():
            transport.write_eof()
        self._flow.queue_drained()
        if self._flow.writing_paused:
            self._set_deadline(_SEND, self._limits.send_timeout)
        else:
            self._set_deadline(_LINGER, self._limits.linger_seconds)
        transport.resume_reading()

    def eof_received(self) -> bool | None:
        """The client finished sending (a half-close, as `nc -N` or `curl -T -` do).

        Returns:
          True to keep the connection open until the requests already read are answered;
          None to let asyncio close it (lingering after a refusal, or nothing to answer).
        """
        if self._refused or not (self._pipeline or self._backlog):
            return None
        self._eof = True
        return True

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._phase = _HEAD
        self._deadline_kind = _HEAD
        self.deadline = self._sweeper.now + self._limits.header_timeout
        self._url = b""
        self._headers = {}
        self._header_bytes = 0
        self._head_bytes = 0
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url  # called per read; at most max_url_bytes are kept
        if len(self._url) > self._limits.max_url_bytes:
            self._refuse(
                414,
                f"URI too long: the request target exceeds the {self._limits.max_url_bytes} "
                "bytes this server accepts",
            )
            raise _Refused

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value)
        total = self._header_bytes + size
        self._header_bytes = total
        # One comparison per header on the request path: a field can only be too long once
        # the total is (the count is checked on the whole head, in on_headers_complete).
        if total > self._max_header_field:
            if self._phase == _BODY:
                self._on_trailer(size, total)
                return
            if size > self._max_header_field:
                self._refuse(
                    431,
                    f"Request header fields too large: a header exceeds the "
                    f"{self._max_header_field} bytes this server accepts",
                )
                raise _Refused
        self._headers[name.lower()] = value

    def on_chunk_header(self) -> None:
        # Only chunked bodies pay for trailer accounting: it restarts at each chunk header,
        # and trailers follow the last one.
        self._after_chunk_header = True
        self._header_bytes = self._trailer_base
        self._trailer_count = 0
        self._head_bytes = 0

    def _on_trailer(self, size: int, total: int) -> None:
        """A trailer field of a chunked body: bounded like the head, then dropped.

        httptools reports trailers through on_header after the head is complete; kept, 200,000
        of them (22 MB) were held per request and they overwrote the request's own headers
        (issue 12). Trailers are not kept (as nginx ignores them): nothing in the REST API
        reads them, and a header the client sent before the body must be the one that counts.
        """
        self._trailer_count += 1
        if (
            size > self._max_header_field
            or total - self._trailer_base > self._limits.max_header_bytes
            or self._trailer_count > self._limits.max_header_count
        ):
            self._refuse_trailers_too_large()
            raise _Refused

    def _refuse_trailers_too_large(self) -> None:
        self._refuse(
            431,
            f"Request header fields too large: the chunked body's trailers exceed "
            f"{self._limits.max_header_count} fields, {self._max_header_field} bytes in a field "
            f"or {self._limits.max_header_bytes} bytes in all",
        )

    def on_headers_complete(self) -> None:
        self._heads_done += 1
        headers = self._headers
        if self._header_bytes + len(self._url) > self._limits.max_header_bytes:
            self._refuse_head_too_large()
            raise _Refused
        if len(headers) > self._limits.max_header_count:
            # Repeated names overwrite each other (no memory grows), so distinct ones count.
            self._refuse(
                431,
                f"Request header fields too large: more than {self._limits.max_header_count} "
                "headers",
            )
            raise _Refused
        length = headers.get(b"content-length")
        if length is not None and (
            len(length) > _MAX_LENGTH_DIGITS or int(length) > self._max_body
        ):
            # Refused from the header, before any of the body is read, and instead of a
            # `100 Continue` (the client then never sends it).
            self._refuse_body_too_large()
            raise _Refused
        self._phase = _BODY
        self._deadline_kind = _BODY
        self.deadline = self._sweeper.now + self._limits.body_timeout
        if b"expect" in headers and headers[b"expect"].lower() == b"100-continue":
            assert self._transport is not None
            self._transport.write(_CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        self._after_chunk_header = False
        self._body_size += len(chunk)
        if self._body_size > self._max_body:  # chunked bodies have no Content-Length
            self._refuse_body_too_large()
            raise _Refused
        self._body.append(chunk)
        if self._unanswered_body_bytes and (
            self._unanswered_body_bytes + self._body_size > self._body_budget
        ):
            self._hold_body()

    def _hold_body(self) -> None:
        """Stops reading this body until earlier requests' answers release their bodies.

        The body deadline is suspended meanwhile: the client is not the one that is slow.
        """
        assert self._flow is not None
        self._flow.bodies_full()
        if self._phase == _BODY:
            self.deadline = NEVER

    def _release_body(self, size: int) -> None:
        """An answer went out: its request's body is no longer held."""
        self._unanswered_body_bytes -= size
        flow = self._flow
        assert flow is not None
        if flow.bodies_held and (
            not self._unanswered_body_bytes
            or self._unanswered_body_bytes + self._body_size <= self._body_budget
        ):
            flow.bodies_drained()
            if self._phase == _BODY and not flow.writing_paused:
                self._set_deadline(_BODY, self._limits.body_timeout)

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        self.deadline = NEVER
        self._after_chunk_header = False
        method = self._parser.get_method().decode("latin-1")
        keep_alive = _KEEP if self._parser.should_keep_alive() else _CLOSE
        url = self._url.decode("latin-1")
        path, _, _ = url.partition("?")
        body = b"".join(self._body)
        request = Request(method, path, url, self._headers, body)
        # Drop the chunks now: kept until the next request, a 40 MB body was held twice.
        self._body = []
        size = len(body)
        self._unanswered_body_bytes += size
        self._enqueue([request, keep_alive, method == "HEAD", size])

    # -- responses ------------------------------------------------------------------------------

    def _enqueue(self, entry: list) -> None:
        """Starts a request (or queues a ready answer) unless max_pipelined are queued."""
        pipeline = self._pipeline
        if self._backlog or len(pipeline) >= self._limits.max_pipelined:
            self._backlog.append(entry)
        else:
            self._start(entry)
            pipeline.append(entry)
        if len(pipeline) + len(self._backlog) >= self._limits.max_pipelined:
            assert self._flow is not None
            self._flow.queue_full()

    def _start(self, entry: list) -> None:
        request = entry[0]
        if isinstance(request, Request):
            task = self._loop.create_task(self._handler(request))
            task.add_done_callback(self._on_done)
            entry[0] = task

    def _on_done(self, _: asyncio.Task) -> None:
        self._flush()

    def _flush(self) -> None:
        """Writes every finished response at the head of the pipeline, in order."""
        pipeline = self._pipeline
        flow = self._flow
        assert flow is not None
        if self._out is not None:  # a large response is part way out
            if not self._drain_out() or not self._after_write(self._out_action):
                return
        while pipeline and not self._closing and not flow.writing_paused:
            entry = pipeline[0]
            item, keep_alive, head, body_size = entry
            large = None
            if isinstance(item, asyncio.Task):
                if not item.done():
                    break  # answered in order: wait for it (reading may still resume below)
                if item.cancelled():
                    pipeline.popleft()
                    if body_size:
                        self._release_body(body_size)
                    continue
                error = item.exception()
                if error is not None:
                    logger.error("REST handler failed", exc_info=error)
                    data = encode_response(
                        500, [(b"content-type", b"text/plain")], b"Internal error", keep_alive, head
                    )
                else:
                    status, headers, body = item.result()
                    if len(body) > _WRITE_SLICE and not head:
                        # The head alone, then the body itself in slices: joined, a 100 MB
                        # answer was copied once more.
                        data = encode_response(status, headers, body, keep_alive, True)
                        large = body
                    else:
                        data = encode_response(status, headers, body, keep_alive, head)
            else:
                data = item
            pipeline.popleft()
            if body_size:
                self._release_body(body_size)
            if self._backlog:
                self._start_backlog()
            transport = self._transport
            if transport is None or transport.is_closing():
                return
            if large is not None:
                transport.write(data)
                data, large = large, None
            if len(data) > _WRITE_SLICE:
                self._out = memoryview(data)
                self._out_action = keep_alive
                if not self._drain_out():
                    return  # resume_writing continues
            else:
                transport.write(data)
            if not self._after_write(keep_alive):
                return
        if self._closing:
            return
        if self._eof and not pipeline and self._transport is not None:
            self._transport.close()  # every request read before the client's EOF is answered
            self._closing = True
            return
        if len(pipeline) + len(self._backlog) < self._limits.max_pipelined:
            flow.queue_drained()
        if not pipeline and self._phase == _IDLE and not flow.writing_paused:
            self._set_deadline(_IDLE, self._limits.idle_timeout)

    def _drain_out(self) -> bool:
        """Writes the large response in slices until the transport pauses.

        The transport copies whatever the socket does not take into its own buffer: written
        whole, a 100 MB answer to a peer that reads slowly was copied once more (30 ms of the
        loop) and held twice; in slices the transport holds at most its high-water mark plus
        one slice.

        Returns:
          Whether all of it was written.
        """
        out = self._out
        transport = self._transport
        assert out is not None and transport is not None and self._flow is not None
        while not self._flow.writing_paused and not transport.is_closing():
            if len(out) <= _WRITE_SLICE:
                transport.write(out)
                self._out = None
                return True
            transport.write(out[:_WRITE_SLICE])
            out = out[_WRITE_SLICE:]
        self._out = out
        return False

    def _after_write(self, keep_alive: int) -> bool:
        """Keeps the connection or closes it once an answer is written; False if closing."""
        if keep_alive == _KEEP:
            return True
        if keep_alive == _LINGER_CLOSE:
            self._linger_close()
        else:
            assert self._transport is not None
            self._transport.close()
            self._closing = True
        return False

    def _start_backlog(self) -> None:
        pipeline, backlog = self._pipeline, self._backlog
        while backlog and len(pipeline) < self._limits.max_pipelined:
            entry = backlog.popleft()
            self._start(entry)
            pipeline.append(entry)


def sweep_interval(limits: HttpLimits) -> float:
    """How often deadlines are checked: a quarter of the shortest timeout, 20 ms to 0.5 s."""
    timeouts = [
        t
        for t in (
            limits.header_timeout,
            limits.body_timeout,
            limits.send_timeout,
            limits.idle_timeout,
            limits.linger_seconds,
        )
        if t > 0
    ]
    return min(0.5, max(0.02, min(timeouts, default=2.0) / 4))


async def start_http_server(
    handler: Handler,
    host: str,
    port: int,
    max_body_bytes: int,
    too_large: Callable[[int], Response],
    ssl_context=None,
    limits: HttpLimits = DEFAULT_LIMITS,
) -> asyncio.AbstractServer:
    """Listens on host:port and serves `handler` until the returned server is closed.

    Args:
      handler: answers each request.
      host: the interface to bind.
      port: the port (0: a free one).
      max_body_bytes: larger bodies get 413.
      too_large: the 413 response, given the limit.
      ssl_context: TLS, or None for plaintext.
      limits: header, timeout and pipelining limits of each connection.

    Returns:
      The listening server.
    """
    loop = asyncio.get_running_loop()
    sweeper = TimeoutSweeper(loop, sweep_interval(limits))
    return await loop.create_server(
        lambda: HttpProtocol(handler, max_body_bytes, too_large, limits, sweeper),
        host,
        port,
        ssl=ssl_context,
        reuse_address=True,
        backlog=2048,
    )
