"""Body limits (issue 12): 413 as soon as Content-Length or a chunked body's running size is over
the limit, before the body is read, also instead of `100 Continue`."""

from __future__ import annotations

from support.http1_connection import MAX_BODY, Connection, HalfClosingTransport, post, statuses


def test_a_content_length_over_the_limit_gets_413_before_any_body_byte(connect):
    connection = connect()
    data = connection.send(
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)
    )
    assert statuses(data) == [413]
    assert b"connection: close" in data and data.endswith(b'{"error": "too large"}')
    assert connection.started == []


def test_expect_100_continue_over_the_limit_gets_413_instead_of_100(connect):
    connection = connect()
    data = connection.send(
        b"POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 999999999\r\n\r\n"
    )
    assert b"100 Continue" not in data
    assert statuses(data) == [413]


def test_expect_100_continue_within_the_limit_gets_100_then_the_answer(connect):
    connection = connect()
    head = b"POST /p HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    assert connection.send(head) == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert statuses(connection.send(b"ok")) == [200]


def test_a_content_length_of_thousands_of_digits_is_refused_without_parsing_it(connect):
    data = connect().send(
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n"
    )
    assert statuses(data)[0] in (400, 413)


def test_a_chunked_body_is_refused_once_its_running_size_passes_the_limit(connect):
    connection = connect()
    connection.send(b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    data = connection.send(b"400\r\n" + b"x" * 1024 + b"\r\n")
    assert data == b""  # exactly the limit
    data = connection.send(b"1\r\nx\r\n")
    assert statuses(data) == [413]
    assert connection.started == []


def test_an_absurd_chunk_size_gets_400_at_once(connect):
    connection = connect()
    data = connection.send(
        b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"f" * 40
        + b"\r\nabc"
    )
    assert statuses(data) == [400]
    assert connection.lingers_then_closes()


def test_a_huge_but_valid_chunk_size_is_refused_when_its_bytes_pass_the_limit(connect):
    connection = connect()
    connection.send(
        b"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n"
    )
    data = connection.send(b"x" * (MAX_BODY + 1))
    assert statuses(data) == [413]


def test_after_a_refusal_the_server_half_closes_and_drops_the_rest_of_the_body():
    connection = Connection(transport=HalfClosingTransport())
    try:
        head = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (10 * MAX_BODY)
        assert statuses(connection.send(head)) == [413]
        transport = connection.transport
        assert transport.eof_written and not transport.closed  # the client can read the 413
        assert connection.send(b"x" * MAX_BODY) == b""  # dropped
        connection.advance(connection.protocol._limits.linger_seconds + 1)
        assert transport.closed
    finally:
        connection.close()


def test_a_body_within_the_limit_is_served_and_the_connection_kept(connect):
    connection = connect()
    data = connection.send(post(b"x" * MAX_BODY) + post(b"y"))
    assert statuses(data) == [200, 200]
    assert data.count(b"POST /p") == 2
    assert not connection.transport.closed


def test_without_half_close_as_on_tls_a_refusal_still_lingers_before_closing(connect):
    # TLS transports cannot write EOF; they were closed at once, so the kernel's reset (the
    # body still arriving) could destroy the 413 before the client read it (issue 12).
    connection = connect()
    assert not connection.transport.can_write_eof()
    head = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (10 * MAX_BODY)
    assert statuses(connection.send(head)) == [413]
    assert not connection.transport.closed and not connection.transport.reading_paused
    for _ in range(5):
        assert connection.send(b"x" * MAX_BODY) == b""  # read and dropped, nothing written
    assert connection.lingers_then_closes()
