"""gRPC request messages: the receive limit on the decompressed size, and decompression that is
streamed with that cap and leaves the event loop once it gets large.

Issue 12: a 1 MB gzip body inflating to 1 GiB was decompressed whole on the event loop, a 6 s
freeze for every client and a 2 GB peak, before RESOURCE_EXHAUSTED. Here zlib never produces
more than the limit plus one byte (`decompressobj` with `max_length`), the first
`ON_LOOP_BYTES` are inflated on the loop (a small compressed request pays no thread hop), and
the rest, if any, in a worker thread (zlib releases the GIL while it inflates).

Deserialization is not moved: protobuf's C++ parser holds the GIL in any thread (measured: a
120 MB PredictRequest parses in 39 ms, and the loop stalled 45 ms with the parse in a thread),
so a thread would only add a hop. It costs ~0.03 ms per MB.
"""

from __future__ import annotations

import zlib

# Output inflated on the event loop before the rest moves to a thread. Measured: 256 KiB of
# zeros (the slowest output to produce) inflate in 0.53 ms, typical data in 0.04 ms; a thread
# hop costs ~50 us, so small compressed requests stay on the loop.
ON_LOOP_BYTES = 256 * 1024

_WBITS = {b"gzip": 31, b"deflate": 15}
_CHUNK = 1024 * 1024


class MessageTooLarge(Exception):
    """The (decompressed) message exceeds the receive limit.

    Attributes:
      size: its size, or None when only known to be above the limit (decompression stopped).
      limit: the receive limit.
    """

    def __init__(self, size: int | None, limit: int) -> None:
        super().__init__(too_large_message(size, limit))
        self.size = size
        self.limit = limit


def too_large_message(size: int | None, limit: int) -> str:
    """grpcio's text for an oversized message: "Received message larger than max (N vs. M)".

    A compressed message is not inflated past the limit, so its size is then "more than M".
    """
    shown = f"more than {limit}" if size is None else str(size)
    return f"Received message larger than max ({shown} vs. {limit})"


def supported(encoding: bytes) -> bool:
    """Whether `grpc-encoding` names a compression this server inflates."""
    return encoding in _WBITS


class Inflater:
    """Inflates one compressed message without ever producing more than `limit` bytes.

    Args:
      encoding: b"gzip" or b"deflate".
      limit: the receive limit (bytes after decompression).

    Attributes:
      encoding: the encoding's name ("gzip" or "deflate").
    """

    def __init__(self, encoding: bytes, limit: int) -> None:
        self.encoding = encoding.decode()
        self._inflate = zlib.decompressobj(_WBITS[encoding])
        self._limit = limit
        self._head = b""

    def start(self, data: bytes) -> bytes | None:
        """Inflates up to `ON_LOOP_BYTES` of `data`: the whole message, or None if there is more
        (then call `finish`, in a thread).

        Raises:
          MessageTooLarge: above the limit.
          zlib.error: not a valid stream.
        """
        self._head = self._inflate.decompress(data, min(ON_LOOP_BYTES, self._limit + 1))
        if self._inflate.unconsumed_tail:
            if len(self._head) > self._limit:
                raise MessageTooLarge(None, self._limit)
            return None
        return self._complete(self._head)

    def finish(self) -> bytes:
        """Inflates the rest (call only after `start` returned None).

        Inflates `_CHUNK` bytes at a time: one `decompress` call with a large `max_length`
        grows CPython's output in blocks and joins them at the end, so a bomb cost twice the
        limit (measured: +451 MiB for the 256 MiB limit); in chunks it costs the limit plus one.

        Raises:
          MessageTooLarge: above the limit (inflation stops at limit + 1 bytes).
          zlib.error: not a valid stream.
        """
        chunks = [self._head]
        size = len(self._head)
        self._head = b""
        tail = self._inflate.unconsumed_tail
        while tail and size <= self._limit:
            chunk = self._inflate.decompress(tail, min(_CHUNK, self._limit + 1 - size))
            chunks.append(chunk)
            size += len(chunk)
            tail = self._inflate.unconsumed_tail
        if size > self._limit:
            raise MessageTooLarge(None, self._limit)
        return self._complete(b"".join(chunks))

    def _complete(self, message: bytes) -> bytes:
        if len(message) > self._limit:
            raise MessageTooLarge(None, self._limit)
        if not self._inflate.eof:
            raise zlib.error("truncated compressed message")
        return message
