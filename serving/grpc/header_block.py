"""HPACK header-block decoding for the gRPC front end: `hpack`'s table and Huffman code, without
its per-field overhead.

`hpack.Decoder.decode` spends ~25 us on a request's nine indexed fields (logging calls, copies of
the rest of the block per literal); gRPC clients send such a block with every call, and
grpc-core adds its per-call `grpc-timeout` as a new indexed literal, so reusing decoded blocks
alone does not help them. This decoder reads the same representations (RFC 7541, 6.1-6.2) into
the same `hpack.table.HeaderTable`, so the two stay interchangeable; blocks starting with a
table-size update (rare: after a SETTINGS change) go to `hpack.Decoder` whole.
"""

from __future__ import annotations

import hpack
from hpack.huffman_table import decode_huffman
from hpack.table import table_entry_size

DecodedHeaders = list[tuple[bytes, bytes]]
_CACHE_ENTRIES = 64


class HeaderListTooLarge(hpack.OversizedHeaderListError):
    """A header list over the limit, decoded to its end so the HPACK table stays in step with the
    client's (the stream can be refused without losing the connection).

    Attributes:
      size: the decoded list's size (RFC 7541 sizes: name + value + 32 per field).
      limit: the limit it exceeds.
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"A header list of {size} bytes exceeds the limit of {limit}")
        self.size = size
        self.limit = limit


def _integer(data: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    """(value, next position) of the prefixed integer starting at `pos` (RFC 7541, 5.1)."""
    mask = (1 << prefix_bits) - 1
    value = data[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        if pos >= len(data):
            raise hpack.HPACKDecodingError("Truncated header block")
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:
            raise hpack.HPACKDecodingError("HPACK integer too large")


def _string(data: bytes, pos: int) -> tuple[bytes, int]:
    huffman = data[pos] & 0x80
    length, pos = _integer(data, pos, 7)
    end = pos + length
    if end > len(data):
        raise hpack.HPACKDecodingError("Truncated header block")
    value = data[pos:end]
    return (decode_huffman(value) if huffman else value), end


class HeaderBlockDecoder:
    """Decodes one connection's request header blocks (the HPACK state is per connection).

    Args:
      max_header_list_size: largest decoded header list accepted (RFC 7541 sizes).
    """

    def __init__(self, max_header_list_size: int) -> None:
        self._decoder = hpack.Decoder(max_header_list_size=max_header_list_size)
        self._table = self._decoder.header_table
        self._max_size = max_header_list_size
        self._cache: dict[bytes, DecodedHeaders] = {}

    def decode(self, block: bytes) -> DecodedHeaders:
        """The (name, value) pairs of a complete header block, as bytes.

        The returned list may be shared between identical blocks: do not modify it.

        Past the size limit the rest of the block is still decoded (table insertions included)
        but nothing more is kept, so an HPACK bomb (CVE-2016-6581: a few bytes referencing a
        large table entry again and again) costs no memory.

        Raises:
          HeaderListTooLarge: the decoded list exceeds the limit (the table is still in step).
          hpack.HPACKError: a malformed block (a connection error: the state is lost).
        """
        cached = self._cache.get(block)
        if cached is not None:
            return cached
        if block and block[0] & 0xE0 == 0x20:
            self._cache.clear()
            return self._decoder.decode(block, raw=True)
        try:
            return self._decode(block)
        except IndexError as err:
            # A representation cut off by the block's end (fuzzing finding F1, issue 12).
            self._cache.clear()
            raise hpack.HPACKDecodingError("Truncated header block") from err

    def _decode(self, block: bytes) -> DecodedHeaders:
        headers: DecodedHeaders = []
        table = self._table
        changed = False
        size = 0
        pos = 0
        end = len(block)
        while pos < end:
            first = block[pos]
            if first & 0x80:  # indexed field
                index, pos = _integer(block, pos, 7)
                name, value = table.get_by_index(index)
            elif first & 0x40:  # literal with incremental indexing
                index, pos = _integer(block, pos, 6)
                if index:
                    name = table.get_by_index(index)[0]
                else:
                    name, pos = _string(block, pos)
                value, pos = _string(block, pos)
                table.add(name, value)
                changed = True
            elif first & 0x20:
                raise hpack.HPACKDecodingError("Table size update not at the start of the block")
            else:  # literal without indexing / never indexed
                index, pos = _integer(block, pos, 4)
                if index:
                    name = table.get_by_index(index)[0]
                else:
                    name, pos = _string(block, pos)
                value, pos = _string(block, pos)
            size += table_entry_size(name, value)
            if size <= self._max_size:
                headers.append((name, value))
        if size > self._max_size:
            if changed:
                self._cache.clear()
            raise HeaderListTooLarge(size, self._max_size)
        if changed:
            self._cache.clear()
        elif len(self._cache) < _CACHE_ENTRIES:
            # The block left the table as it was: the same bytes decode the same way until a
            # block changes the table.
            self._cache[block] = headers
        return headers
