"""The gRPC front end's HPACK decoder against `hpack`'s own, on the blocks real encoders write."""

from __future__ import annotations

import random

import hpack
import pytest

from tfrelay.serving.grpc.header_block import HeaderBlockDecoder

GRPC_CORE_FIRST_BLOCK = bytes.fromhex(  # grpcio 1.85's first Predict call (deadline 5 s)
    "40053a706174682d2f74656e736f72666c6f772e73657276696e672e50726564696374696f6e5365727669"
    "63652f50726564696374400a3a617574686f726974790f3132372e302e302e313a31383737378386400c63"
    "6f6e74656e742d74797065106170706c69636174696f6e2f677270634002746508747261696c6572734014"
    "677270632d6163636570742d656e636f64696e67176964656e746974792c206465666c6174652c20677a69"
    "70400c677270632d74696d656f7574023553400a757365722d6167656e7430677270632d707974686f6e2f"
    "312e38352e3120677270632d632f35382e302e3020286c696e75783b2063687474703229"
)
GRPC_CORE_LATER_BLOCKS = [
    bytes.fromhex("c4c38386c2c1c0bfbe"),  # all indexed
    bytes.fromhex("c4c38386c2c1c0400c677270632d74696d656f757405353031306dbf"),  # new timeout
]


def _request_headers(rng: random.Random, call: int) -> list:
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", rng.choice(["/tensorflow.serving.PredictionService/Predict", "/x.Y/Z"])),
        (":authority", "127.0.0.1:8500"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("grpc-timeout", f"{rng.randint(1, 99999)}m"),
        ("user-agent", "grpc-python/1.85 é".encode()),
    ]
    if call % 3 == 0:
        headers.append(hpack.NeverIndexedHeaderTuple("authorization", f"Bearer {call}"))
    if call % 5 == 0:
        headers.append(("x-custom-" + "k" * rng.randint(1, 300), "v" * rng.randint(0, 5000)))
    return headers


@pytest.mark.parametrize("huffman", [True, False])
def test_decodes_what_hpack_decodes_over_a_long_connection(huffman):
    rng = random.Random(7)
    encoder = hpack.Encoder()
    ours = HeaderBlockDecoder(1 << 20)
    reference = hpack.Decoder(max_header_list_size=1 << 20)
    for call in range(400):
        if call == 200:
            encoder.header_table_size = 1024  # emits a table-size update in the next block
        block = encoder.encode(_request_headers(rng, call), huffman=huffman)
        assert ours.decode(block) == [tuple(h) for h in reference.decode(block, raw=True)]
        assert list(ours._table.dynamic_entries) == list(reference.header_table.dynamic_entries)


def test_decodes_grpc_core_blocks_and_reuses_unchanged_ones():
    ours = HeaderBlockDecoder(65536)
    first = dict(ours.decode(GRPC_CORE_FIRST_BLOCK))
    assert first[b":path"] == b"/tensorflow.serving.PredictionService/Predict"
    assert first[b"grpc-timeout"] == b"5S"
    indexed = ours.decode(GRPC_CORE_LATER_BLOCKS[0])
    assert dict(indexed) == first
    assert ours.decode(GRPC_CORE_LATER_BLOCKS[0]) is indexed  # same bytes, same table
    later = dict(ours.decode(GRPC_CORE_LATER_BLOCKS[1]))
    assert later[b"grpc-timeout"] == b"5010m" and later[b":path"] == first[b":path"]


@pytest.mark.parametrize(
    "block",
    [b"\x80", b"\xff\xff\xff\xff\xff\xff", b"\x40\x05ab", b"\x00\x7f", b"\x82\x3f\xe1\x1f"],
    ids=["index-0", "integer-overflow", "truncated-name", "truncated-length", "late-size-update"],
)
def test_malformed_blocks_raise_hpack_errors(block):
    with pytest.raises(hpack.HPACKError):
        HeaderBlockDecoder(65536).decode(block)


def test_oversized_header_list_is_refused():
    block = hpack.Encoder().encode([("x", "v" * 2000)], huffman=False)
    with pytest.raises(hpack.OversizedHeaderListError):
        HeaderBlockDecoder(1000).decode(block)
