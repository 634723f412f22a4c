"""Citations: footnote markers `[n]` in the answer and a numbered Sources list after it.

The agent's answer is standard markdown; so is what this module returns, so both rendering
paths (markdown blocks, and the mrkdwn fallback) show the same footnotes and sources.
Numbers follow the Sources list (cited sources first, then those the knowledge-base trace
retrieved, de-duplicated in first-seen order by the response builder).

A marker goes at the end of the word its span ends in (never into a word, a code span, a
code block, a table or link syntax; in CJK text, which has no spaces, exactly where the
span ends). Where markdown could read `[n]` as part of a link (the answer defines a
reference `[n]: …`, a `(` or `[` follows, a `]` precedes) it is written `\\[n]`, which
renders as `[n]` too.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

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


def _opaque_ranges(text: str, env: dict[str, Any]) -> list[tuple[int, int]]:
    """Character ranges of fenced/indented code, tables and HTML blocks (top level or
    nested), where an inserted marker would change the content or the structure."""
    line_starts = [0]
    for n, c in enumerate(text):
        if c == "\n":
            line_starts.append(n + 1)
    line_starts.append(len(text) + 1)
    ranges: list[tuple[int, int]] = []
    for token in parser().parse(text, env):
        kind = token.type.removesuffix("_open")
        if kind in _OPAQUE_BLOCKS and token.map is not None and token.nesting >= 0:
            start, end = token.map
            end_offset = min(line_starts[min(end, len(line_starts) - 1)] - 1, len(text))
            ranges.append((line_starts[start], max(end_offset, line_starts[start])))
    return ranges


def _escaped(text: str, at: int) -> bool:
    """True when the character at `at` is backslash-escaped."""
    n = 0
    while at - n - 1 >= 0 and text[at - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def _inline_ranges(text: str) -> list[tuple[int, int]]:
    """Character ranges (sorted, not overlapping) of code spans and of link syntax
    (`[text](destination)`, `![alt](src)`, `<autolink>`), where a marker would end up inside
    the code, the link text or the URL. A scan in linear time, resetting at blank lines
    like the paragraphs that bound these spans; close enough to CommonMark for placing
    markers (the marker goes after the range)."""
    ranges: list[tuple[int, int]] = []
    blanks = [m.start() for m in _BLANK_LINE_RE.finditer(text)]

    def crosses_blank(start: int, stop: int) -> bool:
        k = bisect.bisect_left(blanks, start)
        return k < len(blanks) and blanks[k] < stop

    # code spans: a backtick run up to the next run of the same length in the paragraph
    runs: list[tuple[int, int]] = []
    at = text.find("`")
    while at >= 0:
        end = at
        while end < len(text) and text[end] == "`":
            end += 1
        if not _escaped(text, at):
            runs.append((at, end - at))
        elif end - at > 1:
            runs.append((at + 1, end - at - 1))
        at = text.find("`", end)
    by_length: dict[int, list[int]] = {}
    for k, (_, length) in enumerate(runs):
        by_length.setdefault(length, []).append(k)
    k = 0
    while k < len(runs):
        start, length = runs[k]
        same = by_length[length]
        nxt = bisect.bisect_right(same, k)
        if nxt < len(same):
            close_start, _ = runs[same[nxt]]
            if not crosses_blank(start, close_start):
                ranges.append((start, close_start + length))
                k = same[nxt] + 1
                continue
        k += 1
    code = list(ranges)
    # links: `[` … `](` … `)` outside code spans, and autolinks
    stack: list[int] = []
    close_paren = -1
    c = 0
    for match in _LINK_CHARS_RE.finditer(text):
        at = match.start()
        while c < len(code) and code[c][1] <= at:
            c += 1
        if (c < len(code) and code[c][0] <= at) or _escaped(text, at):
            continue
        char = text[at]
        if char == "\n":
            stack.clear()  # (only at a blank line, matched by the pattern)
        elif char == "[":
            stack.append(at - 1 if at > 0 and text[at - 1] == "!" else at)
        elif char == "]" and stack:
            opened = stack.pop()
            if text.startswith("(", at + 1):
                if close_paren <= at:
                    close_paren = text.find(")", at + 2)
                    if close_paren < 0:
                        close_paren = len(text) + 1
                if close_paren < len(text) and not crosses_blank(at, close_paren):
                    ranges.append((opened, close_paren + 1))
        elif char == "<":
            end = match.end()
            ranges.append((at, end))
    return _merged(ranges)


_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
_LINK_CHARS_RE = re.compile(r"\n[ \t]*\n|\[|\]|<[A-Za-z][A-Za-z0-9.+-]{1,31}:[^<>\s]*>|<")


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _wide(char: str) -> bool:
    """CJK ideographs, kana, hangul and their punctuation: words are not space-separated."""
    return unicodedata.east_asian_width(char) in ("W", "F")


def _word_end(text: str, at: int) -> int:
    """Move `at` forward to the end of the word it falls in, so a marker never splits a
    word or a link destination. CJK text has no spaces between words: a marker next to a
    CJK character stays where the span ends."""
    while (
        0 < at < len(text)
        and not text[at].isspace()
        and not text[at - 1].isspace()
        and not _wide(text[at])
        and not _wide(text[at - 1])
    ):
        at += 1
    return at


class _Placer:
    """Where a marker for a span ending at some offset goes: past the end of the word, of
    a code span and of link syntax. Offsets are asked in increasing order, and the answer
    for the previous one is reused within the same word, so n markers in one long word or
    range cost one scan of it, not n."""

    def __init__(self, text: str, ranges: list[tuple[int, int]]) -> None:
        self.text = text
        self.ranges = ranges
        self.starts = [r[0] for r in ranges]
        self.last: tuple[int, int] = (-1, -1)  # (asked, answered)
        self.back: tuple[int, int] = (len(text) + 1, 0)  # (asked, trimmed back to)

    def place(self, at: int) -> int:
        text = self.text
        # a span ending in trailing whitespace marks the last word, not the next line
        seen, trimmed = self.back
        start = at
        if seen <= at and (seen == at or text[seen:at].isspace()):
            at = trimmed
        else:
            while at > 0 and text[at - 1].isspace():
                at -= 1
        self.back = (start, at)
        asked = at
        if self.last[0] <= at <= self.last[1]:
            return self.last[1]
        while True:
            at = _word_end(text, at)
            k = bisect.bisect_right(self.starts, at - 1) - 1
            if k >= 0 and self.ranges[k][0] < at < self.ranges[k][1]:
                at = self.ranges[k][1]
                continue
            break
        self.last = (asked, at)
        return at


def _inserts(
    text: str, citations: Sequence[Citation], sources: Sequence[Source], env: dict[str, Any]
) -> list[_Insert]:
    number = {source: n for n, source in enumerate(sources, start=1)}
    by_offset: dict[tuple[int, bool], list[int]] = {}
    spans = sorted(
        ((max(0, min(c.span_end, len(text))), c) for c in citations if c.span_end is not None),
        key=lambda pair: pair[0],
    )
    if not spans:
        return []
    opaque = _opaque_ranges(text, env)
    starts = [r[0] for r in opaque]
    placer = _Placer(text, _inline_ranges(text))
    for at, citation in spans:
        after_block = False
        k = bisect.bisect_right(starts, at) - 1
        for start, end in opaque[max(0, k - 1) : k + 2]:
            if start <= at < end or (start < at <= end):
                at, after_block = end, True
                break
        if not after_block:
            at = placer.place(at)
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


def _marker(n: int, defined: Collection[str], before: str, after: str) -> str:
    """`[n]`, or `\\[n]` where markdown could read it as part of a link: the answer defines
    a reference `[n]: …`, a `(` or `[` follows (an inline or full reference link), or a `]`
    precedes (it would end a shortcut reference link `[text]`). Both render as `[n]`."""
    if str(n) in defined or after in ("(", "[") or before == "]":
        return f"\\[{n}]"
    return f"[{n}]"


def with_footnotes(text: str, citations: Sequence[Citation], sources: Sequence[Source]) -> str:
    """`text` with `[n]` after each cited span, n being the source's place in `sources`."""
    out: list[str] = []
    last = 0
    env: dict[str, Any] = {}
    inserts = _inserts(text, citations, sources, env)
    defined = frozenset(env.get("references") or ())
    for insert in inserts:
        out.append(text[last : insert.at])
        numbers = insert.numbers
        before = "" if insert.after_block else text[insert.at - 1 : insert.at]
        after = "" if insert.after_block else text[insert.at : insert.at + 1]
        markers = ""
        for k, n in enumerate(numbers):
            nxt = after
            if k + 1 < len(numbers):  # another marker follows: `[1][2]` links if 2 is defined
                nxt = "[" if str(numbers[k + 1]) in defined else ""
            markers += _marker(n, defined, before if k == 0 else "", nxt)
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
