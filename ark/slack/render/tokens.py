"""Agent markdown as tokens: one CommonMark parser (with GFM tables and strikethrough) shared
by every rendering path, cut into top-level blocks that carry their exact source lines.

Splitting and conversion work on these blocks and their tokens, never with regular
expressions over raw text, so no path can cut a code fence, a table row or a link in half.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

# block kinds (the markdown-it token type of the block's first token, without `_open`)
PARAGRAPH = "paragraph"
HEADING = "heading"
FENCE = "fence"
CODE_BLOCK = "code_block"
BULLET_LIST = "bullet_list"
ORDERED_LIST = "ordered_list"
TABLE = "table"
BLOCKQUOTE = "blockquote"
HR = "hr"
HTML_BLOCK = "html_block"
OTHER = "other"  # source lines no token covers (link reference definitions, say)

ALIGNMENTS = ("left", "center", "right")


@lru_cache(maxsize=1)
def parser() -> MarkdownIt:
    """The parser: CommonMark + GFM tables + strikethrough. Stateless once built, so one
    instance serves every render (building one costs more than parsing a short answer)."""
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


@dataclass(frozen=True, slots=True)
class Block:
    """One top-level block: its kind, its exact source lines, and its tokens."""

    kind: str
    source: str
    tokens: tuple[Token, ...]


@dataclass(frozen=True, slots=True)
class Table:
    """A GFM table: the header cells, the alignment of each column (None when unset), the
    body rows (as written; a row may have fewer or more cells than the header), and the
    source lines of the header, the delimiter row and each body row."""

    header: tuple[Token, ...]  # `inline` tokens, one per cell
    aligns: tuple[str | None, ...]
    rows: tuple[tuple[Token, ...], ...]
    header_source: str
    delimiter_source: str
    row_sources: tuple[str, ...]

    @property
    def columns(self) -> int:
        return len(self.header)


def _kind(token: Token) -> str:
    return token.type.removesuffix("_open")


def blocks(markdown: str, env: dict[str, Any] | None = None) -> list[Block]:
    """The top-level blocks of `markdown`, in order. Every non-blank source line belongs to
    exactly one block; lines no token covers become OTHER blocks, so nothing is lost.
    Lines are cut where markdown-it cuts them (`\\n`, `\\r\\n`, `\\r`), not at every
    separator `str.splitlines` knows, so token line numbers match. `env`, when given,
    receives the parser's environment (link reference definitions under "references")."""
    lines = markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    tokens = parser().parse(markdown, env if env is not None else {})
    out: list[Block] = []
    covered_to = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        j = i
        if token.nesting == 1:
            depth = 0
            while j < len(tokens):
                depth += tokens[j].nesting
                if depth == 0:
                    break
                j += 1
        group = tuple(tokens[i : j + 1])
        i = j + 1
        if token.map is None:
            continue
        start, end = token.map
        _add_uncovered(out, lines, covered_to, start)
        covered_to = max(covered_to, end)
        out.append(Block(_kind(token), "\n".join(lines[start:end]).rstrip(), group))
    _add_uncovered(out, lines, covered_to, len(lines))
    return out


def _add_uncovered(out: list[Block], lines: Sequence[str], start: int, end: int) -> None:
    run: list[str] = []
    for line in [*lines[start:end], ""]:
        if line.strip():
            run.append(line)
        elif run:
            out.append(Block(OTHER, "\n".join(run), ()))
            run = []


def list_items(block: Block) -> list[str]:
    """The source of each top-level item of a list block, in order (nested lists stay
    inside their item)."""
    lines = block.source.split("\n")
    first = block.tokens[0].map[0] if block.tokens and block.tokens[0].map else 0
    level = block.tokens[0].level + 1 if block.tokens else 1
    spans = [
        t.map for t in block.tokens if t.type == "list_item_open" and t.level == level and t.map
    ]
    items: list[str] = []
    for n, (start, _end) in enumerate(spans):
        stop = spans[n + 1][0] if n + 1 < len(spans) else first + len(lines)
        items.append("\n".join(lines[start - first : stop - first]).rstrip())
    return [item for item in items if item.strip()]


def _align(token: Token) -> str | None:
    style = str(token.attrGet("style") or "")
    for align in ALIGNMENTS:
        if f"text-align:{align}" in style:
            return align
    return None


def table(block: Block) -> Table:
    """The structure of a TABLE block."""
    if block.kind != TABLE:
        raise ValueError(f"not a table: {block.kind}")
    header: list[Token] = []
    aligns: list[str | None] = []
    rows: list[tuple[Token, ...]] = []
    current: list[Token] = []
    in_head = False
    for n, token in enumerate(block.tokens):
        if token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "th_open":
            aligns.append(_align(token))
        elif token.type == "inline":
            (header if in_head else current).append(token)
        elif token.type == "tr_close" and not in_head and n > 0:
            rows.append(tuple(current))
            current = []
    lines = block.source.split("\n")
    return Table(
        header=tuple(header),
        aligns=tuple(aligns),
        rows=tuple(rows),
        header_source=lines[0],
        delimiter_source=lines[1] if len(lines) > 1 else "",
        row_sources=tuple(lines[2 : 2 + len(rows)]),
    )


def inline_plain(token: Token) -> str:
    """The visible text of an `inline` token: markup dropped, code kept as written, a
    link as its text (its URL too when the text does not already show it), an image as
    its alt text, line breaks as newlines."""
    out: list[str] = []
    link_href: list[str] = []
    link_start: list[int] = []
    for child in token.children or ():
        kind = child.type
        if kind in ("text", "code_inline", "html_inline"):
            out.append(child.content)
        elif kind in ("softbreak", "hardbreak"):
            out.append("\n")
        elif kind == "image":
            out.append(child.content or "".join(c.content for c in child.children or ()))
        elif kind == "link_open":
            link_href.append(str(child.attrGet("href") or ""))
            link_start.append(len(out))
        elif kind == "link_close" and link_href:
            href = link_href.pop()
            shown = "".join(out[link_start.pop() :])
            if href and href not in shown and shown not in href:
                out.append(f" ({href})")
    return "".join(out)


def block_plain(block: Block) -> str:
    """The visible text of a block, as plain lines (for notification fallbacks)."""
    if block.kind in (FENCE, CODE_BLOCK):
        return block.tokens[0].content.rstrip("\n") if block.tokens else block.source
    if block.kind == TABLE:
        t = table(block)
        rows = [
            [inline_plain(c) for c in t.header],
            *[[inline_plain(c) for c in r] for r in t.rows],
        ]
        return "\n".join(" | ".join(row) for row in rows)
    if block.kind == HR:
        return "―――"
    if not block.tokens:
        return block.source
    if block.kind in (BULLET_LIST, ORDERED_LIST, BLOCKQUOTE):
        return _nested_plain(block.tokens)
    return "\n".join(inline_plain(t) for t in block.tokens if t.type == "inline")


LIST_INDENT = "    "


def _nested_plain(tokens: Sequence[Token]) -> str:
    """Lists (and what a quote or list item holds) as plain lines: an ordered item keeps
    its number (`3. third`), a bullet item gets `•`, each nesting level is indented, and
    code inside an item is kept."""
    out: list[str] = []
    numbers: list[int | None] = []  # per open list: the next item's number, None if bullet
    marker = ""  # the marker the next line of the current item starts with

    def add(text: str) -> None:
        nonlocal marker
        indent = LIST_INDENT * max(0, len(numbers) - 1)
        for n, line in enumerate(text.split("\n")):
            if n == 0 and marker:
                out.append(f"{indent}{marker} {line}")
            else:
                out.append(f"{indent}{'   ' if numbers and not marker else ''}{line}".rstrip())
        marker = ""

    for token in tokens:
        if token.type == "ordered_list_open":
            start = token.attrGet("start")
            numbers.append(int(start) if start is not None else 1)
        elif token.type == "bullet_list_open":
            numbers.append(None)
        elif token.type in ("ordered_list_close", "bullet_list_close") and numbers:
            numbers.pop()
        elif token.type == "list_item_open" and numbers:
            number = numbers[-1]
            if number is None:
                marker = "•"
            else:
                marker = f"{number}."
                numbers[-1] = number + 1
        elif token.type == "inline":
            add(inline_plain(token))
        elif token.type in ("fence", "code_block"):
            add(token.content.rstrip("\n"))
    return "\n".join(out)
