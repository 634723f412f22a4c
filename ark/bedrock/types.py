"""The agent seam: what Ark asks an agent, and the events an agent answers with.

Any backend (Bedrock Agents today, AgentCore later, a fake in tests) implements `Agent`:
one async iterator of `AgentEvent` per request. Events are plain frozen data; folding them
into an answer is `ark.bedrock.response.fold`, a pure function.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class InputFile:
    name: str
    media_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class AgentRequest:
    session_id: str
    input_text: str
    prompt_session_attributes: Mapping[str, str] = field(default_factory=dict)
    files: tuple[InputFile, ...] = ()
    enable_trace: bool = False


@dataclass(frozen=True, slots=True)
class Source:
    """One cited document: `name` as shown, `url` when the location has a link."""

    name: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """Sources supporting one span of the answer text (offsets into that chunk's text)."""

    sources: tuple[Source, ...]
    span_start: int | None = None
    span_end: int | None = None


@dataclass(frozen=True, slots=True)
class TextChunk:
    text: str
    citations: tuple[Citation, ...] = ()


@dataclass(frozen=True, slots=True)
class OutputFile:
    name: str
    media_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class TraceEvent:
    trace: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ReturnControl:
    """The agent asks the caller to run an action (seam for confirmation buttons)."""

    invocation_id: str
    invocation_inputs: tuple[Mapping[str, Any], ...]


AgentEvent = TextChunk | OutputFile | TraceEvent | ReturnControl


class Agent(Protocol):
    def invoke(self, request: AgentRequest) -> AsyncIterator[AgentEvent]:
        """Stream the agent's answer. Raises ark.errors.AgentError on failure; a retryable
        failure before the first event has already been retried within bounds."""
        ...
