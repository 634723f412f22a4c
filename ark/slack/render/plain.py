"""Plain-text rendering: the answer as escaped text, split under Slack's limits.

Slack parses `text` as mrkdwn, where `<!channel>`, `<@U…>` and `<url|label>` are live.
Escaping `&`, `<` and `>` as Slack requires makes all of them inert, so nothing the agent
writes can ping anyone.
"""

from __future__ import annotations

from collections.abc import Sequence

from ark.bedrock.types import Source

MAX_TEXT_CHARS = 4_000  # Slack's advice for chat.postMessage `text`
SOURCES_HEADING = "*Sources:*"


def escape(text: str) -> str:
    """Escape text for Slack's mrkdwn (`&` first, then the angle brackets)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sources_block(sources: Sequence[Source]) -> str:
    lines = [SOURCES_HEADING]
    for source in sources:
        name = escape(source.name)
        url = source.url or ""
        if url.startswith(("https://", "http://")) and not any(c in url for c in "|<> "):
            lines.append(f"• <{escape(url)}|{name}>")
        else:
            lines.append(f"• {name}")
    return "\n".join(lines)


def _cut_at(text: str, limit: int) -> int:
    """Where to cut `text` so the first part is at most `limit` characters: at the last
    blank line, else the last newline, else the last space, else hard; never inside an
    `&amp;`-style entity."""
    window = text[:limit]
    for sep in ("\n\n", "\n", " "):
        at = window.rfind(sep)
        if at > limit // 4:
            return at
    at = limit
    amp = window.rfind("&", max(0, limit - 5))
    if amp >= 0 and ";" not in window[amp:]:
        at = amp
    return max(at, 1)


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Split into parts of at most `limit` characters, preferring paragraph breaks."""
    parts: list[str] = []
    rest = text.strip("\n")
    while len(rest) > limit:
        at = _cut_at(rest, limit)
        head = rest[:at].rstrip()
        if head:
            parts.append(head)
        rest = rest[at:].lstrip("\n ")
    if rest.strip():
        parts.append(rest)
    return parts


def render_plain(text: str, sources: Sequence[Source] = ()) -> list[str]:
    """The answer and its Sources list as escaped mrkdwn texts, each within the limit."""
    body = escape(text.strip())
    if sources:
        body = f"{body}\n\n{sources_block(sources)}" if body else sources_block(sources)
    return split_text(body)
