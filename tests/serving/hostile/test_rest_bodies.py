"""Attacks on the REST port's body limit (issue 12), real sockets against a server with default
flags (--max_request_size_bytes 256 MiB): 413 as soon as the Content-Length says so, also to
`Expect: 100-continue`, and a quick 400/413 for absurd chunk sizes, instead of a hang."""

from __future__ import annotations

import pytest

from support import raw_http

MIB = 1024 * 1024
OVER_THE_LIMIT = 300 * MIB
PREDICT = b"POST /v1/models/half_plus_two:predict HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize("expect", [b"", b"Expect: 100-continue\r\n"], ids=["plain", "expect"])
def test_a_content_length_over_the_limit_gets_413_at_once(target, expect):
    before = target.rss_bytes()
    head = PREDICT + expect + b"Content-Length: %d\r\n\r\n" % OVER_THE_LIMIT
    with raw_http.connect(target.host, target.rest_port) as sock:
        # Without Expect a client sends its body: it is refused before most of it is read.
        answer = raw_http.send_until_answered(
            sock, head, b"x" * 65536 if not expect else b"", OVER_THE_LIMIT
        )
    assert answer.statuses == [413], answer.data[:300]
    assert b"100 Continue" not in answer.data
    assert b"--max_request_size_bytes" in answer.body
    assert answer.seconds < 1.0, answer.seconds
    assert answer.bytes_sent < 64 * MIB
    assert target.rss_bytes() - before < 64 * MIB
    print(f"413 in {answer.seconds * 1000:.1f} ms after {answer.bytes_sent} bytes")


@pytest.mark.parametrize("size", [b"f" * 40, b"1" * 1000], ids=["40-hex-digits", "1000-digits"])
def test_an_absurd_chunk_size_gets_400_at_once(target, size):
    head = PREDICT + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\n"
    with raw_http.connect(target.host, target.rest_port) as sock:
        answer = raw_http.send_until_answered(sock, head + b"[1.0]")
    assert answer.statuses == [400], answer.data[:300]
    assert answer.seconds < 1.0, answer.seconds


def test_a_chunk_over_the_limit_gets_413_when_its_bytes_pass_the_limit(target):
    head = PREDICT + b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % OVER_THE_LIMIT
    before = target.rss_bytes()
    with raw_http.connect(target.host, target.rest_port) as sock:
        answer = raw_http.send_until_answered(sock, head, b"x" * 1024 * 1024, OVER_THE_LIMIT)
    assert answer.statuses == [413], answer.data[:300]
    # The body is buffered up to the limit (256 MiB), then freed.
    assert answer.bytes_sent <= 300 * MIB
    print(
        f"413 after {answer.bytes_sent} bytes in {answer.seconds:.2f} s, "
        f"RSS +{(target.rss_bytes() - before) / MIB:.0f} MiB"
    )
