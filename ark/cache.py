"""Small bounded, expiring maps owned by the objects that use them (no global caches)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TTLCache(Generic[K, V]):
    """A map that forgets entries after `ttl_s` and keeps at most `max_entries` (oldest
    inserted dropped first). `clock` is injectable for tests."""

    def __init__(
        self,
        *,
        max_entries: int,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._ttl_s = ttl_s
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        item = self._data.get(key)
        if item is None:
            return None
        stored_at, value = item
        if self._clock() - stored_at > self._ttl_s:
            del self._data[key]
            return None
        return value

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def set(self, key: K, value: V) -> None:
        self._data.pop(key, None)
        self._data[key] = (self._clock(), value)
        self._evict()

    def _evict(self) -> None:
        now = self._clock()
        # entries are in insertion order, so expired ones sit at the front
        while self._data:
            key, (stored_at, _) = next(iter(self._data.items()))
            if len(self._data) > self._max or now - stored_at > self._ttl_s:
                del self._data[key]
            else:
                break

    def __len__(self) -> int:
        return len(self._data)
