"""Frame sizes, header blocks and CONTINUATION (issue 12): a frame above the advertised size is
FRAME_SIZE_ERROR before it is buffered, a header block is bounded in CONTINUATION frames and
bytes (the 2024 CONTINUATION floods), a header list over the limit refuses only its stream and
costs no memory (HPACK bomb, CVE-2016-6581)."""

from __future__ import annotations

import hpack

from support.h2_client import REQUEST_HEADERS, data, grpc_message, started
from tfrelay.serving.grpc import http2
from tfrelay.serving.grpc.http2_limits import Http2Limits


async def test_a_frame_above_16_kib_is_frame_size_error_from_its_header_alone():
    client = started()
    client.send(client.headers(1))
    # Only the 9-byte header of a 16 MiB DATA frame: refused at once, nothing buffered.
    client.send(b"\xff\xff\xff" + bytes([http2.DATA, 0]) + (1).to_bytes(4, "big"))
    client.read()
    assert client.goaway()[1] == http2.FRAME_SIZE_ERROR
    assert client.connection._buffer == b""


async def test_a_16_kib_frame_is_accepted():
    client = started()
    message = grpc_message(b"x" * (16_384 - 5))
    client.send(client.headers(1), data(1, message, end_stream=True))
    client.read()
    assert client.goaway() is None
    assert client.requests[0].body_bytes == 16_384


def _headers_without_end(client, stream_id: int, block: bytes) -> bytes:
    return http2.frame(http2.HEADERS, 0, stream_id, block)


def _continuation(stream_id: int, block: bytes, last: bool = False) -> bytes:
    return http2.frame(http2.CONTINUATION, http2.END_HEADERS if last else 0, stream_id, block)


async def test_eight_continuation_frames_complete_a_header_block():
    client = started()
    block = client.header_block()
    pieces = [block[i : i + 10] for i in range(0, len(block), 10)]
    assert 3 <= len(pieces) <= 9
    frames = [_headers_without_end(client, 1, pieces[0])]
    frames += [_continuation(1, piece) for piece in pieces[1:-1]]
    frames += [_continuation(1, b"")] * (8 - len(pieces) + 1)  # padding the count up to 8
    frames.append(_continuation(1, pieces[-1], last=True))
    client.send(*frames, data(1, grpc_message(b""), end_stream=True))
    client.read()
    assert client.goaway() is None
    assert client.requests[0].headers[2] == (b":path", REQUEST_HEADERS[2][1].encode())


async def test_endless_empty_continuation_frames_are_enhance_your_calm_at_the_ninth():
    client = started()
    client.send(_headers_without_end(client, 1, client.header_block()))
    client.send(*[_continuation(1, b"")] * 8)
    assert client.read() == []
    client.send(_continuation(1, b""))
    client.read()
    assert client.goaway()[1] == http2.ENHANCE_YOUR_CALM
    assert client.transport.closed


async def test_an_encoded_header_block_above_its_limit_is_enhance_your_calm():
    client = started(limits=Http2Limits(max_header_block_bytes=20_000))
    client.send(_headers_without_end(client, 1, b"\x00" * 16_000))
    client.send(_continuation(1, b"\x00" * 16_000))
    client.read()
    assert client.goaway()[1] == http2.ENHANCE_YOUR_CALM


async def test_a_header_list_over_the_limit_refuses_the_stream_and_keeps_the_connection():
    seen = []
    client = started(on_headers=lambda connection, stream: seen.append(stream))
    big = [("x-big", "v" * 40_000), ("x-big-2", "w" * 40_000)]
    block = client.header_block(big)  # 80 KB: a HEADERS frame and 4 CONTINUATIONs
    pieces = [block[i : i + 16_384] for i in range(0, len(block), 16_384)]
    frames = [http2.frame(http2.HEADERS, http2.END_STREAM, 1, pieces[0])]
    frames += [_continuation(1, piece) for piece in pieces[1:-1]]
    client.send(*frames, _continuation(1, pieces[-1], last=True))
    assert seen[0].oversized_headers > 64 * 1024 and seen[0].headers == []
    # The HPACK table stayed in step: the next block, with indexed references, decodes.
    client.send(client.headers(3, end_stream=True))
    client.read()
    assert client.goaway() is None
    assert dict(seen[1].headers)[b":path"] == REQUEST_HEADERS[2][1].encode()


async def test_hpack_bomb_of_indexed_references_to_a_big_entry_keeps_nothing():
    seen = []
    client = started(on_headers=lambda connection, stream: seen.append(stream))
    encoder = hpack.Encoder()
    first = encoder.encode(REQUEST_HEADERS + [("x-bomb", "b" * 4000)])  # enters the table
    client.send(http2.frame(http2.HEADERS, http2.END_HEADERS | http2.END_STREAM, 1, first))
    # 16,000 one-byte references to that entry: ~64 MB decoded from a 16 KB frame.
    index = 62  # the newest dynamic entry
    bomb = bytes([0x80 | index]) * 16_000
    client.encoder = encoder
    client.send(http2.frame(http2.HEADERS, http2.END_HEADERS | http2.END_STREAM, 3, bomb))
    client.read()
    assert client.goaway() is None
    assert seen[1].oversized_headers > 60_000_000
    assert seen[1].headers == []


async def test_a_header_block_cut_inside_a_literal_is_compression_error():
    # Fuzzing finding F1: an IndexError escaped data_received for a truncated literal.
    client = started()
    client.send(http2.frame(http2.HEADERS, http2.END_HEADERS, 1, b"\x00\x05ab"))
    client.read()
    assert client.goaway()[1] == http2.COMPRESSION_ERROR
