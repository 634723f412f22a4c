"""BedrockAgent through the real aiobotocore client against the loopback fake Bedrock."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.session import AioSession
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError, ReadTimeoutError

from ark.aws import AGENT_RUNTIME_BOTOCORE_TOTAL_MAX_ATTEMPTS, AwsClients, client_config
from ark.bedrock.agent import BedrockAgent, classify_error
from ark.bedrock.response import fold
from ark.bedrock.types import (
    AgentEvent,
    AgentRequest,
    InputFile,
    OutputFile,
    ReturnControl,
    Source,
    TextChunk,
    TraceEvent,
)
from ark.errors import AgentError
from tests.fakes.bedrock import (
    Chunk,
    Delay,
    FakeBedrock,
    Files,
    Hang,
    HttpError,
    ReturnControlStep,
    StreamError,
    Trace,
    encode_event_stream_message,
)
from tests.logcapture import captured_records

AGENT_ID = "AGENT12345"
ALIAS_ID = "ALIAS12345"
SECRET_TEXT = "my password is hunter2"


@pytest.fixture
async def fake() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock() as server:
        yield server


@pytest.fixture(scope="module")
def session() -> AioSession:
    """One botocore session for the module: it caches the service model (0.1 s a load)."""
    return AioSession()


@pytest.fixture
async def client(fake: FakeBedrock, session: AioSession) -> AsyncIterator[Any]:
    """The agent runtime client exactly as AwsClients configures it, aimed at the fake."""
    config = client_config(4, total_max_attempts=AGENT_RUNTIME_BOTOCORE_TOTAL_MAX_ATTEMPTS)
    async with session.create_client(
        "bedrock-agent-runtime",
        region_name="us-east-1",
        endpoint_url=fake.endpoint_url,
        config=config,
    ) as runtime:
        yield runtime


class SleepRecorder:
    """Stands in for asyncio.sleep: records backoff delays without waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def agent(client: Any, sleeps: SleepRecorder) -> BedrockAgent:
    return BedrockAgent(client, agent_id=AGENT_ID, agent_alias_id=ALIAS_ID, sleep=sleeps)


async def collect(agent: BedrockAgent, request: AgentRequest) -> list[AgentEvent]:
    async with asyncio.timeout(10):
        return [event async for event in agent.invoke(request)]


def req(text: str = "hello", session_id: str = "1700000000-123456", **kw: Any) -> AgentRequest:
    return AgentRequest(session_id=session_id, input_text=text, **kw)


def s3_ref(uri: str, page: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"location": {"type": "S3", "s3Location": {"uri": uri}}}
    if page is not None:
        out["metadata"] = {"x-amz-bedrock-kb-document-page-number": page}
    return out


async def test_default_script_echoes_and_request_reaches_the_right_path(
    agent: BedrockAgent, fake: FakeBedrock
) -> None:
    events = await collect(agent, req("ping"))
    assert events == [TextChunk("You said: ping")]
    (inv,) = fake.invocations
    assert (inv.agent_id, inv.alias_id, inv.session_id) == (AGENT_ID, ALIAS_ID, "1700000000-123456")
    assert inv.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIATEST")
    assert "ark/" in inv.headers["User-Agent"]


async def test_text_in_several_chunks_is_joined(agent: BedrockAgent, fake: FakeBedrock) -> None:
    fake.queue_script([Chunk("The answer "), Delay(0.01), Chunk("is "), Chunk("42.")])
    events = await collect(agent, req())
    assert all(isinstance(e, TextChunk) for e in events)
    assert len(events) == 3
    assert fold(events).text == "The answer is 42."


async def test_multibyte_character_split_across_chunks_survives(
    agent: BedrockAgent, fake: FakeBedrock
) -> None:
    raw = "café ☕ ok".encode()
    cut = raw.index("☕".encode()) + 1  # inside the 3-byte character
    fake.queue_script([Chunk(raw[:cut]), Chunk(raw[cut:]), Chunk(b"\xff!")])
    events = await collect(agent, req())
    assert fold(events).text == "café ☕ ok\ufffd!"


async def test_citations_carry_spans_and_named_sources(
    agent: BedrockAgent, fake: FakeBedrock
) -> None:
    first = "Deploys are blue/green. "
    fake.queue_script(
        [
            Chunk(first),
            Chunk(
                "Rollback is instant.",
                citations=[
                    {
                        "generatedResponsePart": {
                            "textResponsePart": {
                                "text": "Rollback is instant",
                                "span": {"start": 0, "end": 19},
                            }
                        },
                        "retrievedReferences": [
                            s3_ref("s3://kb/runbooks/rollback.pdf", page=4.0),
                            {
                                "location": {
                                    "type": "WEB",
                                    "webLocation": {"url": "https://wiki.example.com/rollback"},
                                },
                                "metadata": {"x-amz-bedrock-kb-title": "Rollback guide"},
                            },
                        ],
                    },
                    {"retrievedReferences": [s3_ref("s3://kb/misc.txt")]},
                ],
            ),
        ]
    )
    events = await collect(agent, req())
    chunk = events[1]
    assert isinstance(chunk, TextChunk)
    assert chunk.citations[0].sources == (
        Source("rollback.pdf, p. 4"),
        Source("Rollback guide", "https://wiki.example.com/rollback"),
    )
    assert (chunk.citations[0].span_start, chunk.citations[0].span_end) == (0, 19)
    assert chunk.citations[1].span_start is None
    response = fold(events)
    start, end = response.citations[0].span_start, response.citations[0].span_end
    assert (start, end) == (len(first), len(first) + 19)
    assert response.text[start:end] == "Rollback is instant"
    assert response.sources[0] == Source("rollback.pdf, p. 4")


async def test_files_event_gives_output_files_with_bytes_intact(
    agent: BedrockAgent, fake: FakeBedrock
) -> None:
    blob = bytes(range(256)) * 40
    fake.queue_script(
        [
            Files(
                [
                    {"name": "chart.png", "type": "image/png", "bytes": blob},
                    {"name": "out.csv", "type": "text/csv", "bytes": b"a,b\n1,2\n"},
                ]
            ),
            Chunk("Done."),
        ]
    )
    events = await collect(agent, req())
    files = [e for e in events if isinstance(e, OutputFile)]
    assert [(f.name, f.media_type) for f in files] == [
        ("chart.png", "image/png"),
        ("out.csv", "text/csv"),
    ]
    assert files[0].data == blob
    assert files[1].data == b"a,b\n1,2\n"


async def test_trace_and_return_control_events(agent: BedrockAgent, fake: FakeBedrock) -> None:
    inner = {
        "orchestrationTrace": {
            "invocationInput": {
                "knowledgeBaseLookupInput": {"knowledgeBaseId": "KB1", "text": "deploy steps"}
            }
        }
    }
    invocation_input = {
        "functionInvocationInput": {
            "actionGroup": "tickets",
            "function": "close_ticket",
            "parameters": [{"name": "id", "type": "string", "value": "T-1"}],
        }
    }
    fake.queue_script(
        [
            Trace(inner),
            ReturnControlStep({"invocationId": "inv-9", "invocationInputs": [invocation_input]}),
        ]
    )
    events = await collect(agent, req(enable_trace=True))
    trace, rc = events
    assert isinstance(trace, TraceEvent)
    assert trace.trace["trace"] == inner
    assert trace.trace["agentId"] == AGENT_ID
    assert isinstance(rc, ReturnControl)
    assert rc.invocation_id == "inv-9"
    assert rc.invocation_inputs[0]["functionInvocationInput"]["function"] == "close_ticket"
    assert fold(events).trace.knowledge_bases == ("KB1",)


async def test_request_body_carries_files_attributes_and_trace_flag(
    agent: BedrockAgent, fake: FakeBedrock
) -> None:
    data = b"\x00\x01csv,bytes\xff"
    request = req(
        "analyse this",
        prompt_session_attributes={"user_name": "Ada", "user_timezone": "Europe/Paris"},
        files=(
            InputFile("data.csv", "text/csv", data),
            InputFile("r.pdf", "application/pdf", b"%PDF"),
        ),
        enable_trace=True,
    )
    await collect(agent, request)
    body = fake.invocations[0].body
    assert body["inputText"] == "analyse this"
    assert body["enableTrace"] is True
    state = body["sessionState"]
    assert state["promptSessionAttributes"] == {"user_name": "Ada", "user_timezone": "Europe/Paris"}
    assert state["files"][0] == {
        "name": "data.csv",
        "useCase": "CODE_INTERPRETER",
        "source": {
            "sourceType": "BYTE_CONTENT",
            "byteContent": {"data": base64.b64encode(data).decode(), "mediaType": "text/csv"},
        },
    }
    assert state["files"][1]["name"] == "r.pdf"


async def test_no_session_state_when_nothing_to_carry(
    agent: BedrockAgent, fake: FakeBedrock
) -> None:
    await collect(agent, req())
    body = fake.invocations[0].body
    assert "sessionState" not in body
    assert body["enableTrace"] is False


async def test_http_throttling_before_stream_is_retried_then_succeeds(
    agent: BedrockAgent, fake: FakeBedrock, sleeps: SleepRecorder
) -> None:
    fake.queue_script([HttpError(429, "ThrottlingException", "Rate exceeded")])
    events = await collect(agent, req("again"))
    assert events == [TextChunk("You said: again")]
    assert len(fake.invocations) == 2
    assert len(sleeps.delays) == 1
    assert 0 < sleeps.delays[0] <= 0.5


async def test_stream_exception_before_any_event_is_retried(
    agent: BedrockAgent, fake: FakeBedrock
) -> None:
    fake.queue_script([StreamError("internalServerException", "boom")])
    events = await collect(agent, req("x"))
    assert events == [TextChunk("You said: x")]
    assert len(fake.invocations) == 2


async def test_stream_throttling_after_only_traces_is_retried_and_the_traces_dropped(
    agent: BedrockAgent, fake: FakeBedrock, sleeps: SleepRecorder
) -> None:
    # With the trace on (analytics), orchestration traces come before any text: a throttle
    # there is still "before any text arrived", so it is retried with the same request
    first = {"orchestrationTrace": {"rationale": {"text": "attempt one"}}}
    second = {"orchestrationTrace": {"rationale": {"text": "attempt two"}}}
    fake.queue_script([Trace(first), StreamError("throttlingException", "slow down")])
    fake.queue_script([Trace(second), Chunk("done")])
    events = await collect(agent, req("q", enable_trace=True))
    assert len(fake.invocations) == 2
    assert fake.invocations[1].body == fake.invocations[0].body
    assert len(sleeps.delays) == 1
    traces = [e for e in events if isinstance(e, TraceEvent)]
    assert [t.trace["trace"] for t in traces] == [second]  # the failed attempt's are gone
    assert events[-1] == TextChunk("done")


async def test_traces_alone_are_still_delivered_at_the_end(
    agent: BedrockAgent, fake: FakeBedrock
) -> None:
    inner = {"orchestrationTrace": {"rationale": {"text": "thinking"}}}
    fake.queue_script([Trace(inner)])
    events = await collect(agent, req(enable_trace=True))
    assert [type(e) for e in events] == [TraceEvent]


async def test_stream_throttling_after_a_chunk_is_not_retried(
    agent: BedrockAgent, fake: FakeBedrock, sleeps: SleepRecorder
) -> None:
    fake.queue_script([Chunk("partial "), StreamError("throttlingException", "slow down")])
    received: list[AgentEvent] = []
    with pytest.raises(AgentError) as info:
        async with asyncio.timeout(10):
            async for event in agent.invoke(req()):
                received.append(event)
    assert received == [TextChunk("partial ")]
    assert info.value.kind == "throttling"
    assert info.value.code == "throttlingException"
    assert isinstance(info.value.__cause__, EventStreamError)
    assert len(fake.invocations) == 1
    assert sleeps.delays == []


@pytest.mark.parametrize(
    "step",
    [
        HttpError(403, "AccessDeniedException", "no bedrock:InvokeAgent"),
        StreamError("accessDeniedException", "no bedrock:InvokeAgent"),
    ],
)
async def test_access_denied_is_not_retried(
    agent: BedrockAgent, fake: FakeBedrock, step: Any
) -> None:
    fake.queue_script([step])
    with pytest.raises(AgentError) as info:
        await collect(agent, req())
    assert info.value.kind == "access_denied"
    assert info.value.retryable is False
    assert len(fake.invocations) == 1


async def test_retries_are_bounded(
    client: Any, fake: FakeBedrock, sleeps: SleepRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script = lambda inv: [HttpError(429, "ThrottlingException", "Rate exceeded")]
    agent = BedrockAgent(
        client,
        agent_id=AGENT_ID,
        agent_alias_id=ALIAS_ID,
        max_attempts=3,
        base_delay_s=0.5,
        sleep=sleeps,
    )
    with captured_records("ark.bedrock.agent") as records, pytest.raises(AgentError) as info:
        await collect(agent, req(SECRET_TEXT))
    assert info.value.kind == "throttling"
    assert info.value.retryable is True
    assert info.value.code == "ThrottlingException"
    assert len(fake.invocations) == 3
    # exponential with half jitter: attempt 1 in [0.25, 0.5], attempt 2 in [0.5, 1.0]
    assert len(sleeps.delays) == 2
    assert 0.25 <= sleeps.delays[0] <= 0.5
    assert 0.5 <= sleeps.delays[1] <= 1.0
    retries = [r for r in records if r.getMessage() == "agent_retry"]
    assert [r.ark_fields["attempt"] for r in retries] == [1, 2]  # type: ignore[attr-defined]
    assert all(r.ark_fields["kind"] == "throttling" for r in retries)  # type: ignore[attr-defined]
    assert all("delay_s" in r.ark_fields for r in retries)  # type: ignore[attr-defined]
    assert SECRET_TEXT not in repr([(r.getMessage(), r.__dict__) for r in records])


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        (req(session_id="has space"), "session id"),
        (req(session_id="x"), "session id"),
        (req(session_id="a" * 101), "session id"),
        (req(session_id="thread/1"), "session id"),
        (req(files=tuple(InputFile(f"f{i}.txt", "text/plain", b"x") for i in range(6))), "files"),
        (
            req(
                files=(
                    InputFile("a.bin", "text/csv", b"\0" * (6 * 1024 * 1024)),
                    InputFile("b.bin", "text/csv", b"\0" * (5 * 1024 * 1024)),
                )
            ),
            "files total",
        ),
        (req("x" * 25_000_001), "input text"),
    ],
)
async def test_invalid_requests_fail_before_any_call(
    agent: BedrockAgent, fake: FakeBedrock, request_: AgentRequest, why: str
) -> None:
    with pytest.raises(AgentError) as info:
        await collect(agent, request_)
    assert info.value.kind == "validation"
    assert info.value.retryable is False
    assert why in str(info.value)
    assert fake.invocations == []


async def test_five_files_of_ten_megabytes_total_are_accepted(
    agent: BedrockAgent, fake: FakeBedrock
) -> None:
    size = 2 * 1024 * 1024
    files = tuple(InputFile(f"f{i}.csv", "text/csv", b"1" * size) for i in range(5))
    await collect(agent, req(files=files))
    assert len(fake.invocations[0].body["sessionState"]["files"]) == 5


async def test_read_timeout_mid_stream_is_a_timeout_error(
    fake: FakeBedrock, session: AioSession
) -> None:
    config = client_config(2, total_max_attempts=1, read_timeout_s=0.2)
    async with session.create_client(
        "bedrock-agent-runtime",
        region_name="us-east-1",
        endpoint_url=fake.endpoint_url,
        config=config,
    ) as client:
        agent = BedrockAgent(client, agent_id=AGENT_ID, agent_alias_id=ALIAS_ID, max_attempts=3)
        fake.queue_script([Chunk("thinking..."), Hang()])
        received: list[AgentEvent] = []
        with pytest.raises(AgentError) as info:
            async with asyncio.timeout(10):
                async for event in agent.invoke(req()):
                    received.append(event)
        assert received == [TextChunk("thinking...")]
        assert info.value.kind == "timeout"
        assert info.value.retryable is False
        assert len(fake.invocations) == 1

        # a hang before the response headers is a timeout too, and not retried
        fake.queue_script([Hang(before_headers=True)])
        with pytest.raises(AgentError) as info:
            await collect(agent, req())
        assert info.value.kind == "timeout"
        assert len(fake.invocations) == 2


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_network_retried_within_bounds(sleeps: SleepRecorder) -> None:
    async with AwsClients(
        region="us-east-1",
        profile=None,
        max_concurrency=1,
        firehose=False,
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
    ) as aws:
        agent = BedrockAgent(
            aws.agent_runtime, agent_id=AGENT_ID, agent_alias_id=ALIAS_ID, sleep=sleeps
        )
        with pytest.raises(AgentError) as info:
            await collect(agent, req())
    assert info.value.kind == "network"
    assert info.value.retryable is True
    assert len(sleeps.delays) == 2


async def test_abandoning_the_stream_releases_its_connection(
    fake: FakeBedrock, session: AioSession
) -> None:
    # One pooled connection only: a half-read stream left in the pool would block the next.
    config = client_config(1)
    config.max_pool_connections = 1
    async with session.create_client(
        "bedrock-agent-runtime",
        region_name="us-east-1",
        endpoint_url=fake.endpoint_url,
        config=config,
    ) as client:
        agent = BedrockAgent(client, agent_id=AGENT_ID, agent_alias_id=ALIAS_ID)
        fake.queue_script([Chunk("first"), Hang()])
        stream = agent.invoke(req())
        async with asyncio.timeout(5):
            first = await anext(stream)
            await stream.aclose()  # type: ignore[attr-defined]
        assert first == TextChunk("first")
        assert await collect(agent, req("next")) == [TextChunk("You said: next")]


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "InvokeAgent",
    )


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (client_error("ThrottlingException", 429), "throttling", True),
        (client_error("InternalServerException", 500), "server", True),
        (client_error("BadGatewayException", 502), "server", True),
        (client_error("DependencyFailedException", 424), "server", True),
        (client_error("ModelNotReadyException", 424), "server", True),
        (client_error("ServiceUnavailableException", 503), "server", True),
        (client_error("AccessDeniedException", 403), "access_denied", False),
        (client_error("ResourceNotFoundException", 404), "not_found", False),
        (client_error("ValidationException", 400), "validation", False),
        (client_error("ConflictException", 409), "conflict", True),
        (client_error("ServiceQuotaExceededException", 400), "quota", False),
        (client_error("SomethingNew", 503), "server", True),
        (client_error("SomethingNew", 400), "unknown", False),
        (
            EventStreamError(
                {"Error": {"Code": "modelNotReadyException", "Message": "warming"}}, "InvokeAgent"
            ),
            "server",
            True,
        ),
        (
            EventStreamError(
                {"Error": {"Code": "resourceNotFoundException", "Message": "?"}}, "InvokeAgent"
            ),
            "not_found",
            False,
        ),
        (ReadTimeoutError(endpoint_url="http://x"), "timeout", False),
        (TimeoutError(), "timeout", False),
        (ValueError("odd"), "unknown", False),
    ],
)
def test_classify_error(exc: BaseException, kind: str, retryable: bool) -> None:
    error = classify_error(exc)
    assert (error.kind, error.retryable) == (kind, retryable)


def test_fake_encodes_event_stream_messages_botocore_can_decode() -> None:
    headers = {
        ":message-type": "event",
        ":event-type": "chunk",
        ":content-type": "application/json",
    }
    payload = b'{"bytes": "aGk="}'
    wire = encode_event_stream_message(headers, payload) + encode_event_stream_message(
        {":message-type": "exception", ":exception-type": "throttlingException"}, b"{}"
    )
    buffer = EventStreamBuffer()
    buffer.add_data(wire[:7])  # split inside the prelude: the decoder must wait
    assert list(buffer) == []
    buffer.add_data(wire[7:])
    first, second = list(buffer)
    assert first.headers == headers
    assert first.payload == payload
    assert second.headers[":exception-type"] == "throttlingException"

    corrupt = bytearray(encode_event_stream_message(headers, payload))
    corrupt[-6] ^= 0xFF  # a payload byte: the message CRC no longer matches
    bad = EventStreamBuffer()
    bad.add_data(bytes(corrupt))
    with pytest.raises(ChecksumMismatch):
        list(bad)
