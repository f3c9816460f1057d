"""Budgets for frames that cost the server work but carry no request: token buckets.

A client can keep a server busy without ever being over a concurrency limit: open and reset
streams (Rapid Reset, CVE-2023-44487), make the server reset them (MadeYouReset, CVE-2025-8671),
or send endless PING, SETTINGS, empty DATA or CONTINUATION frames (CVE-2019-9512/9515, the 2024
CONTINUATION floods). As nghttp2 1.57+ does, each kind draws from a token bucket (nghttp2's
RST_STREAM bucket: burst 1,000, refilled at 33 per second); an empty bucket ends the connection
with GOAWAY ENHANCE_YOUR_CALM. Only these frames pay: requests and their DATA never touch a
bucket, so the request path costs nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# nghttp2's defaults (lib/nghttp2_session.c, 1.57.0+).
DEFAULT_BURST = 1000
DEFAULT_RATE = 33.0


@dataclass(frozen=True)
class Budget:
    """A bucket's size and refill rate.

    Attributes:
      burst: frames allowed at once.
      per_second: frames added back per second, up to `burst`.
    """

    burst: int = DEFAULT_BURST
    per_second: float = DEFAULT_RATE


class TokenBucket:
    """Spends one token per costly frame; refills at a steady rate up to the burst.

    Args:
      budget: the bucket's size and rate.
      clock: seconds (monotonic); tests pass their own.
    """

    __slots__ = ("_burst", "_rate", "_tokens", "_stamp", "_clock")

    def __init__(self, budget: Budget, clock: Callable[[], float] = time.monotonic) -> None:
        self._burst = float(budget.burst)
        self._rate = budget.per_second
        self._tokens = float(budget.burst)
        self._clock = clock
        self._stamp = clock()

    def spend(self) -> bool:
        """Takes one token; False when the bucket is empty (the caller ends the connection)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
