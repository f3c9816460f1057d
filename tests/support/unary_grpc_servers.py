"""tfrelay's own gRPC front end (`UnaryGrpcServer`) serving one test method from an event loop in
a thread, for attack tests that need HTTP/2 limits other than the model server's defaults."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator

import grpc

from support.servers import LOOPBACK, free_port
from tfrelay.serving.grpc.http2_limits import Http2Limits
from tfrelay.serving.grpc.unary_server import UnaryGrpcServer


@contextlib.contextmanager
def unary_grpc_server(
    service: str,
    method: str,
    answer: Callable[[bytes, object], Awaitable[bytes]],
    limits: Http2Limits,
) -> Iterator[UnaryGrpcServer]:
    """Serves `/service/method` with `answer` on 127.0.0.1 until the block ends.

    Args:
      service: the service name ("test.Echo").
      method: the method name ("Echo").
      answer: `async (request bytes, context) -> response bytes`.
      limits: the HTTP/2 limits under test.

    Yields:
      The started server (its `port` attribute is the port to dial).
    """
    loop = asyncio.new_event_loop()
    server = UnaryGrpcServer(LOOPBACK, free_port(), limits=limits)
    handler = grpc.unary_unary_rpc_method_handler(
        answer, request_deserializer=bytes, response_serializer=bytes
    )
    server.add_registered_method_handlers(service, {method: handler})
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
