"""Folding an agent's event stream into one answer, and reading what its traces say.

Pure functions over plain data: `fold(events)` gives an `AgentResponse` (text, sources,
citations, files, a `TraceSummary`); `ResponseBuilder` does the same incrementally for
streaming; `source_from_reference` names one retrieved document for the user. Nothing here
raises on odd input: unknown or malformed parts of an event are skipped.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ark.bedrock.types import (
    AgentEvent,
    Citation,
    OutputFile,
    ReturnControl,
    Source,
    TextChunk,
    TraceEvent,
)

PAGE_NUMBER_KEY = "x-amz-bedrock-kb-document-page-number"
TITLE_KEYS = ("x-amz-bedrock-kb-title", "title")
MAX_URL_NAME_CHARS = 60
SQL_SOURCE_NAME = "SQL query"
ELLIPSIS = "…"

# Locations whose `url` is a link to a document in a connected system.
_LINKED_LOCATIONS = (
    "confluenceLocation",
    "sharePointLocation",
    "salesforceLocation",
    "googleDriveLocation",
    "oneDriveLocation",
)


def _str(value: Any) -> str | None:
    """`value` when it is a non-blank string, stripped; else None."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _get(data: Any, *path: str) -> Any:
    """data[path[0]][path[1]]..., or None as soon as a step is missing or not a mapping."""
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _title(metadata: Mapping[str, Any]) -> str | None:
    for key in TITLE_KEYS:
        title = _str(metadata.get(key))
        if title:
            return title
    return None


def _page_number(value: Any) -> str | None:
    """A page number as shown: 3.0 and "3" render as "3"; junk renders as nothing."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return None


def _basename(uri: str) -> str:
    path = urlsplit(uri).path if "://" in uri else uri
    name = posixpath.basename(path.rstrip("/"))
    return name or uri


def _last_segment(url: str) -> str:
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    if segments:
        return unquote(segments[-1])
    return parts.netloc or url


def _short_url(url: str) -> str:
    """host + path without scheme, `www.`, query or trailing slash, cut to a readable length."""
    parts = urlsplit(url)
    if not parts.netloc:
        text = url
    else:
        host = parts.netloc.removeprefix("www.")
        text = host + unquote(parts.path).rstrip("/")
    if len(text) > MAX_URL_NAME_CHARS:
        text = text[: MAX_URL_NAME_CHARS - 1] + ELLIPSIS
    return text


def _is_http(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def source_from_reference(ref: Mapping[str, Any]) -> Source | None:
    """Name one `retrievedReferences[]` entry for the user; None when its location is
    unknown or empty. S3 sources carry no link (s3:// is not clickable)."""
    location = ref.get("location") if isinstance(ref, Mapping) else None
    if not isinstance(location, Mapping):
        return None
    metadata = ref.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}

    s3_uri = _str(_get(location, "s3Location", "uri"))
    if s3_uri:
        name = _basename(s3_uri)
        page = _page_number(metadata.get(PAGE_NUMBER_KEY))
        if page:
            name = f"{name}, p. {page}"
        return Source(name=name)

    web_url = _str(_get(location, "webLocation", "url"))
    if web_url:
        return Source(name=_title(metadata) or _short_url(web_url), url=web_url)

    for key in _LINKED_LOCATIONS:
        url = _str(_get(location, key, "url"))
        if url:
            return Source(name=_title(metadata) or _last_segment(url), url=url)

    doc_id = _str(_get(location, "customDocumentLocation", "id"))
    if doc_id:
        return Source(name=doc_id)

    kendra_uri = _str(_get(location, "kendraDocumentLocation", "uri"))
    if kendra_uri:
        name = _title(metadata) or _basename(kendra_uri)
        return Source(name=name, url=kendra_uri if _is_http(kendra_uri) else None)

    if _str(_get(location, "sqlLocation", "query")):
        return Source(name=SQL_SOURCE_NAME)
    return None


def sources_from_references(refs: Any) -> tuple[Source, ...]:
    """The named sources of a `retrievedReferences` list, de-duplicated, in order."""
    if not isinstance(refs, list | tuple):
        return ()
    found = (source_from_reference(ref) for ref in refs if isinstance(ref, Mapping))
    return _dedupe(s for s in found if s is not None)


def _dedupe(sources: Iterable[Source]) -> tuple[Source, ...]:
    # Source is frozen and hashes by (name, url): first appearance wins.
    return tuple(dict.fromkeys(sources))


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """What the agent's traces say it did: knowledge bases and action groups used (sorted,
    unique), its search queries and rationale (in order), and the documents it retrieved."""

    knowledge_bases: tuple[str, ...] = ()
    action_groups: tuple[str, ...] = ()
    search_queries: tuple[str, ...] = ()
    rationale: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentResponse:
    """One folded answer. `citations` spans are offsets into `text` (the joined chunks);
    `files` are de-duplicated by name, first kept."""

    text: str
    sources: tuple[Source, ...] = ()
    citations: tuple[Citation, ...] = ()
    files: tuple[OutputFile, ...] = ()
    trace: TraceSummary = TraceSummary()
    return_control: ReturnControl | None = None


class _TraceAccumulator:
    """Collects trace facts one trace at a time (shared by summarize_trace and the builder)."""

    __slots__ = ("_action_groups", "_knowledge_bases", "_queries", "_rationale", "_sources")

    def __init__(self) -> None:
        self._knowledge_bases: set[str] = set()
        self._action_groups: set[str] = set()
        self._queries: list[str] = []
        self._rationale: list[str] = []
        self._sources: list[Source] = []

    def add(self, trace: Mapping[str, Any]) -> None:
        # A TracePart is {"agentId": ..., "trace": {...}}; accept the bare inner dict too.
        inner = trace.get("trace") if isinstance(trace, Mapping) else None
        if not isinstance(inner, Mapping):
            inner = trace
        if not isinstance(inner, Mapping):
            return

        pre = _str(
            _get(
                inner, "preProcessingTrace", "modelInvocationOutput", "parsedResponse", "rationale"
            )
        )
        if pre:
            self._rationale.append(pre)

        orchestration = inner.get("orchestrationTrace")
        if not isinstance(orchestration, Mapping):
            return
        kb_input = _get(orchestration, "invocationInput", "knowledgeBaseLookupInput")
        kb_id = _str(_get(kb_input, "knowledgeBaseId"))
        if kb_id:
            self._knowledge_bases.add(kb_id)
        query = _str(_get(kb_input, "text"))
        if query:
            self._queries.append(query)
        group = _str(
            _get(orchestration, "invocationInput", "actionGroupInvocationInput", "actionGroupName")
        )
        if group:
            self._action_groups.add(group)
        refs = _get(
            orchestration, "observation", "knowledgeBaseLookupOutput", "retrievedReferences"
        )
        self._sources.extend(sources_from_references(refs))
        rationale = _str(_get(orchestration, "rationale", "text"))
        if rationale:
            self._rationale.append(rationale)

    def result(self) -> TraceSummary:
        return TraceSummary(
            knowledge_bases=tuple(sorted(self._knowledge_bases)),
            action_groups=tuple(sorted(self._action_groups)),
            search_queries=tuple(self._queries),
            rationale=tuple(self._rationale),
            sources=_dedupe(self._sources),
        )


def summarize_trace(traces: Iterable[Mapping[str, Any]]) -> TraceSummary:
    """The facts analytics publishes, read from trace parts (TraceEvent.trace values)."""
    acc = _TraceAccumulator()
    for trace in traces:
        acc.add(trace)
    return acc.result()


class ResponseBuilder:
    """Folds agent events one at a time; `result()` may be called at any point (streaming)."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._citations: list[Citation] = []
        self._cited_sources: list[Source] = []
        self._files: dict[str, OutputFile] = {}
        self._trace = _TraceAccumulator()
        self._return_control: ReturnControl | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def add(self, event: AgentEvent) -> None:
        if isinstance(event, TextChunk):
            self._add_chunk(event)
        elif isinstance(event, OutputFile):
            self._files.setdefault(event.name, event)
        elif isinstance(event, TraceEvent):
            self._trace.add(event.trace)
        elif isinstance(event, ReturnControl) and self._return_control is None:
            self._return_control = event

    def _add_chunk(self, chunk: TextChunk) -> None:
        offset = self._length
        for citation in chunk.citations:
            self._cited_sources.extend(citation.sources)
            self._citations.append(
                Citation(
                    sources=citation.sources,
                    span_start=None
                    if citation.span_start is None
                    else citation.span_start + offset,
                    span_end=None if citation.span_end is None else citation.span_end + offset,
                )
            )
        self._parts.append(chunk.text)
        self._length += len(chunk.text)

    def result(self) -> AgentResponse:
        trace = self._trace.result()
        return AgentResponse(
            text=self.text,
            sources=_dedupe([*self._cited_sources, *trace.sources]),
            citations=tuple(self._citations),
            files=tuple(self._files.values()),
            trace=trace,
            return_control=self._return_control,
        )


def fold(events: Iterable[AgentEvent]) -> AgentResponse:
    """The whole answer from a finished stream of events."""
    builder = ResponseBuilder()
    for event in events:
        builder.add(event)
    return builder.result()
