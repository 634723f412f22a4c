"""Citations: footnote markers `[n]` in the answer and a numbered Sources list after it.

The agent's answer is standard markdown; so is what this module returns, so both rendering
paths (markdown blocks, and the mrkdwn fallback) show the same footnotes and sources.
Numbers follow the Sources list (cited sources first, then those the knowledge-base trace
retrieved, de-duplicated in first-seen order by the response builder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ark.bedrock.types import Citation, Source
from ark.slack.render.tokens import CODE_BLOCK, FENCE, HTML_BLOCK, TABLE, parser

SOURCES_HEADING = "**Sources**"
# blocks whose text a marker must not enter: it goes on a line of its own after them
_OPAQUE_BLOCKS = frozenset({FENCE, CODE_BLOCK, TABLE, HTML_BLOCK})
_MARKDOWN_SPECIALS = frozenset("\\`*_[]<>#|~&")
_URL_FORBIDDEN = frozenset(" \t\r\n<>()\\")


@dataclass(frozen=True, slots=True)
class _Insert:
    at: int  # offset into the text
    after_block: bool  # True: on its own line after an opaque block
    numbers: tuple[int, ...]


def escape_markdown(text: str) -> str:
    """Backslash-escape markdown punctuation so a source name renders as written."""
    text = " ".join(text.split())
    return "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in text)


def _linkable(url: str | None) -> bool:
    if not url or not url.startswith(("https://", "http://")):
        return False
    return not _URL_FORBIDDEN.intersection(url)


def sources_markdown(sources: Sequence[Source]) -> str:
    """The numbered Sources list, a link where the location has one."""
    lines = [SOURCES_HEADING, ""]
    for n, source in enumerate(sources, start=1):
        name = escape_markdown(source.name) or escape_markdown(source.url or "") or "source"
        if source.url and _linkable(source.url):
            lines.append(f"{n}. [{name}]({source.url})")
        else:
            lines.append(f"{n}. {name}")
    return "\n".join(lines)


def _opaque_ranges(text: str) -> list[tuple[int, int]]:
    """Character ranges of fenced/indented code, tables and HTML blocks (top level or
    nested), where an inserted marker would change the content or the structure."""
    line_starts = [0]
    for n, c in enumerate(text):
        if c == "\n":
            line_starts.append(n + 1)
    line_starts.append(len(text) + 1)
    ranges: list[tuple[int, int]] = []
    for token in parser().parse(text):
        kind = token.type.removesuffix("_open")
        if kind in _OPAQUE_BLOCKS and token.map is not None and token.nesting >= 0:
            start, end = token.map
            end_offset = min(line_starts[min(end, len(line_starts) - 1)] - 1, len(text))
            ranges.append((line_starts[start], max(end_offset, line_starts[start])))
    return ranges


def _word_end(text: str, at: int) -> int:
    """Move `at` forward to the end of the word it falls in, so a marker never splits a
    word or a link destination."""
    while 0 < at < len(text) and not text[at].isspace() and not text[at - 1].isspace():
        at += 1
    return at


def _inserts(text: str, citations: Sequence[Citation], sources: Sequence[Source]) -> list[_Insert]:
    number = {source: n for n, source in enumerate(sources, start=1)}
    by_offset: dict[tuple[int, bool], list[int]] = {}
    opaque = _opaque_ranges(text) if citations else []
    for citation in citations:
        if citation.span_end is None:
            continue
        at = max(0, min(citation.span_end, len(text)))
        after_block = False
        for start, end in opaque:
            if start <= at < end or (start < at <= end):
                at, after_block = end, True
                break
        if not after_block:
            # a span ending in trailing whitespace marks the last word, not the next line
            while at > 0 and text[at - 1].isspace():
                at -= 1
            at = _word_end(text, at)
        numbers = by_offset.setdefault((at, after_block), [])
        for source in citation.sources:
            n = number.get(source)
            if n is not None and n not in numbers:
                numbers.append(n)
    return [
        _Insert(at, after_block, tuple(sorted(numbers)))
        for (at, after_block), numbers in sorted(by_offset.items())
        if numbers
    ]


def with_footnotes(text: str, citations: Sequence[Citation], sources: Sequence[Source]) -> str:
    """`text` with `[n]` after each cited span, n being the source's place in `sources`."""
    out: list[str] = []
    last = 0
    for insert in _inserts(text, citations, sources):
        out.append(text[last : insert.at])
        markers = "".join(f"[{n}]" for n in insert.numbers)
        out.append(f"\n\n{markers}\n" if insert.after_block else markers)
        last = insert.at
    out.append(text[last:])
    return "".join(out)


def compose_answer(
    text: str, citations: Sequence[Citation] = (), sources: Sequence[Source] = ()
) -> str:
    """The whole answer as markdown: the text with footnotes, then the Sources list."""
    body = with_footnotes(text, citations, sources).strip()
    if not sources:
        return body
    listing = sources_markdown(sources)
    return f"{body}\n\n{listing}" if body else listing
