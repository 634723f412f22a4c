"""A loopback fake of Bedrock Agent Runtime (InvokeAgent) and Firehose, on the real wire.

The real aiobotocore client talks to it through `endpoint_url=fake.endpoint_url` (or
`AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME`): InvokeAgent is restJson answered with a chunked
`application/vnd.amazon.eventstream` body of binary event-stream messages this module
encodes itself (prelude, CRCs, typed headers), so botocore's own decoder, CRC checks and
parser run exactly as against AWS. Firehose is JSON 1.1 (`X-Amz-Target`).

    async with FakeBedrock() as fake:
        fake.queue_script([Chunk("Hel"), Delay(0.01), Chunk("lo")])
        ...  # client.invoke_agent(...) against fake.endpoint_url
        assert fake.invocations[0].body["inputText"] == "hi"
"""

from __future__ import annotations

import asyncio
import base64
import struct
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.server import LoopbackServer

EVENT_STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
JSON_11_CONTENT_TYPE = "application/x-amz-json-1.1"
FIREHOSE_TARGET_PREFIX = "Firehose_20150804."
HEADER_TYPE_STRING = 7
PRELUDE_BYTES = 8
CRC_BYTES = 4


# --------------------------------------------------------------------------- wire encoding


def _encode_header(name: str, value: str) -> bytes:
    raw_name = name.encode("utf-8")
    raw_value = value.encode("utf-8")
    if len(raw_name) > 255 or len(raw_value) > 0xFFFF:
        raise ValueError(f"event-stream header too long: {name}")
    return (
        struct.pack(">B", len(raw_name))
        + raw_name
        + struct.pack(">BH", HEADER_TYPE_STRING, len(raw_value))
        + raw_value
    )


def encode_event_stream_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One binary event-stream message: prelude (total length, headers length, big-endian
    uint32), prelude CRC32, string headers (type 7), payload, message CRC32."""
    raw_headers = b"".join(_encode_header(k, v) for k, v in headers.items())
    total = PRELUDE_BYTES + CRC_BYTES + len(raw_headers) + len(payload) + CRC_BYTES
    prelude = struct.pack(">II", total, len(raw_headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = head + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


def event_message(event_type: str, body: Mapping[str, Any]) -> bytes:
    """An `event` message of `event_type` (chunk, files, trace, returnControl) with a JSON body."""
    return encode_event_stream_message(
        {
            ":message-type": "event",
            ":event-type": event_type,
            ":content-type": "application/json",
        },
        orjson.dumps(body),
    )


def exception_message(code: str, message: str) -> bytes:
    """An `exception` message as Bedrock sends mid-stream (code is lowerCamel)."""
    return encode_event_stream_message(
        {
            ":message-type": "exception",
            ":exception-type": code,
            ":content-type": "application/json",
        },
        orjson.dumps({"message": message}),
    )


def _b64(data: bytes | str) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


# --------------------------------------------------------------------------- script steps


@dataclass
class Chunk:
    """A `chunk` event; `text` as str is sent UTF-8, as bytes verbatim."""

    text: str | bytes
    citations: list[dict[str, Any]] | None = None


@dataclass
class Files:
    """A `files` event; each file is {"name", "type", "bytes": bytes}."""

    files: list[dict[str, Any]]


@dataclass
class Trace:
    """A `trace` event: a TracePart ({"agentId", ..., "trace": {...}}), or a bare inner
    trace ({"orchestrationTrace": ...}) which the fake wraps in one."""

    trace: dict[str, Any]


@dataclass
class ReturnControlStep:
    """A `returnControl` event: {"invocationId", "invocationInputs": [...]}."""

    payload: dict[str, Any]


@dataclass
class StreamError:
    """An exception message inside the stream (code lowerCamel: throttlingException); ends it."""

    code: str
    message: str = "error"


@dataclass
class HttpError:
    """A plain JSON error response (x-amzn-ErrorType) instead of a stream; must come first."""

    status: int
    code: str
    message: str = "error"


@dataclass
class Delay:
    seconds: float


@dataclass
class Gate:
    """Wait until `event` is set (a test opens the gate), then go on with the next step."""

    event: asyncio.Event


@dataclass
class Hang:
    """Never finish (until the fake stops). `before_headers` hangs before any response."""

    before_headers: bool = False


Step = Chunk | Files | Trace | ReturnControlStep | StreamError | HttpError | Delay | Gate | Hang


@dataclass
class Invocation:
    agent_id: str
    alias_id: str
    session_id: str
    body: dict[str, Any]
    received_at: float
    headers: dict[str, str] = field(default_factory=dict)
    # time.monotonic() right after the first / last chunk of the answer was written (0.0: none)
    first_chunk_at: float = 0.0
    last_chunk_at: float = 0.0
    finished_at: float = 0.0
    # bytes of every input file (sessionState.files), counted before any are dropped
    file_bytes: int = 0


def echo_script(invocation: Invocation) -> Sequence[Step]:
    """The default: one chunk saying `You said: <inputText>`."""
    return [Chunk(f"You said: {invocation.body.get('inputText', '')}")]


# --------------------------------------------------------------------------- the server


class FakeBedrock(LoopbackServer):
    """Loopback InvokeAgent + Firehose endpoint on 127.0.0.1 (port 0).

    `keep_file_bytes=False` replaces each input file's base64 data in the recorded body with
    "" once it is counted (`Invocation.file_bytes`): benchmarks send hundreds of megabytes."""

    def __init__(
        self,
        script: Callable[[Invocation], Sequence[Step]] = echo_script,
        *,
        keep_file_bytes: bool = True,
    ) -> None:
        super().__init__()
        self.script = script
        self.keep_file_bytes = keep_file_bytes
        self.invocations: list[Invocation] = []
        self.firehose_records: list[bytes] = []
        # (operation, stream, record count) per Firehose call, failed calls included
        self.firehose_calls: list[tuple[str, str, int]] = []
        self.firehose_fail_next = 0
        self.firehose_http_error_next = 0
        self.firehose_deny_batch = False  # PutRecordBatch answers AccessDenied (PutRecord only)
        self.last_chunk_sent_at = 0.0
        self.concurrent_streams = 0
        self.max_concurrent_streams = 0
        self.concurrent_per_session: dict[str, int] = {}
        self.max_concurrent_per_session: dict[str, int] = {}
        self._queued: deque[Sequence[Step]] = deque()
        self._changed = asyncio.Condition()

    # lifecycle

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(
            "/agents/{agent_id}/agentAliases/{alias_id}/sessions/{session_id}/text",
            self._invoke_agent,
        )
        app.router.add_post("/", self._firehose)
        return app

    # scripting

    def queue_script(self, steps: Sequence[Step]) -> None:
        """The next invocation runs `steps` (FIFO); afterwards `script` applies again."""
        self._queued.append(list(steps))

    async def wait_for_invocations(self, n: int, timeout_s: float = 5.0) -> list[Invocation]:
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: len(self.invocations) >= n)
        return list(self.invocations)

    # InvokeAgent

    async def _invoke_agent(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read() or b"{}")
        received_at = time.monotonic()
        file_bytes = self._count_file_bytes(body)
        invocation = Invocation(
            agent_id=request.match_info["agent_id"],
            alias_id=request.match_info["alias_id"],
            session_id=request.match_info["session_id"],
            body=body,
            received_at=received_at,
            headers=dict(request.headers),
            file_bytes=file_bytes,
        )
        async with self._changed:
            self.invocations.append(invocation)
            self._changed.notify_all()
        steps = self._queued.popleft() if self._queued else self.script(invocation)

        session = invocation.session_id
        self.concurrent_streams += 1
        self.max_concurrent_streams = max(self.max_concurrent_streams, self.concurrent_streams)
        now = self.concurrent_per_session.get(session, 0) + 1
        self.concurrent_per_session[session] = now
        self.max_concurrent_per_session[session] = max(
            self.max_concurrent_per_session.get(session, 0), now
        )
        try:
            return await self._run_steps(request, invocation, steps)
        finally:
            invocation.finished_at = time.monotonic()
            self.concurrent_streams -= 1
            self.concurrent_per_session[session] -= 1

    def _count_file_bytes(self, body: dict[str, Any]) -> int:
        state = body.get("sessionState")
        files = state.get("files") if isinstance(state, dict) else None
        total = 0
        for entry in files if isinstance(files, list) else ():
            source = entry.get("source") if isinstance(entry, dict) else None
            content = source.get("byteContent") if isinstance(source, dict) else None
            data = content.get("data") if isinstance(content, dict) else None
            if isinstance(data, str):
                total += len(data) * 3 // 4 - data[-2:].count("=")
                if not self.keep_file_bytes and isinstance(content, dict):
                    content["data"] = ""
        return total

    async def _run_steps(
        self, request: web.Request, invocation: Invocation, steps: Sequence[Step]
    ) -> web.StreamResponse:
        steps = list(steps)
        if steps and isinstance(steps[0], HttpError):
            return self._error_response(steps[0])
        if steps and isinstance(steps[0], Hang) and steps[0].before_headers:
            await self._stopping.wait()
            return web.Response(status=503)

        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": EVENT_STREAM_CONTENT_TYPE,
                "x-amzn-bedrock-agent-content-type": "application/json",
                "x-amz-bedrock-agent-session-id": invocation.session_id,
                "x-amzn-RequestId": str(uuid.uuid4()),
            },
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        for step in steps:
            if isinstance(step, Delay):
                await asyncio.sleep(step.seconds)
                continue
            if isinstance(step, Gate):
                await self._until_open(step.event)
                continue
            if isinstance(step, Hang):
                await self._stopping.wait()
                return response
            if isinstance(step, HttpError):  # too late for HTTP: make it a stream error
                step = StreamError(step.code[:1].lower() + step.code[1:], step.message)
            await response.write(self._frame(step, invocation))
            if isinstance(step, Chunk):
                self.last_chunk_sent_at = invocation.last_chunk_at = time.monotonic()
                if not invocation.first_chunk_at:
                    invocation.first_chunk_at = invocation.last_chunk_at
            if isinstance(step, StreamError):
                break
        await response.write_eof()
        return response

    async def _until_open(self, gate: asyncio.Event) -> None:
        """Wait for the gate, or for the fake to stop (then the stream just ends)."""
        opened = asyncio.ensure_future(gate.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({opened, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
            stopping.cancel()

    @staticmethod
    def _frame(step: Step, invocation: Invocation) -> bytes:
        if isinstance(step, Chunk):
            chunk: dict[str, Any] = {"bytes": _b64(step.text)}
            if step.citations is not None:
                chunk["attribution"] = {"citations": step.citations}
            return event_message("chunk", chunk)
        if isinstance(step, Files):
            files = [{**f, "bytes": _b64(f.get("bytes", b""))} for f in step.files]
            return event_message("files", {"files": files})
        if isinstance(step, Trace):
            part = step.trace
            if "trace" not in part:
                part = {
                    "agentId": invocation.agent_id,
                    "agentAliasId": invocation.alias_id,
                    "sessionId": invocation.session_id,
                    "agentVersion": "1",
                    "trace": part,
                }
            return event_message("trace", part)
        if isinstance(step, ReturnControlStep):
            return event_message("returnControl", step.payload)
        if isinstance(step, StreamError):
            return exception_message(step.code, step.message)
        raise TypeError(f"not a frame step: {step!r}")

    @staticmethod
    def _error_response(step: HttpError) -> web.Response:
        return web.Response(
            status=step.status,
            body=orjson.dumps({"message": step.message}),
            headers={
                "Content-Type": "application/json",
                "x-amzn-ErrorType": f"{step.code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                "x-amzn-RequestId": str(uuid.uuid4()),
            },
        )

    # Firehose

    async def _firehose(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(FIREHOSE_TARGET_PREFIX)
        body = orjson.loads(await request.read() or b"{}")
        stream = str(body.get("DeliveryStreamName", ""))
        records = (body.get("Records") or []) if operation == "PutRecordBatch" else []
        if operation == "PutRecord":
            records = [body.get("Record") or {}]
        try:
            return self._firehose_response(operation, target, records)
        finally:
            async with self._changed:
                self.firehose_calls.append((operation, stream, len(records)))
                self._changed.notify_all()

    def _firehose_response(
        self, operation: str, target: str, records: list[dict[str, Any]]
    ) -> web.Response:
        if self.firehose_http_error_next > 0:
            self.firehose_http_error_next -= 1
            return self._json_error(400, "InvalidArgumentException", "scripted failure")
        if operation == "PutRecordBatch" and self.firehose_deny_batch:
            return self._json_error(
                400,
                "AccessDeniedException",
                "User is not authorized to perform: firehose:PutRecordBatch",
            )
        if operation == "PutRecordBatch":
            entries = [self._put_one(r) for r in records]
            failed = sum(1 for e in entries if "ErrorCode" in e)
            return self._json(
                {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": entries}
            )
        if operation == "PutRecord":
            entry = self._put_one(records[0])
            if "ErrorCode" in entry:
                return self._json_error(503, "ServiceUnavailableException", entry["ErrorMessage"])
            return self._json({"RecordId": entry["RecordId"], "Encrypted": False})
        return self._json_error(400, "UnknownOperationException", f"unknown target {target}")

    async def wait_for_firehose_records(self, n: int, timeout_s: float = 5.0) -> list[bytes]:
        """Wait until at least `n` records were accepted."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: len(self.firehose_records) >= n)
        return list(self.firehose_records)

    async def wait_for_firehose_calls(
        self, n: int, timeout_s: float = 5.0
    ) -> list[tuple[str, str, int]]:
        """Wait until at least `n` Firehose calls were answered (failed ones included)."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: len(self.firehose_calls) >= n)
        return list(self.firehose_calls)

    def _put_one(self, record: Mapping[str, Any]) -> dict[str, str]:
        if self.firehose_fail_next > 0:
            self.firehose_fail_next -= 1
            return {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
        self.firehose_records.append(base64.b64decode(record.get("Data", "")))
        return {"RecordId": uuid.uuid4().hex}

    @staticmethod
    def _json(doc: Mapping[str, Any]) -> web.Response:
        return web.Response(body=orjson.dumps(doc), content_type=JSON_11_CONTENT_TYPE)

    @staticmethod
    def _json_error(status: int, code: str, message: str) -> web.Response:
        return web.Response(
            status=status,
            body=orjson.dumps({"__type": code, "message": message}),
            content_type=JSON_11_CONTENT_TYPE,
        )
