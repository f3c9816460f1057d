"""An in-memory asyncio transport for driving the protocol classes without sockets.

As uvicorn's and h2's own tests do, `HttpProtocol` (HTTP/1.1) and `Http2Connection` (HTTP/2) are
exercised by feeding bytes to `data_received` and reading what they wrote here. The transport
records writes, closing, and the pause/resume calls a protocol makes on it; a test can also
simulate the peer not reading (`set_write_buffer_size` + the protocol's `pause_writing`).
"""

from __future__ import annotations

import asyncio
from typing import Any


class FakeTransport(asyncio.Transport):
    """Records what a protocol writes; never touches the network.

    Args:
      peername: what `get_extra_info("peername")` answers.
    """

    def __init__(self, peername: Any = ("127.0.0.1", 40000)) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self.reading_paused = False
        self.write_buffer_size = 0
        self._extra = {"peername": peername, "sockname": ("127.0.0.1", 8501)}
        self._protocol: asyncio.BaseProtocol | None = None

    # -- what tests read -------------------------------------------------------------------

    def take(self) -> bytes:
        """The bytes written since the last call."""
        data = bytes(self.written)
        self.written.clear()
        return data

    # -- asyncio.Transport ---------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol | None:  # type: ignore[override]
        return self._protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            return
        self.written += data

    def writelines(self, list_of_data) -> None:  # type: ignore[override]
        for data in list_of_data:
            self.write(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._protocol is not None:
                asyncio.get_event_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False

    def is_reading(self) -> bool:
        return not self.reading_paused

    def get_write_buffer_size(self) -> int:
        return self.write_buffer_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (16 * 1024, 64 * 1024)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False


def connect(protocol: asyncio.Protocol, transport: FakeTransport | None = None) -> FakeTransport:
    """Attaches `protocol` to a new (or the given) fake transport and calls connection_made.

    Args:
      protocol: an asyncio.Protocol (call inside a running event loop if it needs one).
      transport: an existing fake transport to reuse.

    Returns:
      The transport, for reading what the protocol wrote.
    """
    transport = transport or FakeTransport()
    transport.set_protocol(protocol)
    protocol.connection_made(transport)
    return transport
