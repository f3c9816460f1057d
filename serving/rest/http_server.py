"""A lean HTTP/1.1 server for the REST front end: an asyncio Protocol on httptools.

The REST API needs little of HTTP: a method, a path, a few headers and a body in; a status,
headers and a body out. Going through ASGI (uvicorn) costs more per request than the model call
itself for small models (measured: ~6.6k vs ~17k trivial requests/s on one core), so the server
speaks HTTP directly: keep-alive, pipelined requests answered in order, chunked request bodies,
`Expect: 100-continue`, HEAD, a body-size limit checked before the body is read, an idle timeout,
and TLS through asyncio.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

import httptools

logger = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]
Response = tuple[int, Headers, bytes]

_REASONS = {status.value: status.phrase.encode("latin-1") for status in HTTPStatus}
_REASONS[499] = b"Client Closed Request"
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


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


def _status_line(status: int) -> bytes:
    return b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))


def encode_response(
    status: int, headers: Headers, body: bytes, keep_alive: bool, head: bool = False
) -> bytes:
    """The bytes of a response (Content-Length always set; no body for HEAD)."""
    parts = [_status_line(status)]
    parts.extend(b"%s: %s\r\n" % (name, value) for name, value in headers)
    parts.append(b"content-length: %d\r\n" % len(body))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if not head:
        parts.append(body)
    return b"".join(parts)


class HttpProtocol(asyncio.Protocol):
    """One connection. Requests are handled concurrently but answered in arrival order.

    Args:
      handler: answers a Request with (status, headers, body).
      max_body_bytes: larger bodies get 413 (from Content-Length, before reading the body).
      too_large: the 413 response body, given the limit.
      idle_timeout: seconds an idle keep-alive connection stays open.
    """

    def __init__(
        self,
        handler: Handler,
        max_body_bytes: int,
        too_large: Callable[[int], Response],
        idle_timeout: float = 75.0,
    ) -> None:
        self._handler = handler
        self._max_body = max_body_bytes
        self._too_large = too_large
        self._idle_timeout = idle_timeout
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._loop = asyncio.get_event_loop()
        # Responses in request order: each an (asyncio.Task | bytes, keep_alive, head).
        self._pipeline: collections.deque = collections.deque()
        self._url = b""
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._rejected = False
        self._idle_handle: asyncio.TimerHandle | None = None
        self._closing = False

    # -- connection -----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._arm_idle_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._cancel_idle_timer()
        for item, _, _ in self._pipeline:
            if isinstance(item, asyncio.Task):
                item.cancel()
        self._pipeline.clear()

    def data_received(self, data: bytes) -> None:
        self._cancel_idle_timer()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b"Upgrade is not supported")
        except httptools.HttpParserError as err:
            self._fail(400, f"Malformed HTTP request: {err}".encode())

    def _fail(self, status: int, message: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(
                encode_response(status, [(b"content-type", b"text/plain")], message, False)
            )
            self._transport.close()

    def _arm_idle_timer(self) -> None:
        self._cancel_idle_timer()
        if self._idle_timeout > 0:
            self._idle_handle = self._loop.call_later(self._idle_timeout, self._idle)

    def _cancel_idle_timer(self) -> None:
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None

    def _idle(self) -> None:
        if not self._pipeline and self._transport is not None:
            self._transport.close()

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0
        self._rejected = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        length = self._headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            self._rejected = True
            return
        if (
            self._headers.get(b"expect", b"").lower() == b"100-continue"
            and self._transport is not None
        ):
            self._transport.write(_CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        if self._rejected:
            return
        self._body_size += len(chunk)
        if self._body_size > self._max_body:  # chunked bodies have no Content-Length
            self._rejected = True
            self._body = []
            return
        self._body.append(chunk)

    def on_message_complete(self) -> None:
        method = self._parser.get_method().decode("latin-1")
        keep_alive = self._parser.should_keep_alive()
        head = method == "HEAD"
        if self._rejected:
            status, headers, body = self._too_large(self._max_body)
            self._pipeline.append(
                (encode_response(status, headers, body, False, head), False, head)
            )
            self._flush()
            return
        url = self._url.decode("latin-1")
        path, _, _ = url.partition("?")
        request = Request(method, path, url, self._headers, b"".join(self._body))
        task = self._loop.create_task(self._handler(request))
        self._pipeline.append((task, keep_alive, head))
        task.add_done_callback(self._on_done)

    # -- responses ------------------------------------------------------------------------------

    def _on_done(self, _: asyncio.Task) -> None:
        self._flush()

    def _flush(self) -> None:
        """Writes every finished response at the head of the pipeline, in order."""
        while self._pipeline and not self._closing:
            item, keep_alive, head = self._pipeline[0]
            if isinstance(item, asyncio.Task):
                if not item.done():
                    return
                if item.cancelled():
                    self._pipeline.popleft()
                    continue
                error = item.exception()
                if error is not None:
                    logger.error("REST handler failed", exc_info=error)
                    data = encode_response(
                        500, [(b"content-type", b"text/plain")], b"Internal error", keep_alive, head
                    )
                else:
                    status, headers, body = item.result()
                    data = encode_response(status, headers, body, keep_alive, head)
            else:
                data = item
            self._pipeline.popleft()
            if self._transport is None or self._transport.is_closing():
                return
            self._transport.write(data)
            if not keep_alive:
                self._transport.close()
                self._closing = True
                return
        if not self._pipeline:
            self._arm_idle_timer()


async def start_http_server(
    handler: Handler,
    host: str,
    port: int,
    max_body_bytes: int,
    too_large: Callable[[int], Response],
    ssl_context=None,
) -> asyncio.AbstractServer:
    """Listens on host:port and serves `handler` until the returned server is closed."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HttpProtocol(handler, max_body_bytes, too_large),
        host,
        port,
        ssl=ssl_context,
        reuse_address=True,
        backlog=2048,
    )
