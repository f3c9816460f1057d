"""The HTTP/1.1 limits of the REST port (issue 12), each a default a production server ships.

| limit                      | default  | from                                                      |
|----------------------------|----------|-----------------------------------------------------------|
| request target (URL)       | 16 KiB   | Node's 16 KiB header size; nginx answers 414 past 8 KiB    |
| one header field           | 16 KiB   | uvicorn/h11 `h11_max_incomplete_event_size`, Node         |
| the whole header section   | 64 KiB   | nghttp2 (64 KiB per field), hpack (64 kB header list)     |
| header fields              | 100      | Apache httpd `LimitRequestFields`                         |
| header read (whole head)   | 60 s     | nginx `client_header_timeout`, Node `headersTimeout`      |
| between two body reads     | 60 s     | nginx `client_body_timeout`                               |
| peer not reading responses | 60 s     | nginx `send_timeout`                                      |
| idle keep-alive            | 75 s     | nginx `keepalive_timeout`                                 |
| requests queued per conn.  | 16       | grpc-core reads at most 32 requests per read; uvicorn 1   |
| lingering close            | 2 s      | nginx `lingering_timeout` 5 s (shorter: the answer is out) |
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfrelay.serving.options import ServerOptions

KIB = 1024


@dataclass(frozen=True)
class HttpLimits:
    """What one HTTP/1.1 connection may cost the server.

    Attributes:
      max_url_bytes: longest request target; longer gets 414 URI Too Long.
      max_header_field_bytes: longest single header (name + value); longer gets 431.
      max_header_bytes: the whole head (request line + headers); longer gets 431 (414 while
        the request target is still being read).
      max_header_count: most header fields; more get 431.
      header_timeout: seconds to receive a whole head once its first byte arrived; then 408.
      body_timeout: seconds allowed between two reads of a body; then 408.
      send_timeout: seconds the peer may leave responses unread (transport paused); then the
        connection is aborted.
      idle_timeout: seconds an idle keep-alive connection stays open.
      max_pipelined: requests handled at once per connection; reading pauses beyond it.
      linger_seconds: after refusing a request, how long its remaining bytes are read and
        dropped before closing, so the client reads the answer instead of a reset.
    """

    max_url_bytes: int = 16 * KIB
    max_header_field_bytes: int = 16 * KIB
    max_header_bytes: int = 64 * KIB
    max_header_count: int = 100
    header_timeout: float = 60.0
    body_timeout: float = 60.0
    send_timeout: float = 60.0
    idle_timeout: float = 75.0
    max_pipelined: int = 16
    linger_seconds: float = 2.0


DEFAULT_LIMITS = HttpLimits()


def limits_from_options(options: ServerOptions) -> HttpLimits:
    """The REST port's limits, with the values of the `--rest_api_*` flags.

    Args:
      options: the server's options.

    Returns:
      The defaults, overridden by the flags that have one.
    """
    return replace(
        DEFAULT_LIMITS,
        max_header_bytes=options.rest_api_max_header_bytes,
        header_timeout=options.rest_api_header_timeout_seconds,
        body_timeout=options.rest_api_body_timeout_seconds,
        send_timeout=options.rest_api_send_timeout_seconds,
        idle_timeout=options.rest_api_idle_timeout_seconds,
    )
