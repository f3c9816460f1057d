"""Fuzz target: the HTTP/1.1 request path (serving/rest/http_server.py `HttpProtocol`) on
arbitrary byte streams split at arbitrary points, through the in-memory transport with a trivial
handler (support/http1_connection.py: 200 with the method, path and body length).

Streams mix well-formed requests (Content-Length and chunked bodies, 100-continue, pipelining,
keep-alive and close), their mutations, requests past small limits and random bytes; the deadlines
are moved on by hand now and then. Invariants: `data_received` / `eof_received` never raise;
everything written parses as a sequence of well-formed HTTP/1.1 responses; no 5xx (the handler
answers 200); the memory the connection keeps stays bounded.
"""

from __future__ import annotations

import re
import tracemalloc

from fuzz import harness
from fuzz.strategies import splits
from hypothesis import given
from hypothesis import strategies as st

from support.http1_connection import Connection

NAME = "http1_requests"
# Small limits so that short inputs reach them (the defaults are tested too).
SMALL_LIMITS = {
    "max_url_bytes": 64,
    "max_header_field_bytes": 128,
    "max_header_bytes": 512,
    "max_header_count": 8,
    "max_pipelined": 3,
}
# What a connection may keep, beyond the request bytes it was fed, once its answers are written.
KEPT_BYTES = 256 * 1024

tokens = st.sampled_from([b"GET", b"POST", b"PUT", b"OPTIONS", b"DELETE", b"G\x00T", b""])
paths = st.one_of(
    st.sampled_from([b"/", b"/v1/models/m:predict", b"/healthz?x=1", b"*", b"http://h/p"]),
    st.binary(max_size=80).map(lambda b: b"/" + b),
)
header_lines = st.one_of(
    st.sampled_from(
        [
            b"Host: x",
            b"Connection: close",
            b"Connection: keep-alive",
            b"Expect: 100-continue",
            b"Transfer-Encoding: chunked",
            b"Content-Length: 5",
            b"Content-Length: 99999999999999999999",
            b"Content-Length: -1",
            b"Transfer-Encoding: gzip, chunked",
            b": empty-name",
            b"X: " + b"v" * 300,
        ]
    ),
    st.builds(
        lambda n, v: n + b": " + v, st.binary(min_size=1, max_size=10), st.binary(max_size=20)
    ),
)


GOOD_HEADERS = [b"Host: x", b"Connection: keep-alive", b"Expect: 100-continue", b"Accept: */*"]


@st.composite
def requests(draw) -> bytes:
    if draw(st.booleans()):  # well-formed, so that streams get past the first request
        method = draw(st.sampled_from([b"GET", b"POST"]))
        version = b"HTTP/1.1"
        headers = draw(st.lists(st.sampled_from(GOOD_HEADERS), max_size=3))
    else:
        method = draw(tokens)
        version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x"]))
        headers = draw(st.lists(header_lines, max_size=12))
    body = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["length", "chunked", "none", "bad-chunk"]))
    if framing == "length":
        headers.append(b"Content-Length: %d" % len(body))
    elif framing in ("chunked", "bad-chunk"):
        headers.append(b"Transfer-Encoding: chunked")
        size = (
            b"%x" % len(body)
            if framing == "chunked"
            else draw(st.sampled_from([b"fffffffffffffff", b"zz", b"-1"]))
        )
        body = (size + b"\r\n" + body + b"\r\n0\r\n\r\n") if body else b"0\r\n\r\n"
    else:
        body = b""
    head = method + b" " + draw(paths) + b" " + version + b"\r\n"
    return head + b"".join(line + b"\r\n" for line in headers) + b"\r\n" + body


@st.composite
def streams(draw) -> bytes:
    junk = st.binary(max_size=32)
    parts = draw(st.lists(st.one_of(requests(), requests(), junk), min_size=1, max_size=6))
    data = bytearray(b"".join(parts))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 3]))):
        if data:
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


_STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5]\d\d) [^\r\n]*\r\n")
_HEADER = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ?([^\r\n]*)\r\n")


def parse_responses(data: bytes) -> list[int]:
    """The statuses of `data`, asserting it is a sequence of well-formed HTTP/1.1 responses."""
    statuses, pos = [], 0
    while pos < len(data):
        line = _STATUS_LINE.match(data, pos)
        assert line, f"not a status line at {pos}: {data[pos : pos + 60]!r}"
        status, pos = int(line.group(1)), line.end()
        length = None
        while not data.startswith(b"\r\n", pos):
            header = _HEADER.match(data, pos)
            assert header, f"malformed header at {pos}: {data[pos : pos + 60]!r}"
            if header.group(1).lower() == b"content-length":
                length = int(header.group(2))
            pos = header.end()
        pos += 2
        statuses.append(status)
        if status == 100:
            continue
        assert length is not None or status in (204, 304), f"{status} without Content-Length"
        pos += length or 0
        assert pos <= len(data), "body shorter than its Content-Length"
    return statuses


@given(
    st.data(), streams(), st.booleans(), st.lists(st.sampled_from([0.0, 3.0, 100.0]), max_size=3)
)
@harness.counted(NAME)
def check_stream(data, stream: bytes, small: bool, waits: list[float]) -> None:
    pieces = data.draw(splits(stream))
    tracemalloc.start()
    connection = Connection(**(SMALL_LIMITS if small else {}))
    try:
        before, _ = tracemalloc.get_traced_memory()
        written = bytearray()
        for piece in pieces:
            if connection.transport.closed:
                break
            if connection.transport.reading_paused:
                connection.run()  # a paused transport delivers nothing until it resumes
                if connection.transport.reading_paused:
                    break
            connection.protocol.data_received(piece)
            connection.run()
            written += connection.transport.take()
            if waits:
                written += connection.advance(waits.pop())
        if not connection.transport.closed and data.draw(st.booleans()):
            connection.protocol.eof_received()
            connection.run()
        written += connection.transport.take()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        connection.close()
    assert kept - before <= KEPT_BYTES + 4 * len(stream), kept - before
    if b"HEAD" in stream.upper():
        return  # a HEAD answer has a Content-Length but no body: not parseable without pairing
    statuses = parse_responses(bytes(written))
    assert all(status < 500 for status in statuses), statuses


def test_arbitrary_request_streams_get_well_formed_answers():
    harness.run(NAME, check_stream)
