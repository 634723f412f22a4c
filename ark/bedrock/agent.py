"""The Bedrock Agents backend of the agent seam: InvokeAgent through aiobotocore.

`BedrockAgent.invoke` validates the request (botocore checks only minimum lengths), sends
it, and turns the event stream into `ark.bedrock.types` events. A retryable failure before
the first event is retried with exponential backoff and jitter, a bounded number of times;
once an event has been yielded nothing is retried. Every failure surfaces as
`ark.errors.AgentError(kind, retryable=...)`; `classify_error` is the one place that decides
which kind a botocore/aiohttp exception is and whether it may be retried.
"""

from __future__ import annotations

import asyncio
import codecs
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import aiohttp
import botocore.exceptions

from ark.bedrock.response import source_from_reference
from ark.bedrock.types import (
    AgentEvent,
    AgentRequest,
    Citation,
    OutputFile,
    ReturnControl,
    Source,
    TextChunk,
    TraceEvent,
)
from ark.errors import AgentError
from ark.log import get_logger

MAX_INVOKE_ATTEMPTS = 3
RETRY_BASE_DELAY_S = 0.5
RETRY_MAX_DELAY_S = 4.0
MAX_FILES = 5
MAX_TOTAL_FILE_BYTES = 10 * 1024 * 1024
MAX_INPUT_TEXT_CHARS = 25_000_000
FILE_USE_CASE = "CODE_INTERPRETER"
DEFAULT_OUTPUT_MEDIA_TYPE = "application/octet-stream"
SESSION_ID_RE = re.compile(r"^[0-9a-zA-Z._:-]{2,100}$")

log = get_logger("ark.bedrock.agent")

# Service error code (normalised: lower case, no "exception" suffix) -> (kind, retryable).
_ERROR_KINDS: dict[str, tuple[str, bool]] = {
    "throttling": ("throttling", True),
    "toomanyrequests": ("throttling", True),
    "internalserver": ("server", True),
    "badgateway": ("server", True),
    "dependencyfailed": ("server", True),
    "serviceunavailable": ("server", True),
    "modelnotready": ("server", True),
    "accessdenied": ("access_denied", False),
    "unrecognizedclient": ("access_denied", False),
    "invalidsignature": ("access_denied", False),
    "expiredtoken": ("access_denied", False),
    "resourcenotfound": ("not_found", False),
    "validation": ("validation", False),
    "conflict": ("conflict", True),
    "servicequotaexceeded": ("quota", False),
}


def _normalise_code(code: str) -> str:
    return code.lower().removesuffix("exception")


def classify_error(exc: BaseException) -> AgentError:
    """The AgentError for a failure of InvokeAgent or of reading its stream.

    Stream exceptions arrive as EventStreamError with lowerCamel codes
    (`throttlingException`), HTTP errors as ClientError (`ThrottlingException`); both map to
    the same kinds. A network failure is retryable here; the caller decides whether an
    event had already been yielded (then nothing is retried).
    """
    if isinstance(exc, AgentError):
        return exc
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, Mapping) else {}
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or code or "error")
        found = _ERROR_KINDS.get(_normalise_code(code))
        if found is None:
            meta = (
                exc.response.get("ResponseMetadata", {})
                if isinstance(exc.response, Mapping)
                else {}
            )
            status = meta.get("HTTPStatusCode") if isinstance(meta, Mapping) else None
            if status == 429:
                found = ("throttling", True)
            elif isinstance(status, int) and status >= 500:
                found = ("server", True)
            else:
                found = ("unknown", False)
        kind, retryable = found
        return AgentError(kind, message, retryable=retryable, code=code or None)
    # Timeouts before network errors: aiohttp's ServerTimeoutError is both.
    if isinstance(exc, botocore.exceptions.ConnectTimeoutError):
        return AgentError("network", str(exc), retryable=True, code="ConnectTimeout")
    if isinstance(exc, botocore.exceptions.ReadTimeoutError | asyncio.TimeoutError):
        return AgentError("timeout", str(exc) or "read timed out", retryable=False)
    if isinstance(
        exc,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectionClosedError
        | botocore.exceptions.HTTPClientError
        | aiohttp.ClientError
        | ConnectionError,
    ):
        return AgentError("network", str(exc) or type(exc).__name__, retryable=True)
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.NoRegionError):
        return AgentError("access_denied", str(exc), retryable=False)
    return AgentError("unknown", f"{type(exc).__name__}: {exc}", retryable=False)


def validate_request(request: AgentRequest) -> None:
    """Raise AgentError("validation") for what InvokeAgent would reject (before sending)."""
    if not SESSION_ID_RE.match(request.session_id):
        raise AgentError(
            "validation", "session id must be 2-100 of [0-9a-zA-Z._:-]", retryable=False
        )
    if len(request.input_text) > MAX_INPUT_TEXT_CHARS:
        raise AgentError(
            "validation", f"input text over {MAX_INPUT_TEXT_CHARS} characters", retryable=False
        )
    if len(request.files) > MAX_FILES:
        raise AgentError("validation", f"more than {MAX_FILES} files", retryable=False)
    total = sum(len(f.data) for f in request.files)
    if total > MAX_TOTAL_FILE_BYTES:
        raise AgentError(
            "validation",
            f"files total {total} bytes, over {MAX_TOTAL_FILE_BYTES}",
            retryable=False,
        )


def build_params(request: AgentRequest, agent_id: str, agent_alias_id: str) -> dict[str, Any]:
    """The invoke_agent keyword arguments for `request`."""
    params: dict[str, Any] = {
        "agentId": agent_id,
        "agentAliasId": agent_alias_id,
        "sessionId": request.session_id,
        "inputText": request.input_text,
        "enableTrace": request.enable_trace,
    }
    state: dict[str, Any] = {}
    if request.prompt_session_attributes:
        state["promptSessionAttributes"] = dict(request.prompt_session_attributes)
    if request.files:
        state["files"] = [
            {
                "name": f.name,
                "useCase": FILE_USE_CASE,
                "source": {
                    "sourceType": "BYTE_CONTENT",
                    "byteContent": {"data": f.data, "mediaType": f.media_type},
                },
            }
            for f in request.files
        ]
    if state:
        params["sessionState"] = state
    return params


def _citations(attribution: Any) -> tuple[Citation, ...]:
    raw = attribution.get("citations") if isinstance(attribution, Mapping) else None
    if not isinstance(raw, list):
        return ()
    out: list[Citation] = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        refs = entry.get("retrievedReferences")
        found = (source_from_reference(r) for r in refs or () if isinstance(r, Mapping))
        sources: tuple[Source, ...] = tuple(dict.fromkeys(s for s in found if s is not None))
        part = entry.get("generatedResponsePart")
        span = part.get("textResponsePart", {}).get("span") if isinstance(part, Mapping) else None
        start = span.get("start") if isinstance(span, Mapping) else None
        end = span.get("end") if isinstance(span, Mapping) else None
        out.append(
            Citation(
                sources=sources,
                span_start=start if isinstance(start, int) else None,
                span_end=end if isinstance(end, int) else None,
            )
        )
    return tuple(out)


class _StreamConverter:
    """Turns raw stream events (botocore dicts) of ONE invocation into Ark events.

    Chunk bytes go through an incremental UTF-8 decoder so a character split across two
    chunks is not mangled; invalid bytes become U+FFFD.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def convert(self, raw: Mapping[str, Any]) -> Iterator[AgentEvent]:
        if "chunk" in raw:
            chunk = raw["chunk"] or {}
            data = chunk.get("bytes") or b""
            text = self._decoder.decode(data) if isinstance(data, bytes) else str(data)
            citations = _citations(chunk.get("attribution"))
            if text or citations:
                yield TextChunk(text=text, citations=citations)
        elif "files" in raw:
            for f in (raw["files"] or {}).get("files") or ():
                yield OutputFile(
                    name=str(f.get("name") or "file"),
                    media_type=str(f.get("type") or DEFAULT_OUTPUT_MEDIA_TYPE),
                    data=f.get("bytes") or b"",
                )
        elif "trace" in raw:
            yield TraceEvent(trace=raw["trace"] or {})
        elif "returnControl" in raw:
            payload = raw["returnControl"] or {}
            yield ReturnControl(
                invocation_id=str(payload.get("invocationId") or ""),
                invocation_inputs=tuple(payload.get("invocationInputs") or ()),
            )
        else:
            log.debug("agent_event_skipped", event_type=",".join(raw))

    def flush(self) -> Iterator[AgentEvent]:
        tail = self._decoder.decode(b"", final=True)
        if tail:
            yield TextChunk(text=tail)


async def _close_stream(completion: Any, events: Any) -> None:
    """Release the stream's connection (a half-read stream must not return to the pool)."""
    try:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
        close = getattr(completion, "close", None)
        if close is not None:
            close()
    except Exception as exc:  # closing must never mask the real outcome
        log.debug("agent_stream_close_failed", error=type(exc).__name__)


class BedrockAgent:
    """Implements `ark.bedrock.types.Agent` on a bedrock-agent-runtime client.

    `client` is an aiobotocore client (ideally with botocore retries off: this class owns
    them). `sleep` is injected so tests do not wait for real backoff.
    """

    def __init__(
        self,
        client: Any,
        *,
        agent_id: str,
        agent_alias_id: str,
        max_attempts: int = MAX_INVOKE_ATTEMPTS,
        base_delay_s: float = RETRY_BASE_DELAY_S,
        max_delay_s: float = RETRY_MAX_DELAY_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._agent_id = agent_id
        self._agent_alias_id = agent_alias_id
        self._max_attempts = max(1, max_attempts)
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._sleep = sleep

    def _backoff_s(self, attempt: int) -> float:
        """Delay after failed attempt `attempt` (1-based): exponential, capped, half jitter."""
        cap = min(self._max_delay_s, self._base_delay_s * (2 ** (attempt - 1)))
        return cap / 2 + random.uniform(0, cap / 2)

    async def invoke(self, request: AgentRequest) -> AsyncIterator[AgentEvent]:
        """Stream the answer to `request`. Raises AgentError (validation before anything is
        sent; otherwise the classified failure once retries, if any, are spent)."""
        validate_request(request)
        session_id = request.session_id
        # The only copy we hold of the file bytes; dropped once the first event arrives.
        params: dict[str, Any] | None = build_params(request, self._agent_id, self._agent_alias_id)
        del request
        attempt = 0
        while True:
            attempt += 1
            yielded = False
            completion: Any = None
            events: Any = None
            failure: AgentError | None = None
            try:
                try:
                    response = await self._client.invoke_agent(**(params or {}))
                    completion = response["completion"]
                    events = completion.__aiter__()
                except Exception as exc:
                    failure = classify_error(exc)
                    failure.__cause__ = exc
                else:
                    converter = _StreamConverter()
                    # Traces before the first piece of the answer are held back: a failure
                    # then is still "before any text" and retried, and the failed attempt's
                    # traces are dropped with it rather than counted twice.
                    held: list[AgentEvent] = []
                    while True:
                        try:
                            raw = await events.__anext__()
                        except StopAsyncIteration:
                            break
                        except Exception as exc:
                            failure = classify_error(exc)
                            failure.__cause__ = exc
                            break
                        for event in converter.convert(raw):
                            if yielded:
                                yield event
                            elif isinstance(event, TraceEvent):
                                held.append(event)
                            else:
                                yielded = True
                                params = None  # sent and answered: no retry needs the bytes
                                for early in held:
                                    yield early
                                held.clear()
                                yield event
                    if failure is None:
                        for event in (*held, *converter.flush()):
                            yield event
                        log.debug("agent_invoked", session_id=session_id, attempts=attempt)
                        return
            finally:
                await _close_stream(completion, events)

            assert failure is not None  # every path without a failure returned above
            if yielded or not failure.retryable or attempt >= self._max_attempts:
                if yielded and failure.kind == "network":
                    failure.retryable = False
                log.warning(
                    "agent_failed",
                    session_id=session_id,
                    kind=failure.kind,
                    code=failure.code,
                    attempt=attempt,
                    after_events=yielded,
                )
                raise failure
            delay_s = self._backoff_s(attempt)
            log.warning(
                "agent_retry",
                session_id=session_id,
                kind=failure.kind,
                code=failure.code,
                attempt=attempt,
                delay_s=delay_s,
            )
            await self._sleep(delay_s)
