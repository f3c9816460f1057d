"""Fuzz target: the HTTP/2 frame layer (serving/grpc/http2.py `Http2Connection`, with its HPACK
decoder) on arbitrary frames, through the in-memory transport (support/h2_client.py).

A connection gets the preface (or a mangled one), then a sequence of structured frames of every
type (valid header blocks or random ones, SETTINGS with any ids and values, WINDOW_UPDATE with any
increment, DATA with gRPC prefixes, CONTINUATION runs, unknown types, any flags and stream ids),
the whole then mutated at random bytes and delivered split at arbitrary points. Complete requests
are answered (Trailers-Only). Invariants: `data_received` never raises; everything written parses
as whole frames; GOAWAY and RST_STREAM carry valid error codes; the open streams stay within the
advertised limit and the memory the connection keeps stays bounded.
"""

from __future__ import annotations

import asyncio
import struct
import tracemalloc

import hpack
from fuzz import harness
from fuzz.strategies import splits
from hypothesis import given
from hypothesis import strategies as st

from support.h2_client import REQUEST_HEADERS, Client, grpc_message, parse_frames
from tfrelay.serving.grpc import http2

NAME = "http2_frames"
ERROR_CODES = range(0x0, 0xE)  # NO_ERROR .. HTTP_1_1_REQUIRED (RFC 9113 section 7)
KEPT_BYTES = 512 * 1024
TRAILERS = hpack.Encoder().encode(
    [(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "0")]
)

stream_ids = st.one_of(st.sampled_from([0, 1, 3, 5, 7, 2, 2**31 - 1]), st.integers(0, 2**31 - 1))
flags = st.one_of(st.sampled_from([0, 0x1, 0x4, 0x5, 0x8, 0x20, 0x25]), st.integers(0, 255))
header_lists = st.lists(
    st.one_of(
        st.sampled_from(REQUEST_HEADERS + [("grpc-timeout", "1S"), (":path", "/x/y")]),
        st.tuples(st.text(max_size=6), st.text(max_size=12)),
    ),
    max_size=8,
)


@st.composite
def payloads(draw, kind: int, encoder: hpack.Encoder) -> bytes:
    if kind in (http2.HEADERS, http2.CONTINUATION) and draw(st.booleans()):
        block = encoder.encode(draw(header_lists), huffman=draw(st.booleans()))
        if draw(st.booleans()):
            cut = draw(st.integers(0, len(block)))
            return block[:cut] if kind == http2.HEADERS else block[cut:]
        return block
    if kind == http2.SETTINGS:
        entries = draw(
            st.lists(
                st.tuples(st.integers(0, 8), st.integers(0, 2**32 - 1)).map(
                    lambda e: struct.pack(">HI", *e)
                ),
                max_size=6,
            )
        )
        return b"".join(entries) + draw(st.sampled_from([b"", b"", b"\x00"]))
    if kind == http2.WINDOW_UPDATE:
        return struct.pack(">I", draw(st.sampled_from([0, 1, 2**16, 2**31 - 1, 2**32 - 1])))
    if kind == http2.DATA and draw(st.booleans()):
        body = draw(st.binary(max_size=32))
        declared = draw(st.one_of(st.none(), st.integers(0, 2**32 - 1)))
        return grpc_message(body, declared, compressed=draw(st.booleans()))
    size = {http2.PING: 8, http2.RST_STREAM: 4, http2.PRIORITY: 5, http2.GOAWAY: 8}.get(kind)
    if size is not None and draw(st.booleans()):
        return draw(st.binary(min_size=size, max_size=size))
    return draw(st.binary(max_size=40))


@st.composite
def connections(draw) -> bytes:
    encoder = hpack.Encoder()
    preface = draw(st.sampled_from([http2.PREFACE] * 8 + [b"PRI * HTTP/1.1\r\n", b""]))
    frames = [preface, http2.frame(http2.SETTINGS, 0, 0, b"")]
    for _ in range(draw(st.integers(0, 12))):
        kind = draw(st.one_of(st.integers(0, 9), st.integers(10, 255)))
        payload = draw(payloads(kind, encoder))
        frames.append(http2.frame(kind, draw(flags), draw(stream_ids), payload))
    data = bytearray(b"".join(frames))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 4]))):
        at = draw(st.integers(len(preface), max(len(preface), len(data) - 1)))
        if at < len(data):
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


async def drive(pieces: list[bytes]) -> tuple[Client, bytes, int]:
    """Feeds the pieces to a new connection; (client, all bytes written, bytes kept)."""

    def answer(connection: http2.Http2Connection, stream: http2.Stream) -> None:
        connection.respond_trailers_only(stream, TRAILERS)

    before, _ = tracemalloc.get_traced_memory()
    client = Client(on_request=lambda _c, stream: answer(client.connection, stream))
    written = bytearray(client.transport.take())
    for piece in pieces:
        if client.transport.closed:
            break
        try:
            client.connection.data_received(piece)
        except Exception as err:
            if harness.known_finding(NAME, err):
                return client, b"", 0
            raise
        await asyncio.sleep(0)
        written += client.transport.take()
        assert len(client.connection.streams) <= client.connection.limits.max_concurrent_streams
    kept, _ = tracemalloc.get_traced_memory()
    return client, bytes(written), kept - before


@given(st.data(), connections())
@harness.counted(NAME)
def check_frames(data, stream: bytes) -> None:
    pieces = data.draw(splits(stream, max_cuts=6))
    tracemalloc.start()
    try:
        client, written, kept = asyncio.run(drive(pieces))
    finally:
        tracemalloc.stop()
    assert kept <= KEPT_BYTES + 4 * len(stream), kept
    frames = parse_frames(written)
    assert sum(9 + len(payload) for *_, payload in frames) == len(written), "partial frame"
    for kind, _, stream_id, payload in frames:
        if kind == http2.GOAWAY:
            assert len(payload) >= 8 and stream_id == 0
            assert struct.unpack_from(">I", payload, 4)[0] in ERROR_CODES
        elif kind == http2.RST_STREAM:
            assert len(payload) == 4 and stream_id != 0
            assert struct.unpack(">I", payload)[0] in ERROR_CODES


def test_arbitrary_frames_get_valid_frames_back():
    harness.run(NAME, check_frames)
