"""Usage analytics to Amazon Data Firehose, off the reply path.

`build_record` makes one newline-terminated JSON record describing an answered message
(lengths, knowledge bases, sources, action groups, search queries, rationale; never the
message or the answer). `FirehosePublisher` queues records without ever blocking or raising
in `publish`, and one worker task (`run`) sends them with PutRecordBatch. When the queue is
full, records are dropped and counted: analytics must never slow down or break a reply.

The reference's IAM policy grants only `firehose:PutRecord`. So that Ark runs under that
role unchanged, a PutRecordBatch refused with AccessDenied switches the publisher to one
PutRecord call per record for the rest of the process (logged once).
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime
from typing import Any

import orjson

from ark.bedrock.response import TraceSummary
from ark.log import get_logger

MAX_QUEUED_RECORDS = 1000
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied"})
MAX_RECORD_BYTES = 1000 * 1024
BATCH_MAX_RECORDS = 500
BATCH_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_CLOSE_TIMEOUT_S = 5.0
# Fields of a record whose lists may be cut, in the order they are considered.
_TRIMMABLE_FIELDS = ("rationale", "search_queries", "sources", "knowledge_bases", "action_groups")

log = get_logger("ark.analytics")


def _iso_utc(timestamp: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, to the second (naive times are taken as UTC)."""
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    return timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_record(
    *,
    timestamp: datetime,
    user_id: str,
    thread_id: str,
    message_length: int,
    response_length: int,
    trace: TraceSummary,
) -> bytes:
    """One analytics record: newline-terminated JSON of exactly timestamp, user_id,
    thread_id, message_length, response_length (bytes), knowledge_bases, sources (names),
    action_groups, search_queries, rationale. Lists are cut, longest first, when the record
    would exceed MAX_RECORD_BYTES."""
    doc: dict[str, Any] = {
        "timestamp": _iso_utc(timestamp),
        "user_id": user_id,
        "thread_id": thread_id,
        "message_length": message_length,
        "response_length": response_length,
        "knowledge_bases": list(trace.knowledge_bases),
        "sources": [s.name for s in trace.sources],
        "action_groups": list(trace.action_groups),
        "search_queries": list(trace.search_queries),
        "rationale": list(trace.rationale),
    }
    record = orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
    while len(record) > MAX_RECORD_BYTES:
        # Halve the biggest list: a handful of passes even for absurd traces.
        biggest = max(_TRIMMABLE_FIELDS, key=lambda k: len(orjson.dumps(doc[k])))
        items = doc[biggest]
        if not items:
            break  # nothing left to cut; the fixed fields alone cannot be this big
        doc[biggest] = items[: len(items) // 2]
        record = orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
    return record


class FirehosePublisher:
    """Sends analytics records to one Firehose stream from a bounded in-memory queue.

    `publish` never blocks and never raises. Run `run()` as a task for the life of the
    process; `close()` flushes what is queued (bounded by a timeout) and stops it.
    Failed entries of a batch are resent once; failures are logged and counted, never
    raised.
    """

    def __init__(self, client: Any, stream_name: str, *, max_queue: int = MAX_QUEUED_RECORDS):
        self._client = client
        self._stream_name = stream_name
        self._max_queue = max_queue
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._dropped = 0
        self._sent = 0
        self._failed = 0
        self._batch_allowed = True  # False once PutRecordBatch was denied: PutRecord each

    @property
    def dropped(self) -> int:
        """Records refused because the queue was full, too big, or published after close."""
        return self._dropped

    @property
    def sent(self) -> int:
        """Records Firehose accepted."""
        return self._sent

    @property
    def failed(self) -> int:
        """Records Firehose did not accept (after the one resend) or a call failed for."""
        return self._failed

    @property
    def queued(self) -> int:
        return len(self._queue)

    def publish(self, record: bytes) -> None:
        """Queue one record; drop it (counted, warned) when the queue is full."""
        if self._closing:
            self._drop("closed")
            return
        if len(record) > MAX_RECORD_BYTES:
            self._drop("record_too_big")
            return
        if len(self._queue) >= self._max_queue:
            self._drop("queue_full")
            return
        self._queue.append(record)
        self._wake.set()

    def _drop(self, reason: str) -> None:
        self._dropped += 1
        log.warning("analytics_dropped", reason=reason, dropped=self._dropped)

    def _take_batch(self) -> list[bytes]:
        batch: list[bytes] = []
        size = 0
        while self._queue and len(batch) < BATCH_MAX_RECORDS:
            record = self._queue[0]
            if batch and size + len(record) > BATCH_MAX_BYTES:
                break
            batch.append(self._queue.popleft())
            size += len(record)
        return batch

    async def run(self) -> None:
        """The worker: send queued records until `close()`. Raises only CancelledError."""
        self._task = asyncio.current_task()
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await self._send(self._take_batch())
        finally:
            self._stopped.set()

    async def _send(self, batch: list[bytes]) -> None:
        failed = await self._put_batch(batch)
        if failed:
            log.warning("analytics_resend", records=len(failed))
            failed = await self._put_batch(failed)
        if failed:
            self._failed += len(failed)
            log.error("analytics_failed", records=len(failed), failed=self._failed)

    async def _put_batch(self, batch: list[bytes]) -> list[bytes]:
        """Send `batch`; return the records Firehose did not accept."""
        if not self._batch_allowed:
            return await self._put_each(batch)
        try:
            response = await self._client.put_record_batch(
                DeliveryStreamName=self._stream_name,
                Records=[{"Data": record} for record in batch],
            )
        except asyncio.CancelledError:
            self._failed += len(batch)  # in flight when the worker was stopped
            raise
        except Exception as exc:
            code = _error_code(exc)
            if code in ACCESS_DENIED_CODES:
                self._batch_allowed = False
                log.warning(
                    "analytics_batch_denied",
                    action="put_record_each",
                    hint="grant firehose:PutRecordBatch to send analytics in batches",
                )
                return await self._put_each(batch)
            log.error(
                "analytics_put_failed", error=type(exc).__name__, code=code, records=len(batch)
            )
            self._failed += len(batch)
            return []
        entries = response.get("RequestResponses") or []
        if not response.get("FailedPutCount"):
            self._sent += len(batch)
            return []
        failed = [
            record for record, entry in zip(batch, entries, strict=False) if entry.get("ErrorCode")
        ]
        self._sent += len(batch) - len(failed)
        codes = sorted({str(e.get("ErrorCode")) for e in entries if e.get("ErrorCode")})
        log.warning("analytics_records_failed", records=len(failed), codes=",".join(codes))
        return failed

    async def _put_each(self, batch: list[bytes]) -> list[bytes]:
        """Send `batch` with one PutRecord call per record; return the records refused
        with a retryable error (sent again once by the caller)."""
        failed: list[bytes] = []
        for record in batch:
            try:
                await self._client.put_record(
                    DeliveryStreamName=self._stream_name, Record={"Data": record}
                )
            except asyncio.CancelledError:
                self._failed += 1
                raise
            except Exception as exc:
                code = _error_code(exc)
                if code == "ServiceUnavailableException":
                    failed.append(record)
                    continue
                log.error("analytics_put_failed", error=type(exc).__name__, code=code, records=1)
                self._failed += 1
                continue
            self._sent += 1
        return failed

    async def close(self, timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S) -> None:
        """Flush what is queued within `timeout_s`, then stop the worker; what is still
        unsent then is dropped (counted). Returns at once when there is nothing to do."""
        self._closing = True
        self._wake.set()
        if self._task is asyncio.current_task():
            return
        if self._task is None and not self._queue:
            return  # no worker yet and nothing to flush: a later run() returns at once
        try:
            async with asyncio.timeout(timeout_s):
                await self._stopped.wait()
        except TimeoutError:
            log.warning("analytics_flush_timeout", records=len(self._queue), timeout_s=timeout_s)
        if self._queue:
            self._dropped += len(self._queue)
            log.warning("analytics_unsent_at_close", records=len(self._queue))
            self._queue.clear()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})


def _error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None
