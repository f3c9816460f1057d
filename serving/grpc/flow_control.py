"""HTTP/2 flow-control windows (RFC 9113, 5.2 and 6.9), one small class per direction.

`ReceiveWindow` is what the peer may still send us: DATA beyond it is a FLOW_CONTROL_ERROR, and
window is given back only as the application consumes data and never past a cap the application
sets (a gRPC message whose 5-byte prefix declares N bytes never gets window for more than N + 5;
issue 12 measured window granted for 300 MiB against a 256 MiB limit).

`SendWindows` is what we may still send: the connection's window, and each stream's as an offset
against the peer's SETTINGS_INITIAL_WINDOW_SIZE, so a SETTINGS change is O(1) whatever the number
of open streams (issue 12: one 16 KB SETTINGS frame looping over 200k streams froze the server
for 9 s).
"""

from __future__ import annotations

MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65_535


class FlowControlError(Exception):
    """The peer sent more than its window allowed, or overflowed a window."""


class ReceiveWindow:
    """The window the peer sends into, and the WINDOW_UPDATE increments we owe it.

    Args:
      size: the initial window (what SETTINGS_INITIAL_WINDOW_SIZE or the connection start
        granted); increments are sent once half of it has been consumed.
      cap: most bytes the peer may ever be allowed to send (None: unbounded); `limit` lowers it.

    Attributes:
      available: bytes the peer may still send before it must wait for an update.
      granted: total bytes granted so far (initial window plus every increment).
    """

    __slots__ = ("size", "available", "granted", "unacked", "cap")

    def __init__(self, size: int, cap: int | None = None) -> None:
        self.size = size
        self.available = size
        self.granted = size
        self.unacked = 0
        self.cap = cap

    def receive(self, length: int) -> None:
        """Takes `length` flow-controlled bytes (a DATA frame's whole payload) off the window.

        Raises:
          FlowControlError: the frame is larger than what the peer was allowed to send.
        """
        if length > self.available:
            raise FlowControlError(f"DATA of {length} bytes past a window of {self.available}")
        self.available -= length

    def consume(self, length: int) -> int:
        """Records that the application consumed `length` received bytes.

        Returns:
          The WINDOW_UPDATE increment to send now (0: none yet, or the cap is reached).
        """
        self.unacked += length
        if self.unacked < self.size // 2:
            return 0
        increment = self.unacked
        if self.cap is not None:
            increment = min(increment, self.cap - self.granted)
            if increment <= 0:
                self.unacked = 0
                return 0
        self.unacked = 0
        self.available += increment
        self.granted += increment
        return increment

    def pass_through(self, length: int) -> int:
        """`receive` then `consume` in one call, for data given back at once (the connection
        window: what streams keep is bounded by their own windows, and their total by
        `Http2Connection.admit`; never withheld, issue 12 review). Ignores `cap`.

        Returns:
          The WINDOW_UPDATE increment to send now (0: none yet).

        Raises:
          FlowControlError: the frame is larger than what the peer was allowed to send.
        """
        if length > self.available:
            raise FlowControlError(f"DATA of {length} bytes past a window of {self.available}")
        unacked = self.unacked + length
        if unacked < self.size >> 1:
            self.available -= length
            self.unacked = unacked
            return 0
        self.available += unacked - length
        self.granted += unacked
        self.unacked = 0
        return unacked

    def limit(self, total: int) -> None:
        """Never grant more than `total` bytes in all (already granted bytes stay granted)."""
        self.cap = total if self.cap is None else min(self.cap, total)


class SendWindows:
    """What this side may send: the connection's window and each stream's.

    A stream's window is `initial + offset`, where `initial` is the peer's current
    SETTINGS_INITIAL_WINDOW_SIZE and `offset` (kept by the stream) is what its WINDOW_UPDATEs
    added minus what was sent on it; changing `initial` changes every stream's window at once.
    The sender reads `initial + offset` and `connection` directly (it does so per response).

    Attributes:
      connection: bytes the connection may still send.
      initial: the peer's SETTINGS_INITIAL_WINDOW_SIZE.
    """

    __slots__ = ("connection", "initial")

    def __init__(self) -> None:
        self.connection = DEFAULT_WINDOW
        self.initial = DEFAULT_WINDOW

    def set_initial(self, value: int) -> None:
        """Applies a SETTINGS_INITIAL_WINDOW_SIZE from the peer (O(1)).

        Raises:
          FlowControlError: the value is above 2^31-1 (RFC 9113, 6.5.2).
        """
        if value > MAX_WINDOW:
            raise FlowControlError("SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1")
        self.initial = value

    def grow_connection(self, increment: int) -> None:
        """Applies a connection WINDOW_UPDATE.

        Raises:
          FlowControlError: the window would exceed 2^31-1.
        """
        self.connection += increment
        if self.connection > MAX_WINDOW:
            raise FlowControlError("connection window above 2^31-1")

    def grow_stream(self, offset: int, increment: int) -> int:
        """The stream's new offset after a stream WINDOW_UPDATE.

        Raises:
          FlowControlError: the stream's window would exceed 2^31-1 (a stream error).
        """
        offset += increment
        if self.initial + offset > MAX_WINDOW:
            raise FlowControlError("stream window above 2^31-1")
        return offset
