"""A global budget of attachment bytes in flight: a fair (FIFO) asyncio semaphore over bytes.

Attachments are the one thing that can make Ark's memory grow with load: a message may carry
10 MB of files, which become a base64 JSON body on the way to Bedrock. `ByteBudget` caps the
bytes held at once across all messages. A request waits until its bytes fit, in arrival
order: a small request never overtakes a big one queued before it, so nothing starves. A
request larger than the whole budget is admitted alone, when nothing else holds bytes, so it
never deadlocks (memory then peaks at that one request). `in_flight_bytes` says how much of
the budget a message's attachments take: their size times the copies made on the way out.

    lease = await budget.acquire(n, patience_s=5.0, on_long_wait=tell_user)
    try:
        ...  # download, send
        lease.release()  # as soon as the buffers are gone; idempotent
    finally:
        lease.release()

A waiter cancelled while queued leaves the queue (and wakes whoever may now fit); one
cancelled just after being admitted gives its bytes back. Nothing here is global: each
`ByteBudget` belongs to the gateway that made it, on one event loop.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# What one attachment byte costs in memory until the agent has it: the downloaded bytes, the
# base64 JSON body botocore builds from them (4/3), and before Python 3.12 one more copy of that
# body in the socket transport's write buffer (3.12 queues the caller's buffer without a copy).
# Measured with `make bench` (docs/performance.md); botocore's transient strings while it
# serialises one request are part of the fixed overhead, not of the budget.
IN_FLIGHT_COPIES = 7 / 3 if sys.version_info >= (3, 12) else 11 / 3


def in_flight_bytes(attachment_bytes: int) -> int:
    """The budget one message's attachments take: their size times IN_FLIGHT_COPIES."""
    return int(attachment_bytes * IN_FLIGHT_COPIES) if attachment_bytes > 0 else 0


@dataclass(eq=False, slots=True)
class _Waiter:
    nbytes: int
    future: asyncio.Future[None] = field(repr=False)


class Lease:
    """Bytes held from a `ByteBudget` until `release()` (idempotent) gives them back."""

    __slots__ = ("_budget", "_nbytes")

    def __init__(self, budget: ByteBudget | None, nbytes: int) -> None:
        self._budget = budget
        self._nbytes = nbytes

    @property
    def nbytes(self) -> int:
        """Bytes still held (0 once released)."""
        return self._nbytes if self._budget is not None else 0

    @property
    def held(self) -> bool:
        return self._budget is not None and self._nbytes > 0

    def release(self) -> None:
        budget, self._budget = self._budget, None
        if budget is not None and self._nbytes > 0:
            budget._give_back(self._nbytes)


class ByteBudget:
    """At most `capacity` bytes held at once, granted first come, first served."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._capacity = capacity
        self._in_use = 0
        self._waiters: deque[_Waiter] = deque()

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def in_use(self) -> int:
        """Bytes held right now (above `capacity` only while one oversized request runs)."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """Requests queued for bytes."""
        return sum(1 for w in self._waiters if not w.future.done())

    def _fits(self, nbytes: int) -> bool:
        return self._in_use == 0 or self._in_use + nbytes <= self._capacity

    async def acquire(
        self,
        nbytes: int,
        *,
        patience_s: float | None = None,
        on_long_wait: Callable[[], object] | None = None,
    ) -> Lease:
        """Wait until `nbytes` fit (in FIFO order) and hold them; return the Lease.

        `on_long_wait` is called once, synchronously, when the request is still queued after
        `patience_s` seconds (never when it is admitted sooner). `nbytes <= 0` holds nothing
        and never waits."""
        if nbytes <= 0:
            return Lease(None, 0)
        if not self._waiters and self._fits(nbytes):
            self._in_use += nbytes
            return Lease(self, nbytes)
        waiter = _Waiter(nbytes, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            if patience_s is not None and on_long_wait is not None:
                done, _ = await asyncio.wait({waiter.future}, timeout=max(0.0, patience_s))
                if not done:
                    on_long_wait()
            await waiter.future
        except BaseException:
            self._abandon(waiter)
            raise
        return Lease(self, nbytes)

    def _abandon(self, waiter: _Waiter) -> None:
        """A waiter gave up (cancelled): give back what it was granted, or leave the queue."""
        future = waiter.future
        if future.done() and not future.cancelled():
            self._give_back(waiter.nbytes)  # admitted, but never got to use it
            return
        future.cancel()
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        self._wake()  # it may have been the head holding others back

    def _give_back(self, nbytes: int) -> None:
        self._in_use -= nbytes
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            head = self._waiters[0]
            if head.future.done():  # cancelled while queued
                self._waiters.popleft()
                continue
            if not self._fits(head.nbytes):
                return
            self._waiters.popleft()
            self._in_use += head.nbytes
            head.future.set_result(None)
