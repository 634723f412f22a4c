"""Analytics records and the Firehose publisher, through the real client to the fake Firehose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from ark.analytics import (
    BATCH_MAX_RECORDS,
    MAX_RECORD_BYTES,
    FirehosePublisher,
    build_record,
)
from ark.aws import AwsClients
from ark.bedrock.response import TraceSummary
from ark.bedrock.types import Source
from tests.fakes.bedrock import FakeBedrock

STREAM = "ark-analytics"
FIELDS = {
    "timestamp",
    "user_id",
    "thread_id",
    "message_length",
    "response_length",
    "knowledge_bases",
    "sources",
    "action_groups",
    "search_queries",
    "rationale",
}

SUMMARY = TraceSummary(
    knowledge_bases=("KB1", "KB2"),
    action_groups=("tickets",),
    search_queries=("deploy steps",),
    rationale=("look up the runbook",),
    sources=(Source("runbook.pdf, p. 2"), Source("Guide", "https://wiki/x")),
)


def record(n: int = 0, trace: TraceSummary = SUMMARY) -> bytes:
    return build_record(
        timestamp=datetime(2026, 3, 1, 12, 30, 5, 123456, tzinfo=UTC),
        user_id="U123",
        thread_id=f"1700000000-{n:06d}",
        message_length=11,
        response_length=42,
        trace=trace,
    )


def test_record_has_exactly_the_fields_and_is_newline_terminated() -> None:
    raw = record()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    doc = orjson.loads(raw)
    assert set(doc) == FIELDS
    assert doc == {
        "timestamp": "2026-03-01T12:30:05Z",
        "user_id": "U123",
        "thread_id": "1700000000-000000",
        "message_length": 11,
        "response_length": 42,
        "knowledge_bases": ["KB1", "KB2"],
        "sources": ["runbook.pdf, p. 2", "Guide"],
        "action_groups": ["tickets"],
        "search_queries": ["deploy steps"],
        "rationale": ["look up the runbook"],
    }


def test_timestamp_is_utc_with_z_whatever_the_input_zone() -> None:
    paris = timezone(timedelta(hours=1))
    raw = build_record(
        timestamp=datetime(2026, 3, 1, 13, 0, 0, tzinfo=paris),
        user_id="U",
        thread_id="t",
        message_length=0,
        response_length=0,
        trace=TraceSummary(),
    )
    assert orjson.loads(raw)["timestamp"] == "2026-03-01T12:00:00Z"


def test_oversized_record_is_trimmed_below_the_firehose_limit() -> None:
    huge = TraceSummary(
        rationale=tuple("r" * 10_000 for _ in range(300)),
        search_queries=tuple(f"query {i}" for i in range(50)),
        knowledge_bases=("KB1",),
    )
    raw = record(trace=huge)
    assert len(raw) <= MAX_RECORD_BYTES
    doc = orjson.loads(raw)
    assert set(doc) == FIELDS
    assert 0 < len(doc["rationale"]) < 300
    assert doc["search_queries"] == [f"query {i}" for i in range(50)]  # small lists untouched
    assert doc["knowledge_bases"] == ["KB1"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock() as server:
        yield server


@pytest.fixture
async def firehose(fake: FakeBedrock) -> AsyncIterator[Any]:
    async with AwsClients(
        region="us-east-1",
        profile=None,
        max_concurrency=1,
        firehose=True,
        endpoint_url=fake.endpoint_url,
    ) as aws:
        yield aws.firehose


async def test_publisher_batches_to_firehose_and_close_flushes(
    firehose: Any, fake: FakeBedrock
) -> None:
    publisher = FirehosePublisher(firehose, STREAM, max_queue=2000)
    records = [record(i) for i in range(BATCH_MAX_RECORDS + 20)]
    for r in records:
        publisher.publish(r)  # before the worker runs: all queued, none sent
    assert publisher.queued == len(records)
    async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
        tg.create_task(publisher.run())
        await publisher.close(timeout_s=5)
    assert fake.firehose_records == records
    assert fake.firehose_calls == [
        ("PutRecordBatch", STREAM, BATCH_MAX_RECORDS),
        ("PutRecordBatch", STREAM, 20),
    ]
    assert publisher.sent == len(records)
    assert publisher.dropped == 0


async def test_worker_sends_records_published_while_running(
    firehose: Any, fake: FakeBedrock
) -> None:
    publisher = FirehosePublisher(firehose, STREAM)
    async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
        tg.create_task(publisher.run())
        publisher.publish(record(1))
        await fake.wait_for_firehose_records(1)  # the worker wakes on publish, no close needed
        publisher.publish(record(2))
        await publisher.close()
    assert fake.firehose_records == [record(1), record(2)]


async def test_failed_entries_are_resent_once(firehose: Any, fake: FakeBedrock) -> None:
    publisher = FirehosePublisher(firehose, STREAM)
    records = [record(i) for i in range(5)]
    fake.firehose_fail_next = 2  # the first two entries of the batch fail
    for r in records:
        publisher.publish(r)
    async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
        tg.create_task(publisher.run())
        await publisher.close()
    assert fake.firehose_calls == [("PutRecordBatch", STREAM, 5), ("PutRecordBatch", STREAM, 2)]
    assert sorted(fake.firehose_records) == sorted(records)
    assert fake.firehose_records[-2:] == records[:2]  # only the failed ones went again
    assert (publisher.sent, publisher.failed) == (5, 0)


async def test_entries_failing_twice_are_counted_not_retried_forever(
    firehose: Any, fake: FakeBedrock
) -> None:
    publisher = FirehosePublisher(firehose, STREAM)
    fake.firehose_fail_next = 4
    for i in range(3):
        publisher.publish(record(i))
    async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
        tg.create_task(publisher.run())
        await publisher.close()
    assert [c[2] for c in fake.firehose_calls] == [3, 3]
    assert (publisher.sent, publisher.failed) == (2, 1)


async def test_call_failure_is_logged_and_the_worker_keeps_going(
    firehose: Any, fake: FakeBedrock
) -> None:
    publisher = FirehosePublisher(firehose, STREAM)
    fake.firehose_http_error_next = 1  # a 400 InvalidArgumentException: botocore won't retry
    async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
        worker = tg.create_task(publisher.run())
        publisher.publish(record(1))
        await fake.wait_for_firehose_calls(1)
        publisher.publish(record(2))
        await publisher.close()
        assert not worker.cancelled()
    assert worker.exception() is None
    assert [c[2] for c in fake.firehose_calls] == [1, 1]
    assert fake.firehose_records == [record(2)]
    assert (publisher.sent, publisher.failed) == (1, 1)


class BlockingClient:
    """A Firehose stand-in whose calls never return: the worker is stuck sending."""

    def __init__(self) -> None:
        self.calls = 0
        self.called = asyncio.Event()

    async def put_record_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        self.called.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_full_queue_drops_without_blocking_and_close_is_bounded() -> None:
    client = BlockingClient()
    publisher = FirehosePublisher(client, STREAM, max_queue=3)
    async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
        worker = tg.create_task(publisher.run())
        publisher.publish(record(0))
        await client.called.wait()  # the worker holds record 0 in a call that never ends
        for i in range(1, 6):
            publisher.publish(record(i))  # synchronous: it cannot block
        assert publisher.queued == 3
        assert publisher.dropped == 2
        loop = asyncio.get_running_loop()
        started = loop.time()
        await publisher.close(timeout_s=0.1)
        assert loop.time() - started < 2
    assert worker.cancelled()
    assert publisher.dropped == 5  # 2 refused + 3 unsent at close
    assert publisher.failed == 1  # the one in flight
    publisher.publish(record(9))  # after close: dropped, never raises
    assert publisher.dropped == 6


def test_publish_drops_oversized_records() -> None:
    publisher = FirehosePublisher(None, STREAM)
    publisher.publish(b"x" * (MAX_RECORD_BYTES + 1))
    assert publisher.queued == 0
    assert publisher.dropped == 1


async def test_close_without_a_worker_is_bounded() -> None:
    idle = FirehosePublisher(None, STREAM)
    async with asyncio.timeout(1):
        await idle.close(timeout_s=30)  # nothing queued: returns at once
        await idle.run()  # a worker started after close stops at once

    publisher = FirehosePublisher(None, STREAM)
    publisher.publish(record())
    async with asyncio.timeout(1):
        await publisher.close(timeout_s=0.05)  # nobody to flush it: dropped after the timeout
    assert publisher.dropped == 1


async def test_a_role_with_only_put_record_still_gets_every_record(
    firehose: Any, fake: FakeBedrock
) -> None:
    # the reference's IAM policy grants firehose:PutRecord only
    fake.firehose_deny_batch = True
    fake.firehose_fail_next = 1  # and one record is refused once, retryably
    publisher = FirehosePublisher(firehose, STREAM)
    records = [record(i) for i in range(3)]
    for r in records:
        publisher.publish(r)
    async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
        tg.create_task(publisher.run())
        await publisher.close()
    assert fake.firehose_calls == [
        ("PutRecordBatch", STREAM, 3),  # denied
        ("PutRecord", STREAM, 1),  # refused (ServiceUnavailable) and sent again
        ("PutRecord", STREAM, 1),
        ("PutRecord", STREAM, 1),
        ("PutRecord", STREAM, 1),
    ]
    assert sorted(fake.firehose_records) == sorted(records)
    assert (publisher.sent, publisher.failed) == (3, 0)
