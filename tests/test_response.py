"""Folding agent events into an answer, naming sources, and summarising traces (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from ark.bedrock.response import (
    AgentResponse,
    ResponseBuilder,
    TraceSummary,
    fold,
    source_from_reference,
    summarize_trace,
)
from ark.bedrock.types import (
    Citation,
    OutputFile,
    ReturnControl,
    Source,
    TextChunk,
    TraceEvent,
)


def ref(location: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"location": location, "content": {"text": "secret passage"}}
    if metadata:
        out["metadata"] = metadata
    return out


def s3(uri: str, **metadata: Any) -> dict[str, Any]:
    return ref({"type": "S3", "s3Location": {"uri": uri}}, **metadata)


PAGE = "x-amz-bedrock-kb-document-page-number"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (s3("s3://bucket/docs/handbook.pdf"), Source("handbook.pdf")),
        (s3("s3://bucket/docs/handbook.pdf", **{PAGE: 3.0}), Source("handbook.pdf, p. 3")),
        (s3("s3://bucket/a.pdf", **{PAGE: 12}), Source("a.pdf, p. 12")),
        (s3("s3://bucket/a.pdf", **{PAGE: "7"}), Source("a.pdf, p. 7")),
        (s3("s3://bucket/a.pdf", **{PAGE: 2.5}), Source("a.pdf, p. 2.5")),
        (s3("s3://bucket/a.pdf", **{PAGE: None}), Source("a.pdf")),
        (s3("s3://bucket/folder/"), Source("folder")),
        (
            ref({"type": "WEB", "webLocation": {"url": "https://www.example.com/guide/start/"}}),
            Source("example.com/guide/start", "https://www.example.com/guide/start/"),
        ),
        (
            ref(
                {"type": "WEB", "webLocation": {"url": "https://example.com/p?id=1"}},
                **{"x-amz-bedrock-kb-title": "Getting started"},
            ),
            Source("Getting started", "https://example.com/p?id=1"),
        ),
        (
            ref({"type": "WEB", "webLocation": {"url": "https://e.com/x"}}, title="Plain title"),
            Source("Plain title", "https://e.com/x"),
        ),
        (
            ref(
                {
                    "type": "CONFLUENCE",
                    "confluenceLocation": {"url": "https://c.net/wiki/Runbook%20A"},
                }
            ),
            Source("Runbook A", "https://c.net/wiki/Runbook%20A"),
        ),
        (
            ref(
                {
                    "type": "SHAREPOINT",
                    "sharePointLocation": {"url": "https://sp.com/sites/x/doc.docx"},
                },
                title="Policy",
            ),
            Source("Policy", "https://sp.com/sites/x/doc.docx"),
        ),
        (
            ref(
                {
                    "type": "SALESFORCE",
                    "salesforceLocation": {"url": "https://sf.com/lightning/0051"},
                }
            ),
            Source("0051", "https://sf.com/lightning/0051"),
        ),
        (
            ref({"type": "CUSTOM", "customDocumentLocation": {"id": "doc-42"}}),
            Source("doc-42"),
        ),
        (
            ref(
                {
                    "type": "KENDRA",
                    "kendraDocumentLocation": {"uri": "https://k.com/files/faq.html"},
                }
            ),
            Source("faq.html", "https://k.com/files/faq.html"),
        ),
        (
            ref({"type": "KENDRA", "kendraDocumentLocation": {"uri": "s3://b/k/faq.pdf"}}),
            Source("faq.pdf"),
        ),
        (ref({"type": "SQL", "sqlLocation": {"query": "SELECT 1"}}), Source("SQL query")),
    ],
)
def test_source_naming_per_location_type(reference: dict[str, Any], expected: Source) -> None:
    assert source_from_reference(reference) == expected


def test_long_web_url_is_shortened_but_link_kept() -> None:
    url = "https://example.com/" + "/".join(["segment"] * 20)
    source = source_from_reference(ref({"webLocation": {"url": url}}))
    assert source is not None
    assert source.url == url
    assert len(source.name) <= 60
    assert source.name.startswith("example.com/segment")
    assert source.name.endswith("…")


@pytest.mark.parametrize(
    "reference",
    [
        {},
        {"location": None},
        {"location": {"type": "UNKNOWN", "futureLocation": {"x": 1}}},
        {"location": {"type": "S3", "s3Location": {"uri": ""}}},
        {"location": {"type": "S3", "s3Location": None}},
    ],
)
def test_unknown_or_empty_locations_have_no_source(reference: dict[str, Any]) -> None:
    assert source_from_reference(reference) is None


def kb_lookup(kb_id: str, query: str) -> dict[str, Any]:
    return {
        "agentId": "A",
        "trace": {
            "orchestrationTrace": {
                "invocationInput": {
                    "invocationType": "KNOWLEDGE_BASE",
                    "knowledgeBaseLookupInput": {"knowledgeBaseId": kb_id, "text": query},
                }
            }
        },
    }


def kb_output(*refs: dict[str, Any]) -> dict[str, Any]:
    return {
        "trace": {
            "orchestrationTrace": {
                "observation": {"knowledgeBaseLookupOutput": {"retrievedReferences": list(refs)}}
            }
        }
    }


def test_trace_summary_reads_every_documented_path() -> None:
    traces = [
        {
            "trace": {
                "preProcessingTrace": {
                    "modelInvocationOutput": {
                        "parsedResponse": {"rationale": "pre", "isValid": True}
                    }
                }
            }
        },
        kb_lookup("KB2", "how to deploy"),
        kb_lookup("KB1", "rollback"),
        kb_lookup("KB2", "how to deploy"),
        # the bare inner dict is accepted too
        {"orchestrationTrace": {"rationale": {"text": "thinking"}}},
        {
            "trace": {
                "orchestrationTrace": {
                    "invocationInput": {
                        "actionGroupInvocationInput": {"actionGroupName": "tickets"}
                    }
                }
            }
        },
        {
            "trace": {
                "orchestrationTrace": {
                    "invocationInput": {"actionGroupInvocationInput": {"actionGroupName": "alerts"}}
                }
            }
        },
        kb_output(
            s3("s3://b/a.pdf", **{PAGE: 1.0}), s3("s3://b/b.pdf"), s3("s3://b/a.pdf", **{PAGE: 1})
        ),
        {"trace": {"failureTrace": {"failureReason": "x"}}},
        {"trace": "not a mapping"},
    ]
    summary = summarize_trace(traces)
    assert summary == TraceSummary(
        knowledge_bases=("KB1", "KB2"),
        action_groups=("alerts", "tickets"),
        search_queries=("how to deploy", "rollback", "how to deploy"),
        rationale=("pre", "thinking"),
        sources=(Source("a.pdf, p. 1"), Source("b.pdf")),
    )


def test_fold_joins_text_and_offsets_citation_spans_into_the_joined_text() -> None:
    first = "Deploys use blue/green. "
    second = "Rollback takes a minute."
    cite_a = Citation(sources=(Source("deploy.md"),), span_start=0, span_end=22)
    cite_b = Citation(sources=(Source("rollback.md"),), span_start=0, span_end=23)
    unspanned = Citation(sources=(Source("misc.md"),))
    response = fold([TextChunk(first, (cite_a,)), TextChunk(second, (cite_b, unspanned))])
    assert response.text == first + second
    assert [(c.span_start, c.span_end) for c in response.citations] == [
        (0, 22),
        (len(first), len(first) + 23),
        (None, None),
    ]
    start, end = response.citations[1].span_start, response.citations[1].span_end
    assert start is not None and end is not None
    assert response.text[start:end] == second[:23]


def test_sources_cited_first_then_traced_deduplicated_in_first_seen_order() -> None:
    events = [
        TraceEvent(kb_output(s3("s3://b/traced.pdf"), s3("s3://b/cited-2.pdf"))),
        TextChunk("a", (Citation((Source("cited-1.pdf"), Source("cited-2.pdf"))),)),
        TextChunk("b", (Citation((Source("cited-1.pdf"),)),)),
        TextChunk("c", (Citation((Source("web", "https://w"), Source("web"))),)),
    ]
    assert fold(events).sources == (
        Source("cited-1.pdf"),
        Source("cited-2.pdf"),
        Source("web", "https://w"),
        Source("web"),
        Source("traced.pdf"),
    )


def test_fold_of_mixed_events() -> None:
    rc = ReturnControl("inv-1", ({"functionInvocationInput": {"function": "approve"}},))
    events = [
        TraceEvent(kb_lookup("KB1", "q")),
        TextChunk("Here is "),
        OutputFile("chart.png", "image/png", b"\x89PNG-1"),
        OutputFile("chart.png", "image/png", b"\x89PNG-2"),
        OutputFile("data.csv", "text/csv", b"a,b\n"),
        TextChunk("your chart."),
        rc,
        ReturnControl("inv-2", ()),
    ]
    response = fold(events)
    assert isinstance(response, AgentResponse)
    assert response.text == "Here is your chart."
    assert [(f.name, f.data) for f in response.files] == [
        ("chart.png", b"\x89PNG-1"),
        ("data.csv", b"a,b\n"),
    ]
    assert response.trace.knowledge_bases == ("KB1",)
    assert response.trace.search_queries == ("q",)
    assert response.return_control == rc
    assert response.citations == ()


def test_empty_stream_folds_to_empty_answer() -> None:
    response = fold([])
    assert response == AgentResponse(text="")


def test_builder_gives_partial_results_while_streaming() -> None:
    builder = ResponseBuilder()
    builder.add(TextChunk("Hel"))
    assert builder.result().text == "Hel"
    builder.add(TextChunk("lo", (Citation((Source("s.pdf"),), 0, 2),)))
    result = builder.result()
    assert result.text == "Hello"
    assert result.citations[0].span_start == 3
    assert result.sources == (Source("s.pdf"),)
