"""Primary rendering: the agent's markdown as Block Kit messages Slack renders natively.

Each message holds at most one `markdown` block (standard markdown, which Slack renders
itself; at most MAX_MARKDOWN_CHARS characters) and, at its end, at most one native `table`
block, plus a plain-text `text` fallback for notifications and old clients. Slack shows a
table block at the bottom of its message whatever its position, so a message ends at its
table: the prose before a table and the table make one message, the prose after it starts
the next. A table with more than MAX_TABLE_COLUMNS columns stays in the markdown block; one
with more rows than a table block holds is split across messages, its header repeated.

An answer that does not fit one message is split between top-level blocks (parsed by the
shared CommonMark parser, never by regular expressions over the raw text); a block too long
by itself is split between list items, then between lines, with a code fence closed and
reopened (info string kept) across the cut and a table's header and delimiter row repeated;
a line longer than a whole message is cut at a space outside code spans, links and
emphasis where there is one. A message whose reference links (`[text][label]`) lost
their definitions to another message carries a copy of those definitions. Every piece of
the agent's text goes through `defuse` before anything else, so nothing it wrote can ping
anyone.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from markdown_it.token import Token

from ark.slack.render import tokens as md
from ark.slack.render.model import (
    MAX_MARKDOWN_CHARS,
    MAX_TABLE_COLUMNS,
    MAX_TABLE_ROWS,
    MAX_TEXT_FALLBACK_CHARS,
    Part,
    SlackMessage,
)
from ark.slack.render.plain import escape
from ark.slack.render.safety import defuse

MIN_LIMIT = 500  # smaller limits cannot hold a reopened fence, a table header and a line
BLOCK_SEPARATOR = "\n\n"
TIGHT_SEPARATOR = "\n"  # between the items of one list
ELLIPSIS = "…"
EMPTY_CELL = " "  # a raw_text cell needs some text
_FENCE_CHARS = ("`", "~")
_PAIRED_MARKERS = ("**", "__", "~~")


@dataclass(frozen=True, slots=True)
class _Prose:
    """Markdown that goes into a markdown block, as one indivisible piece."""

    source: str
    separator: str = "\n\n"  # before it, when it follows other prose in the same block
    plain: str | None = None  # its visible text, when known without parsing it again


@dataclass(frozen=True, slots=True)
class _TableRows:
    """A native table block: the table and which of its body rows this block shows."""

    table: md.Table
    start: int
    stop: int

    def source(self) -> str:
        rows = self.table.row_sources[self.start : self.stop]
        return "\n".join([self.table.header_source, self.table.delimiter_source, *rows])


# --- cutting one block into pieces that fit ---------------------------------------------


def _fence_open(line: str) -> tuple[str, str] | None:
    """(indent and quote prefix, fence marker) when `line` opens or closes a code fence."""
    body = line.lstrip(" >")
    prefix = line[: len(line) - len(body)]
    for char in _FENCE_CHARS:
        if body.startswith(char * 3):
            run = len(body) - len(body.lstrip(char))
            if char == "`" and "`" in body[run:]:
                return None  # a backtick fence's info string has no backtick: a code span
            return prefix, char * run
    return None


def _cut_line(line: str, budget: int) -> int:
    """Where to cut `line` (longer than `budget`) so the head is at most `budget` long:
    preferably at a space outside code spans, links and paired emphasis, else at a space
    outside code spans and links, else at any space, else hard (never inside an entity)."""
    best: list[int] = [0, 0, 0]  # by quality: any space, outside code/links, also balanced
    code_run = 0  # length of the backtick run that opened the current code span
    brackets = parens = 0
    pairs = dict.fromkeys(_PAIRED_MARKERS, 0)
    i = 0
    n = min(len(line), budget + 1)
    while i < n:
        char = line[i]
        if char == "`":
            run = len(line) - len(line[i:].lstrip("`"))
            if code_run == 0:
                code_run = run
            elif run == code_run:
                code_run = 0
            i += run
            continue
        if code_run == 0:
            if char == "\\":
                i += 2
                continue
            if char == "[":
                brackets += 1
            elif char == "]" and brackets:
                brackets -= 1
                if line.startswith("](", i):
                    parens += 1
                    i += 2
                    continue
            elif char == ")" and parens:
                parens -= 1
            elif char == " " and 0 < i <= budget:
                best[0] = i
                if brackets == 0 and parens == 0:
                    best[1] = i
                    if not any(count % 2 for count in pairs.values()):
                        best[2] = i
            else:
                for marker in _PAIRED_MARKERS:
                    if line.startswith(marker, i):
                        pairs[marker] += 1
                        i += len(marker) - 1
                        break
        elif char == " " and 0 < i <= budget:
            best[0] = i
        i += 1
    floor = budget // 4
    for at in (best[2], best[1], best[0]):
        if at > floor:
            return at
    at = budget
    amp = line.rfind("&", max(0, budget - 9), budget)
    if amp > 0 and ";" not in line[amp:budget] and ";" in line[budget : amp + 10]:
        at = amp  # not inside an `&amp;`-style entity
    return max(at, 1)


def _chop(line: str, budget: int) -> list[str]:
    """`line` as pieces of at most `budget` characters."""
    pieces: list[str] = []
    while len(line) > budget:
        at = _cut_line(line, budget)
        head, line = line[:at].rstrip(" "), line[at:].lstrip(" ")
        if head:
            pieces.append(head)
    if line or not pieces:
        pieces.append(line)
    return pieces


def _closes(line: str, fence: tuple[str, str, str]) -> bool:
    """True when `line` closes the code fence `fence` (same character, at least as long,
    nothing after it)."""
    body = line.lstrip(" >")
    marker = fence[1]
    run = len(body) - len(body.lstrip(marker[0]))
    return run >= len(marker) and not body[run:].strip()


def _split_lines(
    source: str, limit: int, *, carry: Sequence[str] = (), fences: bool = True
) -> list[str]:
    """`source` as pieces of at most `limit` characters cut between lines. A code fence open
    at a cut is closed before it and reopened (with its info string) after it; every piece
    starts with the lines of `carry` (a table's header and delimiter row)."""
    pieces: list[str] = []
    lines: list[str] = [*carry]
    size = sum(len(c) + 1 for c in carry)
    fence: tuple[str, str, str] | None = None  # (prefix, marker, opening line)

    def closing() -> int:
        return len(fence[0]) + len(fence[1]) + 1 if fence else 0

    def flush() -> None:
        nonlocal lines, size
        body = [*lines, f"{fence[0]}{fence[1]}"] if fence else lines
        text = "\n".join(body).strip("\n")
        if text.strip():
            pieces.append(text)
        lines = [*carry, fence[2]] if fence else [*carry]
        size = sum(len(x) + 1 for x in lines)

    fresh = len(carry)  # lines a fresh piece starts with (carry, then a reopened fence)
    for raw in source.split("\n"):
        reopen = len(fence[2]) + 1 if fence else 0
        budget = limit - sum(len(c) + 1 for c in carry) - reopen - closing() - 1
        for piece in _chop(raw, max(budget, MIN_LIMIT // 4)):
            if len(lines) > fresh + bool(fence) and size + len(piece) + 1 + closing() > limit:
                flush()
            lines.append(piece)
            size += len(piece) + 1
        if not fences:
            continue
        if fence is None:
            opened = _fence_open(raw)
            if opened is not None:
                fence = (*opened, raw)
        elif _closes(raw, fence):
            fence = None
    fence = None
    flush()
    return pieces


def _pieces(block: md.Block, limit: int) -> Iterator[_Prose | _TableRows]:
    """`block` as pieces that each fit a message on their own."""
    if block.kind == md.TABLE:
        table = md.table(block)
        if table.columns <= MAX_TABLE_COLUMNS:
            per_block = MAX_TABLE_ROWS - 1  # the header is a row too
            for start in range(0, max(1, len(table.rows)), per_block):
                yield _TableRows(table, start, min(start + per_block, len(table.rows)))
            return
        head = (table.header_source, table.delimiter_source)
        if len(block.source) > limit and sum(len(h) + 1 for h in head) <= limit // 4:
            for piece in _split_lines("\n".join(table.row_sources), limit, carry=head):
                yield _Prose(piece)
            return
        # else it fits whole, or its header is too long to repeat: cut it like any block
    if len(block.source) <= limit:
        yield _Prose(block.source, plain=md.block_plain(block).strip())
        return
    if block.kind in (md.BULLET_LIST, md.ORDERED_LIST):
        for n, item in enumerate(md.list_items(block)):
            if len(item) <= limit:
                yield _Prose(item, TIGHT_SEPARATOR if n else BLOCK_SEPARATOR)
                continue
            for k, piece in enumerate(_split_lines(item, limit)):
                # a continuation at top level, undented so it is not an indented code block
                yield _Prose(piece if k == 0 else textwrap.dedent(piece))
        return
    for piece in _split_lines(block.source, limit, fences=block.kind != md.CODE_BLOCK):
        yield _Prose(piece)


# --- messages ---------------------------------------------------------------------------


def _cell(token: Token | None) -> dict[str, str]:
    text = md.inline_plain(token).replace("\n", " ").strip() if token is not None else ""
    # defused again: pieces joined without their markup (`` `<`!here ``) can form a token
    return {"type": "raw_text", "text": defuse(text) or EMPTY_CELL}


def _table_block(rows: _TableRows) -> dict[str, Any]:
    table = rows.table
    grid = [table.header, *table.rows[rows.start : rows.stop]]
    block: dict[str, Any] = {"type": "table"}
    if any(table.aligns):
        block["column_settings"] = [{"align": align or "left"} for align in table.aligns]
    block["rows"] = [
        [_cell(row[c]) if c < len(row) else _cell(None) for c in range(table.columns)]
        for row in grid
    ]
    return block


def _plain_of(source: str) -> str:
    """The visible text of a piece of markdown the document parse did not give whole (a
    piece of a block cut up): only its start is parsed, as much as the text fallback can
    show, so a long answer is not parsed twice over."""
    room = 2 * MAX_TEXT_FALLBACK_CHARS
    if len(source) > room:
        cut = source.rfind("\n", 0, room)
        if cut < room // 2:
            cut = source.rfind(" ", 0, room)
        source = source[: cut if cut > room // 2 else room]
    return "\n\n".join(
        text for text in (md.block_plain(b).strip() for b in md.blocks(source)) if text
    )


def _fallback_text(plains: Sequence[str], markdown: str) -> str:
    """The message as plain text (markdown stripped), escaped for Slack, within the limit."""
    plain = "\n\n".join(text for text in plains if text)
    text = defuse(escape(plain.strip() or markdown.strip()))
    if len(text) > MAX_TEXT_FALLBACK_CHARS:
        cut = text.rfind("&", MAX_TEXT_FALLBACK_CHARS - 6, MAX_TEXT_FALLBACK_CHARS)
        end = cut if cut > 0 and ";" not in text[cut:MAX_TEXT_FALLBACK_CHARS] else None
        text = text[: end or MAX_TEXT_FALLBACK_CHARS - 1].rstrip() + ELLIPSIS
    return text


_LABEL_RE = re.compile(r"\[((?:[^\[\]\\]|\\.){1,999})\]")


def _normal_label(label: str) -> str:
    """A link label as markdown-it keys its reference definitions."""
    return " ".join(label.split()).lower().upper()


_DEFINITION_RE = re.compile(r"^[ ]{0,3}\[((?:[^\[\]\\]|\\.){1,999})\]:", re.MULTILINE)


class _References:
    """The answer's link reference definitions, so a message whose reference links lost
    their definition to another message (after a split) carries a copy of it."""

    def __init__(self, env: dict[str, Any]) -> None:
        self.lines: dict[str, str] = {}  # normalised label → a definition line for it
        for label, ref in (env.get("references") or {}).items():
            title = str(ref.get("title") or "")
            line = f"[{label}]: <{ref.get('href') or ''}>"
            if title:
                line += ' "' + title.replace("\\", "\\\\").replace('"', '\\"') + '"'
            self.lines[label] = defuse(line)

    def used(self, source: str) -> dict[str, str]:
        """The definition lines of the labels `source` uses."""
        if not self.lines or "[" not in source:
            return {}
        out: dict[str, str] = {}
        for match in _LABEL_RE.finditer(source):
            label = _normal_label(match.group(1))
            if label in self.lines:
                out[label] = self.lines[label]
        return out

    def defined(self, source: str) -> set[str]:
        """The labels `source` defines itself."""
        if not self.lines or "]:" not in source:
            return set()
        return {_normal_label(m.group(1)) for m in _DEFINITION_RE.finditer(source)}


class _Messages:
    """Packs pieces greedily into messages: prose joins the pending markdown block while it
    fits (with the reference definitions it needs from elsewhere); a table ends the message
    it joins."""

    def __init__(self, limit: int, references: _References) -> None:
        self.limit = limit
        self.references = references
        self.prose: list[str] = []
        self.plains: list[str | None] = []
        self.size = 0
        self.needed: dict[str, str] = {}
        self.defined: set[str] = set()
        self.parts: list[Part] = []

    def _carried(self, needed: dict[str, str], defined: set[str]) -> list[str]:
        return [line for label, line in needed.items() if label not in defined]

    @staticmethod
    def _carry_size(lines: Sequence[str]) -> int:
        return len(BLOCK_SEPARATOR) + sum(len(line) + 1 for line in lines) - 1 if lines else 0

    def add_prose(self, piece: _Prose) -> None:
        used = self.references.used(piece.source)
        defined = self.references.defined(piece.source)
        extra = len(piece.source) + (len(piece.separator) if self.prose else 0)
        if self.prose:
            carry = self._carried({**self.needed, **used}, self.defined | defined)
            if self.size + extra + self._carry_size(carry) > self.limit:
                self.finish(None)
                extra = len(piece.source)
        self.prose.append(piece.separator + piece.source if self.prose else piece.source)
        self.plains.append(piece.plain)
        self.size += extra
        self.needed.update(used)
        self.defined |= defined

    def finish(self, rows: _TableRows | None) -> None:
        prose = "".join(self.prose)
        plains = self.plains
        carry = self._carried(self.needed, self.defined)
        self.prose, self.plains, self.size, self.needed, self.defined = [], [], 0, {}, set()
        carried: list[str] = []
        room = self.limit - len(prose) - len(BLOCK_SEPARATOR)
        for line in carry if prose.strip() else ():
            if len(line) + 1 <= room:  # a piece as long as the limit has no room for any
                carried.append(line)
                room -= len(line) + 1
        if carried:
            prose = prose + BLOCK_SEPARATOR + "\n".join(carried)
        blocks: list[dict[str, Any]] = []
        sources: list[str] = []
        texts: list[str] = []
        if prose.strip():
            blocks.append({"type": "markdown", "text": prose})
            sources.append(prose)
            if carried or any(p is None for p in plains):
                texts.append(_plain_of(prose))
            else:
                texts.extend(p for p in plains if p)
        if rows is not None:
            blocks.append(_table_block(rows))
            sources.append(rows.source())
            texts.append(_table_plain(rows))
        if not blocks:
            return
        markdown = BLOCK_SEPARATOR.join(sources)
        message = SlackMessage(text=_fallback_text(texts, markdown), blocks=tuple(blocks))
        self.parts.append(Part(markdown=markdown, message=message))


def _table_plain(rows: _TableRows) -> str:
    table = rows.table
    grid = [table.header, *table.rows[rows.start : rows.stop]]
    return "\n".join(" | ".join(md.inline_plain(c) for c in row) for row in grid)


def render_markdown(markdown: str, *, limit: int = MAX_MARKDOWN_CHARS) -> list[Part]:
    """`markdown` as Block Kit messages in order, each with at most `limit` characters of
    markdown block text (`limit` ≥ MIN_LIMIT) and at most one table, which ends it. Empty
    or whitespace-only input gives no message."""
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT}, got {limit}")
    markdown = defuse(markdown)
    env: dict[str, Any] = {}
    found = md.blocks(markdown, env)
    messages = _Messages(limit, _References(env))
    for block in found:
        for piece in _pieces(block, limit):
            if isinstance(piece, _TableRows):
                messages.finish(piece)
            else:
                messages.add_prose(piece)
    messages.finish(None)
    return messages.parts
