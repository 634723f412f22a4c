"""Fallback rendering: the agent's markdown as Slack mrkdwn text, split into text-only messages.

Used when Slack rejects the primary (Block Kit) payload. The conversion walks markdown-it
tokens (never regular expressions over the raw text), so it cannot cut a code fence or a
link in half, and it renders:

- `**b**`, `__b__` → `*b*`; `*i*`, `_i_` → `_i_`; `~~s~~` → `~s~`. Slack only formats a span
  whose markers are not touching a letter or digit outside, so an intra-word span
  (`foo**bar**baz`) is emitted without markers (`foobarbaz`) rather than with broken ones; a
  span nested in one of the same kind loses its inner markers; a span over several lines is
  wrapped line by line (Slack's spans stop at a newline); an empty span renders nothing.
- `[t](u)`, `![alt](u)` → `<u|t>` (`<u>` when there is no text) when `u` is an http(s) URL
  with no `|`, `<`, `>`, whitespace or mention-like text; otherwise `t (u)` as plain text.
  markdown-it percent-encodes `|`, `<`, `>` and spaces in a link destination, so such a link
  stays a (working) link. Autolinks `<http://x>` → `<http://x>`; bare URLs stay as written
  (Slack links them itself). Link titles are not shown (they are tooltips in markdown).
- headings → a bold line; lists → `1.` lines (from the list's start number) or `•`, `◦`, `▪`
  lines by depth, each nesting level indented by 4 spaces (continuation lines of an item
  too); block quotes → lines prefixed `> ` (`> > ` when nested); fenced and indented code →
  ```` ``` ```` lines around the code, language tag dropped, content verbatim; tables → a
  code block with padded columns (`inline_plain` cell text, east-asian wide characters count
  as two columns, combining and format characters as none, column alignment honoured);
  thematic breaks → `――――――――――`; raw HTML → shown as text; line breaks → newlines;
  lines no token covers (link reference definitions) → shown as written.
- `&`, `<`, `>` are escaped as `&amp;`, `&lt;`, `&gt;` everywhere (code included, since
  Slack requires it) except in the `<u|t>` syntax generated here, and every piece of the
  agent's text goes through `defuse`, so nothing it wrote can ping anyone.

Slack mrkdwn has no escape for a literal `*`, `_`, `~` or backtick, so such characters in
the agent's text may still be read as formatting; only a run of three backticks (in code or
text) gets a zero-width space inside, so it cannot open or close a code block.

`render_mrkdwn` packs the converted top-level blocks greedily into messages of at most
`limit` characters. A block longer than that is split: lists between items, block quotes
between the blocks they hold, code blocks and tables between lines with the fence closed
and reopened (a table's header and rule repeated), long lines at a space outside any
`*bold*`-style span or generated link, else at a space outside a link, else (last resort)
hard, but never inside an `&amp;`-style entity.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from markdown_it.token import Token

from ark.slack.render import tokens as md
from ark.slack.render.model import MAX_TEXT_FALLBACK_CHARS, SlackMessage
from ark.slack.render.plain import escape
from ark.slack.render.safety import ZWSP, defuse

MIN_LIMIT = 500  # smaller limits cannot fit a reopened fence, a table header and a line
INDENT = "    "  # per nesting level of a list
BULLETS = ("•", "◦", "▪")  # by list depth, cycling
QUOTE = "> "
FENCE = "```"
HR_LINE = "―" * 10
_MARKERS = {"strong": "*", "em": "_", "s": "~"}

# roles of a rendered line
_TEXT = 0
_FENCE = 1  # opens or closes a code block
_HEAD = 2  # a table's header or rule line, repeated when a table is split


class _Line(NamedTuple):
    """One output line: its text, its role, where it may be cut safely (offsets of spaces
    outside formatting and links), and the prefix a cut-off continuation carries."""

    text: str
    role: int = _TEXT
    breaks: tuple[int, ...] = ()
    cont: str = ""


_Unit = list[_Line]  # lines that belong together (a list item, a paragraph, a code line)


def _esc(text: str) -> str:
    """The agent's text made safe for mrkdwn: escaped, defused, and with no run of three
    backticks (which would open or close a code block in Slack, wherever it stands)."""
    return _no_fence(defuse(escape(text)))


def _no_fence(text: str) -> str:
    while FENCE in text:
        text = text.replace(FENCE, "``" + ZWSP + "`")
    return text


# --- inline content -------------------------------------------------------------------------


@dataclass(slots=True)
class _Span:
    """An inline container (emphasis, strikethrough, link) and what it holds."""

    kind: str
    token: Token | None = None
    children: list[_Span | Token] = field(default_factory=list)


def _tree(children: Sequence[Token]) -> list[_Span | Token]:
    root = _Span("root")
    stack = [root]
    for token in children:
        if token.nesting == 1:
            span = _Span(token.type.removesuffix("_open"), token)
            stack[-1].children.append(span)
            stack.append(span)
        elif token.nesting == -1:
            if len(stack) > 1:
                stack.pop()
        else:
            stack[-1].children.append(token)
    return root.children


def _plain(nodes: Sequence[_Span | Token]) -> str:
    """Visible text of inline nodes, no markup (for link labels)."""
    out: list[str] = []
    for node in nodes:
        if isinstance(node, _Span):
            out.append(_plain(node.children))
        elif node.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif node.type == "image":
            out.append(_plain(_tree(node.children or ())))
        else:
            out.append(node.content)
    return "".join(out)


def _first_char(nodes: Sequence[_Span | Token], start: int = 0) -> str:
    """The first character `nodes[start:]` will render as (approximately: a span's marker).
    Takes an offset rather than a slice, so asking after each of n spans stays linear."""
    for k in range(start, len(nodes)):
        node = nodes[k]
        if isinstance(node, _Span):
            if node.kind == "link":
                return "<"
            if node.kind in _MARKERS:
                return _MARKERS[node.kind]
            first = _first_char(node.children)
            if first:
                return first
            continue
        if node.type == "code_inline":
            return "`"
        if node.type in ("softbreak", "hardbreak"):
            return "\n"
        if node.type == "image":
            return "<"
        if node.content:
            return escape(node.content[0])[0]
    return ""


def _link_target(href: str) -> str | None:
    """`href` escaped for `<href|text>`, or None when it cannot safely be a Slack link."""
    if not href.lower().startswith(("http://", "https://")):
        return None
    if any(c in "|<>" or c.isspace() for c in href) or defuse(href) != href:
        return None
    return escape(href)


def _link(href: str, label: str) -> str:
    label = label.replace("\n", " ")
    target = _link_target(href)
    if target is not None:
        if not label.strip() or label == href:
            return f"<{target}>"
        return f"<{target}|{_esc(label)}>"
    if not label.strip():
        return _esc(href)
    if not href or href in (label, "mailto:" + label):
        return _esc(label)
    return _esc(f"{label} ({href})")


class _Out:
    """An inline rendering buffer that records where a long line may be cut."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.breaks: list[int] = []

    def emit(self, text: str, *, breakable: bool = False, breaks: Sequence[int] = ()) -> None:
        if breakable:
            at = text.find(" ")
            while at >= 0:
                self.breaks.append(self.length + at)
                at = text.find(" ", at + 1)
        self.breaks.extend(self.length + b for b in breaks)
        self.parts.append(text)
        self.length += len(text)

    def last_char(self) -> str:
        for part in reversed(self.parts):
            if part:
                return part[-1]
        return ""

    def text(self) -> str:
        return "".join(self.parts)


def _wrap(content: str, marker: str) -> str:
    """Put `marker` around each line of `content` (Slack's spans end at a newline)."""
    lines = []
    for line in content.split("\n"):
        core = line.strip()
        if core:
            start = line.index(core)
            line = f"{line[:start]}{marker}{core}{marker}{line[start + len(core) :]}"
        lines.append(line)
    return "\n".join(lines)


def _render_inline(
    nodes: Sequence[_Span | Token], out: _Out, active: frozenset[str], before: str, after: str
) -> None:
    for k, node in enumerate(nodes):
        if isinstance(node, _Span):
            if node.kind == "link":
                href = str(node.token.attrGet("href") or "") if node.token else ""
                out.emit(_link(href, _plain(node.children)))
                continue
            marker = _MARKERS.get(node.kind)
            prev = out.last_char() or before
            nxt = _first_char(nodes, k + 1) or after
            use = (
                marker is not None
                and marker not in active
                and not prev.isalnum()
                and not nxt.isalnum()
            )
            inner = _Out()
            if use and marker is not None:
                _render_inline(node.children, inner, active | {marker}, marker, marker)
                content = inner.text()
                if content.strip():
                    out.emit(_wrap(content, marker))
                else:
                    out.emit(content)
            else:
                _render_inline(node.children, inner, active, prev, nxt)
                out.emit(inner.text(), breaks=inner.breaks)
            continue
        kind = node.type
        if kind == "text":
            out.emit(_esc(node.content), breakable=not active)
        elif kind == "code_inline":
            out.emit(_no_fence(f"`{_esc(node.content)}`"))
        elif kind in ("softbreak", "hardbreak"):
            out.emit("\n")
        elif kind == "image":
            alt = _plain(_tree(node.children or ()))
            out.emit(_link(str(node.attrGet("src") or ""), alt))
        elif node.content:
            out.emit(_esc(node.content))


def _split_lines(text: str, breaks: Sequence[int]) -> list[_Line]:
    lines: list[_Line] = []
    start = 0
    k = 0
    for line in text.split("\n"):
        end = start + len(line)
        own: list[int] = []
        while k < len(breaks) and breaks[k] < end:
            if breaks[k] >= start:
                own.append(breaks[k] - start)
            k += 1
        lines.append(_Line(line, _TEXT, tuple(own)))
        start = end + 1
    return lines


def _inline_lines(token: Token, *, heading: bool = False) -> list[_Line]:
    out = _Out()
    active = frozenset({"*"}) if heading else frozenset()
    _render_inline(_tree(token.children or ()), out, active, "", "")
    text = out.text()
    if not text.strip():
        return []
    if heading:
        return _split_lines(_wrap(text, "*"), ())
    return _split_lines(text, out.breaks)


# --- blocks ---------------------------------------------------------------------------------


def _prefixed(line: _Line, first: str, rest: str) -> _Line:
    text = first + line.text if line.text else first.rstrip()
    shift = len(text) - len(line.text)
    return _Line(text, line.role, tuple(b + shift for b in line.breaks), rest + line.cont)


def _close_of(toks: Sequence[Token], i: int) -> int:
    if toks[i].nesting != 1:
        return i
    depth = 0
    for j in range(i, len(toks)):
        depth += toks[j].nesting
        if depth == 0:
            return j
    return len(toks) - 1


def _children(toks: Sequence[Token], start: int, stop: int, depth: int) -> list[list[_Unit]]:
    """The rendered blocks among toks[start:stop]."""
    out: list[list[_Unit]] = []
    i = start
    while i < stop:
        j = _close_of(toks, i)
        units = _block(toks, i, j, depth)
        if units:
            out.append(units)
        i = j + 1
    return out


def _code_units(content: str) -> list[_Unit]:
    body = content[:-1] if content.endswith("\n") else content
    if not body.strip():
        return []
    return [
        [_Line(FENCE, _FENCE)],
        *([_Line(_esc(line))] for line in body.split("\n")),
        [_Line(FENCE, _FENCE)],
    ]


def _width(text: str) -> int:
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Cf", "Mn", "Me"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _pad(text: str, width: int, align: str | None) -> str:
    room = max(0, width - _width(text))
    if align == "right":
        return " " * room + text
    if align == "center":
        return " " * (room // 2) + text + " " * (room - room // 2)
    return text + " " * room


def _table_units(toks: Sequence[Token]) -> list[_Unit]:
    table = md.table(md.Block(md.TABLE, "", tuple(toks)))
    grid = [
        [md.inline_plain(cell).replace("\n", " ") for cell in row]
        for row in (table.header, *table.rows)
    ]
    columns = max(len(row) for row in grid)
    if columns == 0:
        return []
    for row in grid:
        row.extend([""] * (columns - len(row)))
    aligns = [*table.aligns, *([None] * columns)][:columns]
    widths = [max(1, *(_width(row[c]) for row in grid)) for c in range(columns)]

    def line(row: list[str]) -> str:
        cells = (_pad(row[c], widths[c], aligns[c]) for c in range(columns))
        return _esc(" | ".join(cells).rstrip())

    rule = "-+-".join("-" * w for w in widths)
    return [
        [_Line(FENCE, _FENCE)],
        [_Line(line(grid[0]), _HEAD)],
        [_Line(rule, _HEAD)],
        *([_Line(line(row))] for row in grid[1:]),
        [_Line(FENCE, _FENCE)],
    ]


def _item(marker: str, lines: list[_Line]) -> _Unit:
    if not lines:
        return [_Line(marker)]
    if lines[0].role == _TEXT:
        head = [_prefixed(lines[0], marker + " ", INDENT)]
        rest = lines[1:]
    else:  # a code block or table first: the marker gets its own line
        head = [_Line(marker)]
        rest = lines
    return head + [_prefixed(line, INDENT, INDENT) for line in rest]


def _list_units(toks: Sequence[Token], i: int, j: int, depth: int) -> list[_Unit]:
    ordered = toks[i].type == "ordered_list_open"
    start = toks[i].attrGet("start")  # markdown-it leaves it unset for 1 (and 0 is falsy)
    number = int(start) if ordered and start is not None else 1
    units: list[_Unit] = []
    k = i + 1
    while k < j:
        end = _close_of(toks, k)
        if toks[k].type == "list_item_open":
            marker = f"{number}." if ordered else BULLETS[depth % len(BULLETS)]
            number += 1
            blocks = _children(toks, k + 1, end, depth + 1)
            units.append(_item(marker, [line for b in blocks for u in b for line in u]))
        k = end + 1
    return units


def _block(toks: Sequence[Token], i: int, j: int, depth: int) -> list[_Unit]:
    """toks[i..j] (one block, container tokens included) as units of lines."""
    token = toks[i]
    kind = token.type
    if kind in ("paragraph_open", "heading_open"):
        inline = toks[i + 1] if i + 1 < j else None
        if inline is None or inline.type != "inline":
            return []
        lines = _inline_lines(inline, heading=kind == "heading_open")
        return [lines] if lines else []
    if kind in ("fence", "code_block"):
        return _code_units(token.content)
    if kind == "table_open":
        return _table_units(toks[i : j + 1])
    if kind in ("bullet_list_open", "ordered_list_open"):
        return _list_units(toks, i, j, depth)
    if kind == "blockquote_open":
        return [
            [_prefixed(line, QUOTE, QUOTE) for line in unit]
            for block in _children(toks, i + 1, j, depth)
            for unit in block
        ]
    if kind == "hr":
        return [[_Line(HR_LINE)]]
    if kind == "inline":
        lines = _inline_lines(token)
        return [lines] if lines else []
    if token.nesting == 1:
        return [u for block in _children(toks, i + 1, j, depth) for u in block]
    if token.content.strip():  # html_block and anything else with content
        return [[_Line(_esc(line)) for line in token.content.rstrip("\n").split("\n")]]
    return []


def _top_blocks(markdown: str) -> list[list[_Unit]]:
    """The rendered top-level blocks of `markdown`, including the source lines no token
    covers (link reference definitions), so nothing is lost.

    Like `tokens.blocks`, but source lines are cut where markdown-it cuts them (`\\n`,
    `\\r\\n`, `\\r`); `str.splitlines` also cuts at \\x0b, \\x0c, \\x1c-\\x1e, \\x85, \\u2028
    and \\u2029, which shifts the line numbers and shows covered text twice.
    """
    toks = md.parser().parse(markdown)
    lines = markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[list[_Unit]] = []
    covered = 0

    def uncovered(stop: int) -> None:
        run: list[str] = []
        for line in [*lines[covered:stop], ""]:
            if line.strip():
                run.append(line)
            elif run:
                out.append([[_Line(_esc(text)) for text in run]])
                run = []

    i = 0
    while i < len(toks):
        j = _close_of(toks, i)
        token = toks[i]
        if token.map is not None:
            start, end = token.map
            uncovered(start)
            covered = max(covered, end)
            units = _block(toks, i, j, 0)
            if any(line.text.strip() for unit in units for line in unit):
                out.append(units)
        i = j + 1
    uncovered(len(lines))
    return out


def to_mrkdwn(markdown: str) -> str:
    """`markdown` as one Slack mrkdwn text (blocks separated by a blank line)."""
    texts = [
        "\n".join(line.text for unit in units for line in unit) for units in _top_blocks(markdown)
    ]
    return defuse("\n\n".join(texts))


# --- splitting ------------------------------------------------------------------------------


def _blocked(text: str, stop: int) -> bytearray:
    """For each cut position up to `stop`: 1 when cutting there would split a generated
    `<…>` link or an `&amp;`-style entity."""
    blocked = bytearray(stop + 1)
    at = len(text) - len(text.lstrip(" >"))  # quote prefixes are not link ends
    while True:
        at = text.find("<", at, stop)
        if at < 0:
            break
        end = text.find(">", at)
        end = len(text) if end < 0 else end + 1
        blocked[at + 1 : min(end, stop + 1)] = b"\x01" * (min(end, stop + 1) - at - 1)
        at = end
    at = 0
    while True:
        at = text.find("&", at, stop)
        if at < 0:
            break
        end = text.find(";", at, at + 6)
        if end > 0:
            blocked[at + 1 : min(end + 1, stop + 1)] = b"\x01" * (min(end + 1, stop + 1) - at - 1)
        at += 1
    return blocked


def _cut(text: str, breaks: Sequence[int], budget: int, low: int) -> tuple[int, int]:
    """Where to cut `text` (longer than `budget`): (end of the head, start of the tail)."""
    prefer = max(low, budget // 4)
    k = bisect.bisect_right(breaks, budget) - 1
    if k >= 0 and breaks[k] > prefer and text[breaks[k]] == " ":
        return breaks[k], breaks[k] + 1
    blocked = _blocked(text, budget)
    at = text.rfind(" ", prefer + 1, budget + 1)
    while at > prefer:
        if not blocked[at]:
            return at, at + 1
        at = text.rfind(" ", prefer + 1, at)
    at = budget
    while at > low and blocked[at]:
        at -= 1
    return (at, at) if at > low else (budget, budget)


def _chop(line: _Line, budget: int) -> list[_Line]:
    """`line` as pieces of at most `budget` characters (continuations keep the prefix)."""
    if len(line.text) <= budget:
        return [line]
    cont = line.cont if len(line.cont) < budget // 2 else ""
    pieces: list[_Line] = []
    text, breaks, low = line.text, list(line.breaks), 0
    while len(text) > budget:
        head_end, tail_start = _cut(text, breaks, budget, low)
        head = text[:head_end]
        pieces.append(_Line(head.rstrip(" ") if head.strip() else head))
        tail = text[tail_start:]
        shift = tail_start - len(cont)
        breaks = [b - shift for b in breaks if b >= tail_start]
        text, low = cont + tail, len(cont)
        if not tail:
            return pieces
    pieces.append(_Line(text, line.role if not pieces else _TEXT))
    return pieces


class _Packer:
    """Packs rendered lines greedily into texts of at most `limit` characters, closing an
    open code block at the end of a text and reopening it (table header included) in the
    next."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.texts: list[str] = []
        self.lines: list[str] = []
        self.size = 0  # sum of len(line) + 1
        self.open: str | None = None  # the opening fence line of an open code block
        self.open_at = 0
        self.head: list[str] = []
        self.body = 0  # non-header lines since the fence opened

    def fits(self, new: Sequence[_Line]) -> bool:
        size, fence = self.size, self.open
        for line in new:
            size += len(line.text) + 1
            if line.role == _FENCE:
                fence = line.text if fence is None else None
        return size - 1 + (len(fence) + 1 if fence is not None else 0) <= self.limit

    def add(self, new: Sequence[_Line]) -> None:
        for line in new:
            self.lines.append(line.text)
            self.size += len(line.text) + 1
            if line.role == _FENCE:
                if self.open is None:
                    self.open, self.open_at, self.head, self.body = (
                        line.text,
                        len(self.lines) - 1,
                        [],
                        0,
                    )
                else:
                    self.open = None
            elif self.open is not None:
                if line.role == _HEAD and self.body == 0 and self._head_fits(line.text):
                    self.head.append(line.text)
                else:  # content, or a header too long to repeat
                    self.body += 1

    def _head_fits(self, text: str) -> bool:
        return sum(len(h) + 1 for h in (*self.head, text)) <= self.limit // 4

    def _carry(self) -> list[_Line]:
        if self.open is None:
            return []
        return [_Line(self.open, _FENCE), *(_Line(h, _HEAD) for h in self.head)]

    def budget(self) -> int:
        """The longest line that fits in a text that starts where the next one would."""
        carry = self._carry()
        closing = len(self.open) + 1 if self.open is not None else 0
        return self.limit - sum(len(line.text) + 1 for line in carry) - closing

    def flush(self) -> None:
        carry: list[_Line] = []
        if self.open is not None:
            if self.body == 0:  # nothing in the block yet: move its start to the next text
                carry = [_Line(self.lines[self.open_at], _FENCE)]
                carry += [_Line(h, _HEAD) for h in self.lines[self.open_at + 1 :]]
                del self.lines[self.open_at :]
            else:
                carry = self._carry()
                self.lines.append(self.open)
        text = "\n".join(self.lines).strip("\n")
        if text.strip():
            self.texts.append(text)
        self.lines, self.size, self.open, self.head, self.body = [], 0, None, [], 0
        self.add(carry)

    def block(self, units: Sequence[_Unit]) -> None:
        lines = [line for unit in units for line in unit]
        with_sep = [_Line(""), *lines] if self.lines else lines
        if self.fits(with_sep):
            self.add(with_sep)
            return
        self.flush()
        if self.fits(lines):
            self.add(lines)
            return
        for unit in units:
            if self.fits(unit):
                self.add(unit)
                continue
            self.flush()
            if self.fits(unit):
                self.add(unit)
                continue
            for line in unit:
                for piece in _chop(line, self.budget()):
                    if not self.fits([piece]):
                        self.flush()
                    self.add([piece])

    def finish(self) -> list[str]:
        self.flush()
        self.open = None
        self.lines = []
        return self.texts


def _hard_cut(text: str, at: int) -> int:
    blocked = _blocked(text, at)
    cut = at
    while cut > 1 and blocked[cut]:
        cut -= 1
    return cut if cut > 1 else at


def _within(texts: list[str], limit: int) -> list[str]:
    """Each text defused once more (a cut can leave `@here` at a text's edge) and, in that
    rare case, cut again if the defusing made it too long."""
    out: list[str] = []
    pending = list(reversed(texts))
    while pending:
        text = defuse(pending.pop())
        if len(text) <= limit:
            if text.strip():
                out.append(text)
            continue
        at = _hard_cut(text, limit - 8)
        pending += [text[at:], text[:at]]
    return out


def render_mrkdwn(markdown: str, *, limit: int = MAX_TEXT_FALLBACK_CHARS) -> list[SlackMessage]:
    """`markdown` as text-only mrkdwn messages, each `text` at most `limit` characters
    (`limit` ≥ MIN_LIMIT), split at top-level block boundaries where possible. Empty or
    whitespace-only input gives no message."""
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT}, got {limit}")
    packer = _Packer(limit)
    for units in _top_blocks(markdown):
        packer.block(units)
    return [SlackMessage(text=text) for text in _within(packer.finish(), limit)]
