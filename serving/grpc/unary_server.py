"""A gRPC server for unary methods on tfrelay's own HTTP/2 layer (`http2.py`): the default
front end on `--port`, several times cheaper per call than grpc.aio.

Services are registered through their generated `add_XServicer_to_server` functions, so routing,
request parsing and response serialization are the generated code's. What gRPC adds to HTTP/2 is
implemented here as the gRPC over HTTP/2 spec and grpcio's server do it: the 5-byte message
prefix (gzip / deflate requests accepted), `grpc-timeout` deadlines, status and percent-encoded
message in the trailers, grpcio's messages for unknown methods, undecodable requests, oversized
messages and the concurrency cap. TLS and streaming methods are not implemented: with TLS tfrelay
uses grpc.aio (`build_server` decides).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import struct
import time
import zlib
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from tfrelay.serving.grpc import http2
from tfrelay.serving.grpc.http2_limits import Http2Limits
from tfrelay.serving.grpc.messages import (
    Inflater,
    MessageTooLarge,
    supported,
    too_large_message,
)
from tfrelay.serving.net.timeouts import TimeoutSweeper
from tfrelay.serving.security import UNAUTHENTICATED_MESSAGE, TokenAuth

logger = logging.getLogger(__name__)

_PREFIX = struct.Struct(">BI")
_CONTENT_TYPE = b"application/grpc"
_RESPONSE_HEADERS = http2.status_header(200) + http2.literal_header(b"content-type", _CONTENT_TYPE)
_OK_TRAILERS = http2.literal_header(b"grpc-status", b"0")
_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
# Request headers that are transport, not call metadata (grpcio leaves them out as well).
_NOT_METADATA = frozenset({b"te", b"content-type", b"grpc-timeout", b"grpc-encoding",
                           b"grpc-accept-encoding", b"grpc-message-type"})  # fmt: skip

METHOD_NOT_FOUND = "Method not found!"
DESERIALIZE_FAILED = "Exception deserializing request!"
SERIALIZE_FAILED = "Exception serializing response!"
CONCURRENCY_EXCEEDED = "Concurrent RPC limit exceeded!"
RESPONSES_WAITING = "Too many response bytes waiting for this client to read"
ONE_MESSAGE = "Unary RPC request must carry exactly one message"
DEADLINE_EXCEEDED = "Deadline Exceeded"
# Inflations past ON_LOOP_BYTES running at once, server-wide (issue 12 review: 100 concurrent
# 1 MB gzip bombs inflated on the default executor at once, a ~1.5 GiB peak). Each may reach the
# receive limit (256 MiB), so 2 bound the peak to ~2 limits; calls beyond wait their turn
# within their deadline (the deadline timer cancels a waiting call as any other).
MAX_CONCURRENT_INFLATIONS = 2
# Seconds between two checks of the connections' time limits (`Http2Connection.on_deadline`).
SWEEP_INTERVAL = 1.0


def buffered_too_much(declared: int, limit: int) -> str:
    """The message for a request refused because the connection's unfinished requests would
    exceed `max_buffered_request_bytes` with it."""
    return (
        f"Request bodies in progress on this connection would exceed {limit} bytes with this "
        f"message of {declared} bytes; retry when earlier calls finish"
    )


def percent_encode(message: str) -> bytes:
    """grpc-message encoding: UTF-8, then %XX for bytes outside printable ASCII and for '%'."""
    out = bytearray()
    for byte in message.encode("utf-8"):
        if 0x20 <= byte <= 0x7E and byte != 0x25:
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return bytes(out)


def status_block(code: grpc.StatusCode, message: str, trailers_only: bool) -> bytes:
    """The HPACK block carrying a status: trailers, or a whole Trailers-Only response."""
    block = _RESPONSE_HEADERS if trailers_only else b""
    block += http2.literal_header(b"grpc-status", str(code.value[0]).encode())
    if message:
        block += http2.literal_header(b"grpc-message", percent_encode(message))
    return block


def parse_timeout(value: bytes) -> float | None:
    """Seconds in a `grpc-timeout` header ("100m", "5S", ...); None if malformed."""
    unit = _TIMEOUT_UNITS.get(value[-1:])
    digits = value[:-1]
    if unit is None or not digits.isdigit() or len(digits) > 8:
        return None
    return int(digits) * unit


class RpcAbort(grpc.aio.AbortError):
    """Raised by `ServicerContext.abort`: ends the call with this status."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class ServicerContext:
    """The part of `grpc.aio.ServicerContext` tfrelay's servicers use."""

    __slots__ = ("_headers", "_peer", "_deadline", "code", "details", "timer", "expired")

    def __init__(self, headers: list[tuple[bytes, bytes]], peer: str, deadline: float | None):
        self._headers = headers
        self._peer = peer
        self._deadline = deadline
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.timer: asyncio.TimerHandle | None = None  # cancels the call at the deadline
        self.expired = False

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata=()) -> None:
        """Ends the call with `code` and `details` (raises RpcAbort)."""
        raise RpcAbort(code, details)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        """The request's custom metadata, as (key, value) pairs."""
        return tuple(
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in self._headers
            if name[:1] != b":" and name not in _NOT_METADATA
        )

    def peer(self) -> str:
        """The client's address, as grpcio formats it ("ipv4:127.0.0.1:5000")."""
        return self._peer

    def time_remaining(self) -> float | None:
        """Seconds until the client's deadline; None without one."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def set_code(self, code: grpc.StatusCode) -> None:
        self.code = code

    def set_details(self, details: str) -> None:
        self.details = details


class _CallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


class UnaryGrpcServer:
    """Serves registered unary methods over prior-knowledge HTTP/2 on TCP and/or a UNIX socket.

    Args:
      host: interface to bind.
      port: TCP port (0: none).
      socket_path: also listen on this UNIX socket ("" for none).
      max_receive_bytes: largest request message accepted.
      max_concurrent_rpcs: cap on RPCs in progress (None: no cap).
      max_connection_age: seconds after which a connection is asked to go away (None: never).
      max_connection_age_grace: seconds it then has to finish its calls.
      auth: bearer-token check, or None.
      limits: the HTTP/2 limits of each connection (production defaults if None).
    """

    def __init__(
        self,
        host: str,
        port: int,
        socket_path: str = "",
        max_receive_bytes: int = 2**31 - 1,
        max_concurrent_rpcs: int | None = None,
        max_connection_age: float | None = None,
        max_connection_age_grace: float | None = None,
        auth: TokenAuth | None = None,
        limits: Http2Limits | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.socket_path = socket_path
        self.max_receive_bytes = max_receive_bytes
        self.max_concurrent_rpcs = max_concurrent_rpcs
        self.max_connection_age = max_connection_age
        self.max_connection_age_grace = max_connection_age_grace
        self.auth = auth
        limits = limits or Http2Limits()
        if limits.max_buffered_request_bytes < 2 * max_receive_bytes:
            # Two messages of the largest size may be in flight on one connection.
            limits = dataclasses.replace(limits, max_buffered_request_bytes=2 * max_receive_bytes)
        self.limits = limits
        self._generic_handlers: list[grpc.GenericRpcHandler] = []
        self._methods: dict[str, grpc.RpcMethodHandler] = {}
        self._routes: dict[bytes, grpc.RpcMethodHandler | None] = {}
        self._listeners: list[asyncio.AbstractServer] = []
        self._connections: set[http2.Http2Connection] = set()
        self._active = 0
        self._coalescer = http2.WriteCoalescer()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: TimeoutSweeper | None = None
        self._inflations = asyncio.Semaphore(MAX_CONCURRENT_INFLATIONS)

    # -- registration (the generated code calls these) --------------------------------------

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._generic_handlers.extend(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        for method, handler in handlers.items():
            self._methods[f"/{service}/{method}"] = handler

    def _route(self, path: bytes) -> grpc.RpcMethodHandler | None:
        try:
            return self._routes[path]
        except KeyError:
            pass
        method = path.decode("utf-8", "replace")
        handler = self._methods.get(method)
        if handler is None:
            for generic in self._generic_handlers:
                handler = generic.service(_CallDetails(method))
                if handler is not None:
                    break
        if handler is not None and handler.unary_unary is None:
            handler = None  # streaming methods are not served here
        if len(self._routes) < 1024:
            self._routes[path] = handler
        return handler

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Binds the ports and starts accepting connections.

        Raises:
          RuntimeError: a port cannot be bound (as grpcio's add_insecure_port).
        """
        self._loop = asyncio.get_running_loop()
        self._sweeper = TimeoutSweeper(self._loop, SWEEP_INTERVAL)
        try:
            if self.port:
                self._listeners.append(
                    await self._loop.create_server(
                        self._connection, self.host, self.port, reuse_address=True
                    )
                )
            if self.socket_path:
                if os.path.exists(self.socket_path):
                    os.unlink(self.socket_path)
                self._listeners.append(
                    await self._loop.create_unix_server(self._connection, self.socket_path)
                )
        except OSError as err:
            await self.stop(None)
            raise RuntimeError(f"Failed to bind to address {self.host}:{self.port}: {err}") from err

    async def stop(self, grace: float | None) -> None:
        """Stops accepting, asks clients to go away and waits up to `grace` s for open calls."""
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()
        for connection in list(self._connections):
            connection.go_away()
        deadline = time.monotonic() + (grace or 0)
        while any(not c.idle for c in self._connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self._connections):
            connection.close()
        if self.socket_path and os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        if self._sweeper is not None:
            self._sweeper.close()

    def _connection(self) -> http2.Http2Connection:
        connection = http2.Http2Connection(
            self._request,
            self._data,
            self._connection_closed,
            self._coalescer,
            on_headers=self._headers,
            limits=self.limits,
        )
        self._connections.add(connection)
        if self._sweeper is not None:
            self._sweeper.add(connection)
        if self.max_connection_age and self._loop is not None:
            self._loop.call_later(self.max_connection_age, self._age_out, connection)
        return connection

    def _connection_closed(self, connection: http2.Http2Connection) -> None:
        self._connections.discard(connection)
        if self._sweeper is not None:
            self._sweeper.discard(connection)

    def _age_out(self, connection: http2.Http2Connection) -> None:
        if connection not in self._connections:
            return
        connection.go_away()
        if self.max_connection_age_grace is not None and self._loop is not None:
            self._loop.call_later(self.max_connection_age_grace, connection.close)
        else:
            self._close_when_idle(connection)

    def _close_when_idle(self, connection: http2.Http2Connection) -> None:
        if connection.idle:
            connection.close()
        elif self._loop is not None and connection in self._connections:
            self._loop.call_later(0.05, self._close_when_idle, connection)

    # -- calls -------------------------------------------------------------------------------

    def _fail(
        self, connection: http2.Http2Connection, stream: http2.Stream, code: grpc.StatusCode,
        message: str,
    ) -> None:  # fmt: skip
        connection.respond_trailers_only(stream, status_block(code, message, trailers_only=True))

    def _headers(self, connection: http2.Http2Connection, stream: http2.Stream) -> None:
        """Checks a call from its headers alone, before any of its body is buffered (issue 12):
        not gRPC, then the token (an unknown method without a token is UNAUTHENTICATED, as
        grpc.aio's interceptor answers), then the method; keeps (handler, timeout, encoding)."""
        if stream.oversized_headers:
            limit = connection.limits.max_header_list_size
            self._fail(connection, stream, grpc.StatusCode.RESOURCE_EXHAUSTED,
                       f"Received header list larger than max ({stream.oversized_headers} "
                       f"vs. {limit})")  # fmt: skip
            return
        path = content_type = timeout = encoding = authorization = method = b""
        for name, value in stream.headers:
            if name == b":path":
                path = value
            elif name == b":method":
                method = value
            elif name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                timeout = value
            elif name == b"grpc-encoding":
                encoding = value
            elif name == b"authorization":
                authorization = value
        if method != b"POST" or not content_type.startswith(_CONTENT_TYPE):
            block = http2.status_header(405 if method != b"POST" else 415)
            block += status_block(grpc.StatusCode.INTERNAL, "not a gRPC request", False)
            connection.respond_trailers_only(stream, block)
            return
        if self.auth is not None and not self.auth.accepts(
            authorization.decode("latin-1") if authorization else None
        ):
            self._fail(connection, stream, grpc.StatusCode.UNAUTHENTICATED,
                       UNAUTHENTICATED_MESSAGE)  # fmt: skip
            return
        handler = self._route(path)
        if handler is None:
            self._fail(connection, stream, grpc.StatusCode.UNIMPLEMENTED, METHOD_NOT_FOUND)
            return
        seconds = None
        if timeout:
            seconds = parse_timeout(timeout)
            if seconds is None:
                self._fail(connection, stream, grpc.StatusCode.INTERNAL,
                           f"Invalid grpc-timeout: {timeout.decode('latin-1')}")  # fmt: skip
                return
        stream.call = (handler, seconds, encoding)

    def _data(self, connection: http2.Http2Connection, stream: http2.Stream) -> None:
        # Refuse an oversized message as soon as its length prefix arrives, not after buffering
        # it; below the limit, the stream is never granted window past the declared length.
        if stream.body_bytes < 5:
            return
        window = stream.receive
        assert window is not None  # DATA that did not end the stream has created it
        declared = window.cap  # 5 + the prefix's length, once known
        if declared is None:
            length = _PREFIX.unpack_from(b"".join(stream.body)[:5])[1]
            if length > self.max_receive_bytes:
                self._reject(connection, stream, grpc.StatusCode.RESOURCE_EXHAUSTED,
                             too_large_message(length, self.max_receive_bytes))  # fmt: skip
                return
            declared = 5 + length
            if not connection.admit(stream, declared):
                # Refused at once, before any window is spent on it (issue 12 review).
                limit = connection.limits.max_buffered_request_bytes
                self._reject(connection, stream, grpc.StatusCode.RESOURCE_EXHAUSTED,
                             buffered_too_much(declared, limit))  # fmt: skip
                return
            window.limit(declared)
        if stream.body_bytes > declared:
            # DATA past the declared message: a second message, refused before it is buffered.
            self._reject(connection, stream, grpc.StatusCode.INTERNAL, ONE_MESSAGE)

    def _reject(
        self, connection: http2.Http2Connection, stream: http2.Stream, code: grpc.StatusCode,
        message: str,
    ) -> None:  # fmt: skip
        stream.rejected = True
        stream.body = []
        self._fail(connection, stream, code, message)

    def _request(self, connection: http2.Http2Connection, stream: http2.Stream) -> None:
        call = stream.call
        if call is None:
            return  # answered from its headers already
        handler, seconds, encoding = call
        if self.max_concurrent_rpcs is not None and self._active >= self.max_concurrent_rpcs:
            self._fail(connection, stream, grpc.StatusCode.RESOURCE_EXHAUSTED,
                       CONCURRENCY_EXCEEDED)  # fmt: skip
            return
        body = stream.body[0] if len(stream.body) == 1 else b"".join(stream.body)
        stream.body = []
        message = self._message(connection, stream, body, encoding)
        if message is None:
            return
        request = inflater = None
        if isinstance(message, Inflater):
            inflater = message  # the rest is inflated, then deserialized, in a thread
        else:
            try:
                request = handler.request_deserializer(message)
            except DecodeError:
                self._fail(connection, stream, grpc.StatusCode.INTERNAL, DESERIALIZE_FAILED)
                return
        context = ServicerContext(
            stream.headers, connection.peer, None if seconds is None else time.monotonic() + seconds
        )
        self._active += 1
        loop = self._loop
        assert loop is not None
        if inflater is None:
            coroutine = self._call(
                connection, stream, handler.unary_unary(request, context), handler, context
            )
        else:
            coroutine = self._call_off_loop(connection, stream, handler, context, inflater)
        task = loop.create_task(coroutine)
        # Cleanup in a done callback: a task cancelled before its first step never runs its body.
        task.add_done_callback(functools.partial(self._call_done, connection, stream, context))
        stream.task = task
        if seconds is not None:
            # A timer, not asyncio.wait_for: no second task per call.
            context.timer = loop.call_later(seconds, _expire, context, task)

    def _message(
        self, connection: http2.Http2Connection, stream: http2.Stream, body: bytes, encoding: bytes
    ) -> bytes | Inflater | None:
        """The one request message in `body`: decompressed, or an Inflater holding what is left
        to inflate (off the loop); None after answering an error."""
        if len(body) < 5:
            self._fail(connection, stream, grpc.StatusCode.INTERNAL,
                       "Unary RPC request without a message")  # fmt: skip
            return None
        compressed, length = _PREFIX.unpack_from(body)
        if length > self.max_receive_bytes:
            self._fail(connection, stream, grpc.StatusCode.RESOURCE_EXHAUSTED,
                       too_large_message(length, self.max_receive_bytes))  # fmt: skip
            return None
        if len(body) != 5 + length:
            self._fail(connection, stream, grpc.StatusCode.INTERNAL, ONE_MESSAGE)
            return None
        message = body[5:] if len(body) > 5 else b""
        if not compressed:
            return message
        if not supported(encoding):
            name = encoding.decode("latin-1") or "identity"
            self._fail(connection, stream, grpc.StatusCode.UNIMPLEMENTED,
                       f"Compression algorithm '{name}' is not supported")  # fmt: skip
            return None
        inflater = Inflater(encoding, self.max_receive_bytes)
        try:
            inflated = inflater.start(message)
        except zlib.error:
            self._fail(connection, stream, grpc.StatusCode.INTERNAL,
                       f"Cannot decompress the {encoding.decode()} request")  # fmt: skip
            return None
        except MessageTooLarge as err:
            self._fail(connection, stream, grpc.StatusCode.RESOURCE_EXHAUSTED, str(err))
            return None
        return inflater if inflated is None else inflated

    async def _call_off_loop(
        self,
        connection: http2.Http2Connection,
        stream: http2.Stream,
        handler: grpc.RpcMethodHandler,
        context: ServicerContext,
        work: Inflater,
    ) -> None:
        """A call whose request is inflated (past `ON_LOOP_BYTES`) and deserialized in a thread."""
        loop = asyncio.get_running_loop()
        try:
            async with self._inflations:
                request = await loop.run_in_executor(None, _decode_request, handler, work)
        except RpcAbort as abort:
            self._fail(connection, stream, abort.code, abort.details)
            return
        await self._call(
            connection, stream, handler.unary_unary(request, context), handler, context
        )

    async def _call(
        self,
        connection: http2.Http2Connection,
        stream: http2.Stream,
        call: Awaitable[Any],
        handler: grpc.RpcMethodHandler,
        context: ServicerContext,
    ) -> None:
        try:
            response = await call
            try:
                # Predict's serializer is the identity (it answers wire bytes, issue 15).
                payload = handler.response_serializer(response)
            except Exception:
                logger.exception("Cannot serialize the response of %s", stream.stream_id)
                self._fail(connection, stream, grpc.StatusCode.INTERNAL, SERIALIZE_FAILED)
                return
            if context.code not in (None, grpc.StatusCode.OK):
                self._fail(connection, stream, context.code, context.details)
                return
            if connection.pending_bytes and not connection.can_queue(len(payload) + 5):
                # The client leaves earlier responses unread: bounded, not queued without end.
                self._fail(connection, stream, grpc.StatusCode.RESOURCE_EXHAUSTED,
                           RESPONSES_WAITING)  # fmt: skip
                return
            connection.respond(
                stream, _RESPONSE_HEADERS, _PREFIX.pack(0, len(payload)) + payload, _OK_TRAILERS
            )
        except RpcAbort as abort:
            self._fail(connection, stream, abort.code, abort.details)
        except Exception as err:
            logger.exception("Unexpected error in a gRPC call")
            self._fail(connection, stream, grpc.StatusCode.UNKNOWN,
                       f"Unexpected {type(err)}: {err}")  # fmt: skip

    def _call_done(
        self,
        connection: http2.Http2Connection,
        stream: http2.Stream,
        context: ServicerContext,
        task: asyncio.Task,
    ) -> None:
        self._active -= 1
        if context.timer is not None:
            context.timer.cancel()
        if task.cancelled() and context.expired:
            self._fail(connection, stream, grpc.StatusCode.DEADLINE_EXCEEDED, DEADLINE_EXCEEDED)
        # Otherwise a cancelled call was reset by its client or lost its connection: no answer.


def _decode_request(handler: grpc.RpcMethodHandler, work: Inflater) -> Any:
    """Inflates the rest of a request and deserializes it, in a worker thread.

    Raises:
      RpcAbort: with the status grpcio answers for an oversized, corrupt or undecodable message.
    """
    try:
        message = work.finish()
    except MessageTooLarge as err:
        raise RpcAbort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(err)) from err
    except zlib.error as err:
        message = f"Cannot decompress the {work.encoding} request"
        raise RpcAbort(grpc.StatusCode.INTERNAL, message) from err
    try:
        return handler.request_deserializer(message)
    except DecodeError as err:
        raise RpcAbort(grpc.StatusCode.INTERNAL, DESERIALIZE_FAILED) from err


def _expire(context: ServicerContext, task: asyncio.Task) -> None:
    context.expired = True
    task.cancel()


def channel_argument_settings(
    arguments: Sequence[tuple[str, int | str]],
) -> tuple[dict[str, float], list[str]]:
    """Splits `--grpc_channel_arguments` into what UnaryGrpcServer applies and what it ignores.

    Returns:
      ({"max_connection_age": s, "max_connection_age_grace": s, "max_receive_bytes": n,
      "max_concurrent_streams": n, "max_header_list_size": n}, the names of the other
      arguments).
    """
    applied: dict[str, float] = {}
    ignored: list[str] = []
    for key, value in arguments:
        if key == "grpc.max_connection_age_ms" and isinstance(value, int):
            applied["max_connection_age"] = value / 1000
        elif key == "grpc.max_connection_age_grace_ms" and isinstance(value, int):
            applied["max_connection_age_grace"] = value / 1000
        elif key == "grpc.max_receive_message_length" and isinstance(value, int) and value >= 0:
            applied["max_receive_bytes"] = value
        elif key == "grpc.max_concurrent_streams" and isinstance(value, int) and value > 0:
            applied["max_concurrent_streams"] = value
        elif key == "grpc.max_metadata_size" and isinstance(value, int) and value > 0:
            applied["max_header_list_size"] = value  # grpc-core advertises it the same way
        elif key in _CLIENT_SIDE_ARGUMENTS or key == "grpc.max_send_message_length":
            continue  # no effect on a server (grpcio ignores them too)
        else:
            ignored.append(key)
    return applied, ignored


def limits_from_channel_arguments(applied: dict[str, float]) -> Http2Limits:
    """The HTTP/2 limits `channel_argument_settings`' applied arguments ask for (defaults
    otherwise)."""
    defaults = Http2Limits()
    header_list = int(applied.get("max_header_list_size", defaults.max_header_list_size))
    return dataclasses.replace(
        defaults,
        max_concurrent_streams=int(
            applied.get("max_concurrent_streams", defaults.max_concurrent_streams)
        ),
        max_header_list_size=header_list,
        max_header_block_bytes=max(defaults.max_header_block_bytes, 2 * header_list),
    )


# Channel arguments that only configure clients; TF Serving manifests pass some of them anyway.
_CLIENT_SIDE_ARGUMENTS = frozenset(
    {"grpc.lb_policy_name", "grpc.service_config", "grpc.primary_user_agent",
     "grpc.secondary_user_agent", "grpc.default_authority", "grpc.enable_retries",
     "grpc.dns_enable_srv_queries"}
)  # fmt: skip
