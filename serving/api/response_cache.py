"""The response cache (`--response_cache_mb`, off by default; issue 16): identical Predict,
Classify and Regress requests to the same model version answered from memory.

A key is the front end, the API, the model, the version that answers and the request's bytes
(REST: the body, whose JSON names the signature; gRPC: the request message serialized
deterministically). The version is the one the request resolves to *now*: a new version, or a
label moved to another, never answers from the old one's entries, and entries of a version
that is unloaded are dropped at once (the manager's version events). Entries are kept in LRU
order within a byte budget that counts keys and values; an entry over an eighth of the budget
is not cached, so one large request cannot flush everything else.

What a hit skips: JSON or proto decoding, the checks, the model call and the encoding. What it
does not skip: authentication, the request's size limits, version resolution and the request
metrics. Hits are not written to the request log (their answer is one that was).
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Hashable

from tfrelay.serving.core.manager import ServableManager, VersionEvent
from tfrelay.serving.core.states import VersionState
from tfrelay.serving.metrics import ServingMetrics

# Bookkeeping per entry beyond its key's and value's bytes (the OrderedDict node, the tuples).
_ENTRY_OVERHEAD_BYTES = 200
# An entry may take at most this share of the budget.
_MAX_ENTRY_SHARE = 8

CacheKey = tuple[str, str, str, int, bytes]


def cache_key(front_end: str, api: str, model_name: str, version: int, request: bytes) -> CacheKey:
    """The key of one request's answer.

    Args:
      front_end: "rest" or "grpc" (their answers are different bytes).
      api: "predict", "classify", "regress" (REST) or the gRPC method name.
      model_name: the model.
      version: the version the request resolved to.
      request: the request's bytes (REST body, or the serialized gRPC request).

    Returns:
      The key.
    """
    return (front_end, api, model_name, version, request)


class ResponseCache:
    """An LRU cache of encoded answers within a byte budget (one per server, both front ends).

    Args:
      max_bytes: the budget (keys, values and bookkeeping).
      metrics: where hits, misses, evictions and the bytes held are counted.
    """

    def __init__(self, max_bytes: int, metrics: ServingMetrics | None = None) -> None:
        self.max_bytes = max_bytes
        self._max_entry = max_bytes // _MAX_ENTRY_SHARE
        self._metrics = metrics
        self._entries: collections.OrderedDict[CacheKey, tuple[object, int]] = (
            collections.OrderedDict()
        )
        self._by_version: dict[tuple[str, int], set[CacheKey]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        """The bytes the entries take now."""
        return self._bytes

    def attach(self, manager: ServableManager) -> None:
        """Drops a version's entries as soon as it stops being served."""
        manager.subscribe(self._on_event)

    def get(self, key: CacheKey) -> object | None:
        """The cached answer for `key`, or None (a miss).

        Args:
          key: from `cache_key`.

        Returns:
          The encoded answer as it was stored.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if self._metrics is not None:
            if entry is None:
                self._metrics.response_cache_misses.inc(key[2])
            else:
                self._metrics.response_cache_hits.inc(key[2])
        return None if entry is None else entry[0]

    def put(self, key: CacheKey, answer: object, answer_bytes: int) -> None:
        """Stores an answer, evicting the least recently used entries to make room.

        Args:
          key: from `cache_key`.
          answer: the encoded answer (bytes, or a response message the front end sends as is).
          answer_bytes: its size.
        """
        size = len(key[4]) + answer_bytes + _ENTRY_OVERHEAD_BYTES
        if size > self._max_entry:
            return
        evicted = 0
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._bytes -= previous[1]
            while self._entries and self._bytes + size > self.max_bytes:
                old_key, (_, old_size) = self._entries.popitem(last=False)
                self._forget(old_key, old_size)
                evicted += 1
            self._entries[key] = (answer, size)
            self._by_version.setdefault((key[2], key[3]), set()).add(key)
            self._bytes += size
        if evicted and self._metrics is not None:
            self._metrics.response_cache_evictions.inc(key[2], amount=evicted)

    def _forget(self, key: CacheKey, size: int) -> None:
        # Under the lock.
        self._bytes -= size
        keys = self._by_version.get((key[2], key[3]))
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_version[(key[2], key[3])]

    def _on_event(self, event: VersionEvent) -> None:
        if event.state is VersionState.AVAILABLE:
            return
        with self._lock:
            for key in self._by_version.pop((event.model_name, event.version), ()):
                _, size = self._entries.pop(key)
                self._bytes -= size

    def describe(self) -> Hashable:
        """(entries, bytes), for tests and logs."""
        with self._lock:
            return len(self._entries), self._bytes
