"""ByteBudget: a fair FIFO semaphore over bytes (ark.budget)."""

from __future__ import annotations

import asyncio

import pytest

from ark.budget import IN_FLIGHT_COPIES, ByteBudget, Lease, in_flight_bytes
from ark.slack.files import FilePlan, SlackFile, planned_bytes

WAIT_S = 2.0


async def _settle() -> None:
    """Let every ready callback and task step run (no timing involved)."""
    for _ in range(5):
        await asyncio.sleep(0)


def _start(budget: ByteBudget, nbytes: int, order: list[str], name: str) -> asyncio.Task[Lease]:
    async def take() -> Lease:
        lease = await budget.acquire(nbytes)
        order.append(name)
        return lease

    return asyncio.create_task(take(), name=name)


async def test_grants_immediately_while_it_fits():
    budget = ByteBudget(100)
    a = await budget.acquire(60)
    b = await budget.acquire(40)
    assert budget.in_use == 100
    assert (a.nbytes, b.nbytes) == (60, 40)
    a.release()
    b.release()
    assert budget.in_use == 0


async def test_zero_bytes_never_waits_and_holds_nothing():
    budget = ByteBudget(10)
    full = await budget.acquire(10)
    async with asyncio.timeout(WAIT_S):
        empty = await budget.acquire(0)
    assert not empty.held and budget.in_use == 10
    empty.release()
    full.release()
    assert budget.in_use == 0


async def test_release_is_idempotent():
    budget = ByteBudget(100)
    lease = await budget.acquire(70)
    lease.release()
    lease.release()
    assert budget.in_use == 0 and lease.nbytes == 0 and not lease.held


async def test_waiters_are_served_in_arrival_order_and_small_ones_do_not_overtake():
    budget = ByteBudget(100)
    order: list[str] = []
    holder = await budget.acquire(90)
    big = _start(budget, 80, order, "big")
    await _settle()
    small = _start(budget, 5, order, "small")  # would fit now, but big queued first
    await _settle()
    assert order == [] and budget.waiting == 2
    holder.release()
    async with asyncio.timeout(WAIT_S):
        big_lease = await big
        small_lease = await small
    assert order == ["big", "small"]
    assert budget.in_use == 85
    big_lease.release()
    small_lease.release()
    assert budget.in_use == 0


async def test_several_waiters_admitted_together_when_they_fit():
    budget = ByteBudget(100)
    order: list[str] = []
    holder = await budget.acquire(100)
    tasks = [_start(budget, 30, order, f"w{i}") for i in range(4)]
    await _settle()
    holder.release()
    await _settle()
    assert order == ["w0", "w1", "w2"]  # 90 fits, the fourth waits
    assert budget.in_use == 90 and budget.waiting == 1
    (await tasks[0]).release()
    async with asyncio.timeout(WAIT_S):
        last = await tasks[3]
    assert order == ["w0", "w1", "w2", "w3"]
    for task in tasks[1:3]:
        (await task).release()
    last.release()
    assert budget.in_use == 0


async def test_oversized_request_is_admitted_alone_when_nothing_is_held():
    budget = ByteBudget(100)
    order: list[str] = []
    small = await budget.acquire(10)
    huge = _start(budget, 500, order, "huge")
    await _settle()
    after = _start(budget, 10, order, "after")
    await _settle()
    assert order == []  # huge waits for the holder; after waits behind huge
    small.release()
    async with asyncio.timeout(WAIT_S):
        huge_lease = await huge
    await _settle()
    assert order == ["huge"] and budget.in_use == 500  # alone: after still waits
    huge_lease.release()
    async with asyncio.timeout(WAIT_S):
        (await after).release()
    assert order == ["huge", "after"] and budget.in_use == 0


async def test_oversized_request_with_an_empty_budget_does_not_wait():
    budget = ByteBudget(100)
    async with asyncio.timeout(WAIT_S):
        lease = await budget.acquire(1000)
    assert budget.in_use == 1000
    lease.release()
    assert budget.in_use == 0


async def test_cancelled_waiter_leaves_the_queue_and_unblocks_those_behind():
    budget = ByteBudget(100)
    order: list[str] = []
    holder = await budget.acquire(50)
    head = _start(budget, 80, order, "head")  # cannot fit while holder holds 50
    await _settle()
    behind = _start(budget, 40, order, "behind")  # fits, but queued behind head
    await _settle()
    assert order == []
    head.cancel()
    async with asyncio.timeout(WAIT_S):
        behind_lease = await behind
    with pytest.raises(asyncio.CancelledError):
        await head
    assert order == ["behind"] and budget.in_use == 90 and budget.waiting == 0
    behind_lease.release()
    holder.release()
    assert budget.in_use == 0


async def test_cancel_right_after_being_admitted_gives_the_bytes_back():
    budget = ByteBudget(100)
    holder = await budget.acquire(100)
    waiter = asyncio.create_task(budget.acquire(60))
    await _settle()
    holder.release()  # grants the waiter synchronously: its future has a result now
    assert budget.in_use == 60
    waiter.cancel()  # ... but the task is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert budget.in_use == 0 and budget.waiting == 0


async def test_cancelled_holder_releasing_in_finally_frees_the_budget():
    budget = ByteBudget(100)
    entered = asyncio.Event()

    async def hold_forever() -> None:
        lease = await budget.acquire(100)
        try:
            entered.set()
            await asyncio.Event().wait()
        finally:
            lease.release()

    task = asyncio.create_task(hold_forever())
    async with asyncio.timeout(WAIT_S):
        await entered.wait()
    assert budget.in_use == 100
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budget.in_use == 0
    async with asyncio.timeout(WAIT_S):
        (await budget.acquire(100)).release()


async def test_long_wait_is_reported_once_and_a_short_one_never():
    budget = ByteBudget(100)
    holder = await budget.acquire(100)
    calls: list[str] = []
    reported = asyncio.Event()

    def on_long_wait() -> None:
        calls.append("long")
        reported.set()

    slow = asyncio.create_task(budget.acquire(50, patience_s=0.01, on_long_wait=on_long_wait))
    async with asyncio.timeout(WAIT_S):
        await reported.wait()
    holder.release()
    async with asyncio.timeout(WAIT_S):
        lease = await slow
    assert calls == ["long"]
    lease.release()

    quick_calls: list[str] = []
    fast = await budget.acquire(
        50, patience_s=WAIT_S * 10, on_long_wait=lambda: quick_calls.append("x")
    )
    assert quick_calls == []
    fast.release()


async def test_capacity_must_be_positive():
    with pytest.raises(ValueError):
        ByteBudget(0)


def _plan(*sizes: int | None) -> FilePlan:
    files = tuple(
        (SlackFile(f"F{i}", f"f{i}.csv", "text/csv", size, "https://files.slack.com/x"), "text/csv")
        for i, size in enumerate(sizes)
    )
    return FilePlan(files, (), ())


def test_planned_bytes_sums_declared_sizes_and_assumes_the_cap_when_unknown():
    assert planned_bytes(_plan()) == 0
    assert planned_bytes(_plan(100, 250)) == 350
    assert planned_bytes(_plan(100, None), max_total_bytes=1000) == 1000
    assert planned_bytes(_plan(800, 800), max_total_bytes=1000) == 1000


def test_in_flight_bytes_counts_the_encoded_copies():
    assert in_flight_bytes(0) == 0
    assert in_flight_bytes(-5) == 0
    assert in_flight_bytes(3 * 1024) == int(3 * 1024 * IN_FLIGHT_COPIES)
    # at least the raw bytes and their base64 body (4/3), at most a second copy of the body
    assert 1 + 4 / 3 <= IN_FLIGHT_COPIES <= 1 + 2 * 4 / 3
