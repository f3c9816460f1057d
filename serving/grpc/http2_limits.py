"""The limits one HTTP/2 connection of the gRPC front end enforces, with production defaults.

Each default is what a well-known server ships (issue 12; ../shared/reference/limits.md):

- 100 concurrent streams (h2o and nghttpx; Go uses 250). grpc-core and grpc-go clients queue
  calls beyond the advertised limit instead of failing them, so 100 costs a client nothing, and
  it bounds what one connection can hold (half-open streams included: 200k of them cost 178 MB
  before). `grpc.max_concurrent_streams` in `--grpc_channel_arguments` changes it.
- 64 KiB of decoded header list (hpack's default, CVE-2016-6581; grpc-core's hard limit is
  16 KiB, Go's 1 MiB), an encoded block of at most twice that, at most 8 CONTINUATION frames
  per block (nghttp2 1.61, CVE-2024-28182).
- 16,384-byte frames: RFC 9113's default, what grpc-core sends; a larger frame is
  FRAME_SIZE_ERROR before any of it is buffered.
- Receive windows: 4 MiB per stream, 16 MiB per connection (a client never waits for a
  WINDOW_UPDATE on a request of a few MB), re-granted only as data is consumed and never past
  the message's declared length.
- A write timeout of 30 s: a client that does not read, or keeps a window at 0 while responses
  wait, is disconnected (Go's http2 server has WriteTimeout; nginx send_timeout is 60 s).
- 64 MiB of response bytes waiting per connection (one response of any size is always taken).
- 512 MiB of unfinished request bodies per connection (two messages of the 256 MiB default
  `--max_request_size_bytes`; the gRPC server raises it to twice its receive limit), counted by
  each message's declared length as its prefix arrives: a message that does not fit is refused
  at once (RESOURCE_EXHAUSTED), and an admitted one always gets window to its end (withholding
  the connection window instead deadlocked concurrent large requests; issue 12 review).
- Time limits, checked by one sweep per server (1 s): the client preface and first SETTINGS
  within 10 s (grpc-core's server handshake timeout is 120 s; a client sends them at once);
  a partial frame or header block, or an unfinished request body, must advance within 60 s
  (REST's body timeout): else GOAWAY, or RST_STREAM CANCEL for the request. No idle timeout
  (grpc-core's max_connection_idle is off by default; an idle connection holds nothing).
- Frame budgets (token buckets, `frame_budget.py`): RST_STREAM sent or received, PING, SETTINGS:
  burst 1,000 then 33/s (nghttp2's RST_STREAM bucket); "glitches" (empty DATA, empty
  CONTINUATION, PRIORITY, unknown frames, frames for closed streams): 10,000 then 330/s
  (nghttp2's glitch limiter); 32 entries per SETTINGS frame (nghttp2, CVE-2020-11080).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tfrelay.serving.grpc.frame_budget import Budget

DEFAULT_MAX_FRAME = 16_384


@dataclass(frozen=True)
class Http2Limits:
    """What one connection accepts (see the module docstring for where each default comes from).

    Attributes:
      max_concurrent_streams: SETTINGS_MAX_CONCURRENT_STREAMS, advertised and enforced.
      max_header_list_size: SETTINGS_MAX_HEADER_LIST_SIZE (RFC 7541 sizes), enforced decoded.
      max_header_block_bytes: largest encoded header block (HEADERS + CONTINUATIONs).
      max_continuations: CONTINUATION frames allowed after one HEADERS frame.
      max_frame_size: largest frame payload accepted (advertised if above 16,384).
      stream_window: SETTINGS_INITIAL_WINDOW_SIZE this side advertises.
      connection_window: the connection receive window granted at the start.
      write_timeout: seconds a client may leave written data unread or a window at 0.
      max_pending_response_bytes: response bytes queued per connection before new responses
        are refused.
      max_buffered_request_bytes: declared lengths of the unfinished requests a connection
        admits at once (`Http2Connection.admit`).
      preface_timeout: seconds from the connection to the client's preface and SETTINGS.
      request_timeout: seconds a partial frame or header block, or an unfinished request,
        may go without receiving anything.
      max_settings_entries: settings per SETTINGS frame.
      close_grace: seconds a closed connection keeps flushing before it is aborted.
      abort_linger: seconds a connection ended by a connection error (GOAWAY) keeps reading
        and discarding, half-closed, before it closes (so no RST destroys the GOAWAY).
      resets: RST_STREAM frames received or sent.
      pings: PING frames received.
      settings: SETTINGS frames received.
      glitches: frames that do no work.
    """

    max_concurrent_streams: int = 100
    max_header_list_size: int = 64 * 1024
    max_header_block_bytes: int = 128 * 1024
    max_continuations: int = 8
    max_frame_size: int = DEFAULT_MAX_FRAME
    stream_window: int = 4 * 1024 * 1024
    connection_window: int = 16 * 1024 * 1024
    write_timeout: float = 30.0
    max_pending_response_bytes: int = 64 * 1024 * 1024
    max_buffered_request_bytes: int = 512 * 1024 * 1024
    max_settings_entries: int = 32
    close_grace: float = 2.0
    abort_linger: float = 1.0
    preface_timeout: float = 10.0
    request_timeout: float = 60.0
    resets: Budget = field(default_factory=Budget)
    pings: Budget = field(default_factory=Budget)
    settings: Budget = field(default_factory=Budget)
    glitches: Budget = field(default_factory=lambda: Budget(10_000, 330.0))
