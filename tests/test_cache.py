"""Tests for ark.cache.TTLCache: expiry on an injected clock, bounded size, ordering."""

from __future__ import annotations

import pytest

from ark.cache import TTLCache

TTL_S = 10.0


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cache(max_entries: int = 3, ttl_s: float = TTL_S) -> tuple[TTLCache[str, int], FakeClock]:
    clock = FakeClock()
    return TTLCache(max_entries=max_entries, ttl_s=ttl_s, clock=clock), clock


def test_get_and_set() -> None:
    cache, _ = _cache()
    assert cache.get("a") is None
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1
    assert cache.get("b") == 2
    assert len(cache) == 2


def test_set_replaces_value() -> None:
    cache, _ = _cache()
    cache.set("a", 1)
    cache.set("a", 2)
    assert cache.get("a") == 2
    assert len(cache) == 1


def test_falsy_values_are_kept() -> None:
    cache, _ = _cache()
    cache.set("zero", 0)
    assert cache.get("zero") == 0
    assert "zero" in cache


def test_entries_expire_after_ttl() -> None:
    cache, clock = _cache()
    cache.set("a", 1)
    clock.now += TTL_S
    assert cache.get("a") == 1  # exactly at the TTL: still fresh
    clock.now += 0.001
    assert cache.get("a") is None
    assert "a" not in cache
    assert len(cache) == 0  # an expired entry is dropped when read


def test_expired_entries_are_dropped_on_set() -> None:
    cache, clock = _cache(max_entries=10)
    cache.set("a", 1)
    cache.set("b", 2)
    clock.now += TTL_S + 1
    cache.set("c", 3)
    assert len(cache) == 1
    assert cache.get("c") == 3


def test_max_entries_evicts_the_oldest() -> None:
    cache, clock = _cache(max_entries=3)
    for i, key in enumerate("abcd"):
        clock.now += 1
        cache.set(key, i)
    assert len(cache) == 3
    assert cache.get("a") is None
    assert [cache.get(k) for k in "bcd"] == [1, 2, 3]


def test_reset_refreshes_position() -> None:
    cache, _ = _cache(max_entries=3)
    cache.set("a", 1)
    cache.set("b", 2)
    cache.set("c", 3)
    cache.set("a", 10)  # a is now the newest
    cache.set("d", 4)  # so b, the oldest, goes
    assert "b" not in cache
    assert cache.get("a") == 10
    assert "c" in cache
    assert "d" in cache


def test_reset_refreshes_expiry() -> None:
    cache, clock = _cache()
    cache.set("a", 1)
    clock.now += TTL_S - 1
    cache.set("a", 2)
    clock.now += TTL_S - 1  # past the first set's TTL, within the second's
    assert cache.get("a") == 2


def test_get_does_not_refresh_position() -> None:
    cache, _ = _cache(max_entries=2)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1
    cache.set("c", 3)
    assert "a" not in cache  # oldest inserted goes first, reads do not count
    assert "b" in cache


def test_contains() -> None:
    cache, _ = _cache()
    cache.set("a", 1)
    assert "a" in cache
    assert "b" not in cache
    assert 42 not in cache


def test_max_entries_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TTLCache(max_entries=0, ttl_s=1.0)


def test_default_clock_works() -> None:
    cache: TTLCache[str, str] = TTLCache(max_entries=1, ttl_s=60.0)
    cache.set("k", "v")
    assert cache.get("k") == "v"
