"""A fault-injecting HTTP proxy for the S3 endpoint (moto_server), of the test suite's own.

The model server talks to the proxy (its S3_ENDPOINT); tests write to moto directly. Rules pick
requests by method, path and query and then hold them, answer 503 SlowDown or 403
AccessDenied, drop the
connection, or cut the response body: either with the full Content-Length (the client sees a
short read) or with a Content-Length that matches the cut (storage that lies, which only
tfrelay's own verification can catch). Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

HOLD = "hold"
SLOW_DOWN = "503"
DROP = "drop"
CUT = "cut"
CORRUPT = "corrupt"
DENY = "403"

_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "proxy-connection",
}
_SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
_DENIED_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>"
)
# No hold lasts longer than this, whatever a test forgets to release.
MAX_HOLD_SECONDS = 120.0


@dataclass
class Rule:
    """Which requests to break, and how.

    Attributes:
      action: HOLD, SLOW_DOWN, DENY (403 AccessDenied), DROP, CUT or CORRUPT (same length,
        bytes flipped).
      method: "GET", "HEAD", ... or None for any.
      path_contains: a substring of the request path, or None for any.
      query_contains: a substring of the query string ("list-type" picks LISTs), or None.
      hold_seconds: for HOLD, the longest hold (released earlier by `release()`).
      cut_to: for CUT, how many body bytes are sent.
      consistent_length: for CUT, send a Content-Length matching the cut body (a lying store)
        instead of the full one (a connection cut mid-body).
      times: how many requests the rule breaks before it lapses (None: until removed).
      hits: requests broken so far.
    """

    action: str
    method: str | None = None
    path_contains: str | None = None
    query_contains: str | None = None
    hold_seconds: float = MAX_HOLD_SECONDS
    cut_to: int = 0
    consistent_length: bool = False
    times: int | None = None
    hits: int = 0
    _released: threading.Event = field(default_factory=threading.Event, repr=False)

    def matches(self, method: str, path: str, query: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and method != self.method:
            return False
        if self.path_contains is not None and self.path_contains not in path:
            return False
        return self.query_contains is None or self.query_contains in urllib.parse.unquote(query)

    def release(self) -> None:
        """Lets held requests through."""
        self._released.set()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request, client_address) -> None:
        # A client that gave up on a held or cut request closed its socket: expected here.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _handle(self) -> None:
        proxy = self.server.proxy
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rule = proxy._match(self.command, path, query)
        proxy._log(self.command, self.path, rule.action if rule else "pass")
        if rule is not None and rule.action == HOLD:
            rule._released.wait(min(rule.hold_seconds, MAX_HOLD_SECONDS))
        elif rule is not None and rule.action == DROP:
            self._drop()
            return
        elif rule is not None and rule.action == SLOW_DOWN:
            self._send(503, [("Content-Type", "application/xml")], _SLOW_DOWN_BODY)
            return
        elif rule is not None and rule.action == DENY:
            self._send(403, [("Content-Type", "application/xml")], _DENIED_BODY)
            return
        status, headers, payload = proxy._forward(self.command, self.path, self.headers, body)
        if rule is not None and rule.action == CORRUPT and self.command == "GET" and payload:
            headers = [(k, v) for k, v in headers if not k.lower().startswith("x-amz-checksum")]
            payload = bytes(b ^ 0xFF for b in payload[:64]) + payload[64:]
        if rule is not None and rule.action == CUT and self.command == "GET":
            cut = payload[: rule.cut_to]
            headers = [(k, v) for k, v in headers if not k.lower().startswith("x-amz-checksum")]
            if rule.consistent_length:
                self._send(status, headers, cut)
            else:
                self._send(status, headers, cut, declared_length=len(payload))
                self._drop()
            return
        if self.command == "HEAD":
            declared = next((v for k, v in headers if k.lower() == "content-length"), "0")
            self._send(status, headers, b"", declared_length=int(declared), head=True)
            return
        self._send(status, headers, payload)

    def _send(
        self,
        status: int,
        headers: list[tuple[str, str]],
        payload: bytes,
        declared_length: int | None = None,
        head: bool = False,
    ) -> None:
        self.send_response_only(status)
        for key, value in headers:
            if key.lower() not in _HOP_HEADERS:
                self.send_header(key, value)
        self.send_header(
            "Content-Length", str(len(payload) if declared_length is None else declared_length)
        )
        self.end_headers()
        if not head:
            self.wfile.write(payload)
        self.wfile.flush()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of `upstream` ("host:port").

    Use as a context manager; `endpoint` is what S3_ENDPOINT should say.
    """

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.partition(":")
        self._upstream = (host, int(port or 80))
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self.requests: list[tuple[float, str, str, str]] = []
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.clear()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def add(self, rule: Rule) -> Rule:
        """Starts breaking the requests `rule` picks; returns it (for `remove`)."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: Rule) -> None:
        """Stops a rule and releases what it holds."""
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)
        rule.release()

    def clear(self) -> None:
        """Removes every rule: storage is healthy again."""
        with self._lock:
            rules, self._rules = self._rules, []
        for rule in rules:
            rule.release()

    def count(self, action: str, path_contains: str = "") -> int:
        """How many requests got `action` ("pass" for forwarded untouched)."""
        with self._lock:
            return sum(1 for _, _, p, a in self.requests if a == action and path_contains in p)

    def _match(self, method: str, path: str, query: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path, query):
                    rule.hits += 1
                    return rule
        return None

    def _log(self, method: str, target: str, action: str) -> None:
        with self._lock:
            self.requests.append((time.monotonic(), method, target, action))
            del self.requests[:-10000]

    def _forward(
        self, method: str, target: str, headers, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
            if body or method in ("PUT", "POST"):
                forwarded["Content-Length"] = str(len(body))
            connection.request(method, target, body=body or None, headers=forwarded)
            response = connection.getresponse()
            payload = response.read()
            return response.status, response.getheaders(), payload
        finally:
            connection.close()
