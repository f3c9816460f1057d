"""Fuzz target: tfrelay's HPACK decoder (serving/grpc/header_block.py `HeaderBlockDecoder`) against
python-hyper's `hpack.Decoder` on valid encodings.

A connection's worth of header lists is encoded by `hpack.Encoder` (Huffman or not, fields never
indexed, table size updates), and each block is decoded by both decoders, which keep their own
dynamic tables. Invariant: the same header list from both, or both refuse it as too large; random
bytes either decode or raise an hpack error (never another exception).
"""

from __future__ import annotations

import hpack
from fuzz import harness
from hypothesis import given
from hypothesis import strategies as st

from tfrelay.serving.grpc.header_block import HeaderBlockDecoder

NAME = "hpack_differential"
MAX_HEADER_LIST = 4096  # small, so that generated lists cross it

names = st.one_of(
    st.sampled_from([":path", ":method", "content-type", "grpc-timeout", "te", "user-agent"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=10).map(
        str.lower
    ),
)
fields = st.builds(
    lambda name, value, never: (hpack.NeverIndexedHeaderTuple if never else hpack.HeaderTuple)(
        name, value
    ),
    names,
    st.one_of(st.text(max_size=20), st.text(max_size=2000)),
    st.booleans(),
)
blocks = st.lists(
    st.tuples(
        st.lists(fields, max_size=8),
        st.booleans(),  # Huffman
        st.one_of(st.none(), st.sampled_from([0, 256, 4096])),  # a table size update first
    ),
    min_size=1,
    max_size=8,
)


@given(blocks)
@harness.counted(NAME)
def check_valid_encodings(connection) -> None:
    encoder = hpack.Encoder()
    ours = HeaderBlockDecoder(MAX_HEADER_LIST)
    theirs = hpack.Decoder(max_header_list_size=MAX_HEADER_LIST)
    for headers, huffman, table_size in connection:
        if table_size is not None:
            encoder.header_table_size = table_size
        block = encoder.encode(headers, huffman=huffman)
        try:
            expected = [(bytes(n), bytes(v)) for n, v in theirs.decode(block, raw=True)]
        except hpack.OversizedHeaderListError:
            expected = None
        try:
            actual = [(bytes(n), bytes(v)) for n, v in ours.decode(block)]
        except hpack.OversizedHeaderListError:
            actual = None
        assert actual == expected
        if expected is None:
            return  # hpack's table is no longer defined past its refusal


@given(st.lists(st.binary(max_size=64), min_size=1, max_size=4))
@harness.counted(NAME)
def check_random_blocks(random_blocks: list[bytes]) -> None:
    ours = HeaderBlockDecoder(MAX_HEADER_LIST)
    for block in random_blocks:
        try:
            ours.decode(block)
        except hpack.HPACKError:
            return  # a connection error: the decoder state is gone
        except Exception as err:
            if harness.known_finding(NAME, err):
                return
            raise


def test_decoder_agrees_with_hpack_on_valid_encodings():
    harness.run(NAME, check_valid_encodings, share=0.7)


def test_random_blocks_decode_or_raise_hpack_errors():
    harness.run(NAME, check_random_blocks, share=0.3)
