"""Verified results by exact token string, so a service that sees the same token on every call pays
for one signature check (mirrors the Node SDK's ``verify/result-cache.ts``).

An entry is only a shortcut past the signature and the static claims: the verifier re-checks expiry
on every hit, and drops the entry once its key is no longer in the issuer's key set. Bounded LRU:
when full, the least recently used token leaves, one at a time, so a flood of distinct tokens costs
at most ``max_entries`` entries.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")

#: The index is a plain dict, but a typo in ``cache_size`` must still not let memory grow unbounded.
MAX_CACHE_SIZE = 1_000_000


class ResultCache(Generic[V]):
    """A thread-safe bounded LRU map of token → value; ``max_entries == 0`` keeps nothing.

    Example::

        cache: ResultCache[str] = ResultCache(2)
        cache.set("a", "1")
        assert cache.get("a") == "1"
    """

    __slots__ = ("_entries", "_lock", "_max")

    def __init__(self, max_entries: int) -> None:
        if max_entries < 0 or max_entries > MAX_CACHE_SIZE:
            raise ValueError(f"cache size must be between 0 and {MAX_CACHE_SIZE}")
        self._max = max_entries
        self._entries: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        value = self._entries.get(key)  # one C call under the GIL: a miss takes no lock
        if value is not None:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
        return value

    def set(self, key: str, value: V) -> None:
        if self._max == 0:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
