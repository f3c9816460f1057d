"""Slow and non-reading REST clients (issue 12), real sockets: slowloris heads and stalled bodies
get 408 and are closed after the header/body timeout (short ones set by flag here), pipelined
floods are answered in order without unbounded queues, and a client that never reads its big
answers costs a bounded buffer and is disconnected after the send timeout."""

from __future__ import annotations

import socket
import threading
import time

from support import raw_http

MIB = 1024 * 1024
MODEL = "half_plus_two"
SLOWLORIS_CONNECTIONS = 20


def test_slowloris_heads_get_408_after_the_header_timeout(short_timeout_target):
    target = short_timeout_target
    socks = [raw_http.connect(target.host, target.rest_port) for _ in range(SLOWLORIS_CONNECTIONS)]
    started = time.monotonic()
    try:
        for sock in socks:
            sock.sendall(b"GET /v1/models/half_plus_two HTTP/1.1\r\nHost: x\r\n")
        # Trickle one header byte per connection every 0.2 s: it must not extend the timeout.
        while time.monotonic() - started < 0.8:
            for sock in socks:
                sock.sendall(b"X")
            time.sleep(0.2)
        target.assert_serving_others()
        closed_after = []
        for sock in socks:
            data, seconds = raw_http.wait_closed(sock, 5)
            assert seconds is not None, "a slowloris connection stayed open"
            assert raw_http.Answer(data, 0, 0, True).statuses == [408], data[:200]
            closed_after.append(time.monotonic() - started)
    finally:
        for sock in socks:
            sock.close()
    assert max(closed_after) < 2.5, closed_after  # 1 s timeout + the sweep interval
    print(f"{len(socks)} slowloris connections: 408 and closed after {max(closed_after):.2f} s")


def test_a_stalled_body_gets_408_after_the_body_timeout(short_timeout_target):
    target = short_timeout_target
    with raw_http.connect(target.host, target.rest_port) as sock:
        sock.sendall(raw_http.predict_request(target.host, MODEL, b'{"instances": [1.0]}')[:-5])
        started = time.monotonic()
        data, seconds = raw_http.wait_closed(sock, 5)
    assert seconds is not None and seconds < 2.5, seconds
    assert raw_http.Answer(data, 0, 0, True).statuses == [408], data[:200]
    assert b"request body" in data
    print(f"stalled body: 408 after {time.monotonic() - started:.2f} s")


def test_10000_pipelined_requests_without_reading_are_all_answered_in_order(target):
    before = target.rss_bytes()
    count = 10_000
    requests = b"".join(
        raw_http.predict_request(target.host, MODEL, b'{"instances": [%d.0]}' % i)
        for i in range(count)
    )
    sock = raw_http.connect(target.host, target.rest_port, timeout=60)
    sender = threading.Thread(target=sock.sendall, args=(requests,), daemon=True)
    sender.start()
    time.sleep(0.5)
    # While this client floods without reading, others are served.
    target.assert_serving_others()
    received = bytearray()
    deadline = time.monotonic() + 60
    while received.count(b"HTTP/1.1 200 OK") < count and time.monotonic() < deadline:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        received += chunk
    sender.join(10)
    sock.close()
    assert received.count(b"HTTP/1.1 200 OK") == count
    predictions = [float(part.split(b"]")[0]) for part in bytes(received).split(b"[")[1:]]
    assert predictions == [i / 2 + 2 for i in range(count)]
    growth = target.rss_bytes() - before
    assert growth < 64 * MIB, growth
    print(f"10,000 pipelined: all answered in order, RSS +{growth / MIB:.1f} MiB")


def test_a_client_that_never_reads_big_answers_is_bounded_and_disconnected(short_timeout_target):
    target = short_timeout_target
    body = b'{"instances": [' + b",".join([b"1.0"] * 100_000) + b"]}"  # 100k predictions each
    request = raw_http.predict_request(target.host, MODEL, body)
    before = target.rss_bytes()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.connect((target.host, target.rest_port))
    sock.settimeout(0.5)
    sent = 0
    peak = before
    started = time.monotonic()
    try:
        # Send up to 64 requests (~40 MB of answers) and never read.
        for _ in range(64):
            try:
                sock.sendall(request)
            except (TimeoutError, ConnectionError):
                break
            sent += 1
            peak = max(peak, target.rss_bytes())
        target.assert_serving_others()
        peak = max(peak, target.rss_bytes())
        # The server gives up on this client after the send timeout (2 s here).
        time.sleep(3.5)
        sock.settimeout(5)
        received = 0
        reset = False
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionError:
            reset = True
    finally:
        sock.close()
    answered_whole = received // (len(body) // 2)
    assert reset or answered_whole < sent, (sent, received)
    growth = peak - before
    assert growth < 160 * MIB, growth
    print(
        f"non-reading client: {sent} requests sent, peak RSS +{growth / MIB:.0f} MiB, "
        f"disconnected (reset={reset}) after {time.monotonic() - started:.1f} s, "
        f"{received / MIB:.1f} MiB delivered"
    )
