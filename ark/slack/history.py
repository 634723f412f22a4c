"""Slack conversation history as the context block sent to a stale agent session (pure).

When a session is stale the agent has forgotten the thread, so the thread's earlier messages
go in front of the user's text, in the reference's exact format:

    [Previous conversation context]
    [... 3 earlier messages omitted]
    User (U123): what is our refund policy?
    Assistant: Refunds are possible within 30 days.
    [End of previous context]

Nothing here raises or does I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ark.errors import BUSY_REPLY, ERROR_REPLY

CONTEXT_BUDGET_CHARS = 12_000
MAX_MESSAGE_CHARS = 2_000
HISTORY_LIMIT = 200  # messages fetched with conversations.replies / history
CONTEXT_HEADER = "[Previous conversation context]"
CONTEXT_FOOTER = "[End of previous context]"
TRUNCATION_MARK = "..."
KEPT_SUBTYPES = frozenset({"file_share"})
# Our own replies may carry this legacy subtype; they are the assistant's side and stay.
OWN_BOT_SUBTYPE = "bot_message"


def ts_key(ts: object) -> tuple[int, int] | None:
    """A Slack ts ("1700000000.000100") as a number pair that orders correctly, or None."""
    if not isinstance(ts, str):
        return None
    seconds, _, fraction = ts.partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        return None
    return int(seconds), int(fraction.ljust(6, "0")[:6]) if fraction else 0


def _is_own(message: Mapping[str, Any], bot_user_id: str, bot_id: str | None) -> bool:
    if message.get("user") == bot_user_id:
        return True
    return bool(bot_id) and message.get("bot_id") == bot_id


def _line(
    message: Mapping[str, Any],
    *,
    bot_user_id: str,
    bot_id: str | None,
    drop_texts: Collection[str],
    max_message_chars: int,
) -> str | None:
    """The context line for one message, or None when the message is left out."""
    text = message.get("text")
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text or text in drop_texts:
        return None
    own = _is_own(message, bot_user_id, bot_id)
    subtype = message.get("subtype")
    if subtype and subtype not in KEPT_SUBTYPES and not (own and subtype == OWN_BOT_SUBTYPE):
        return None
    if len(text) > max_message_chars:
        text = text[:max_message_chars] + TRUNCATION_MARK
    if own:
        return f"Assistant: {text}"
    author = message.get("user") or message.get("bot_id") or "unknown"
    return f"User ({author}): {text}"


def format_context(
    messages: Sequence[Mapping[str, Any]],
    *,
    bot_user_id: str,
    bot_id: str | None = None,
    current_ts: str | None = None,
    drop_texts: Collection[str] = (ERROR_REPLY, BUSY_REPLY),
    budget_chars: int = CONTEXT_BUDGET_CHARS,
    max_message_chars: int = MAX_MESSAGE_CHARS,
) -> str | None:
    """The context block for `messages` (oldest first), or None when nothing is left.

    Left out: the current message and every message newer than it (by ts; the last
    message when `current_ts` is None), messages with a subtype other than file_share,
    empty texts and texts exactly in `drop_texts`. A text over `max_message_chars` is cut and `...`
    appended. Lines are kept newest first while the sum of (line length + 1) stays within
    `budget_chars`; the older rest is counted in an `[... N earlier messages omitted]` line."""
    if current_ts is None:
        candidates = messages[:-1]
    else:
        # Only what came before the current message: a reply that landed while this one
        # waited is its own turn, answered after this one, not part of this one's past.
        current = ts_key(current_ts)
        candidates = [
            m
            for m in messages
            if m.get("ts") != current_ts
            and (current is None or (key := ts_key(m.get("ts"))) is None or key < current)
        ]
    drop = {t.strip() for t in drop_texts}
    lines = [
        line
        for message in candidates
        if (
            line := _line(
                message,
                bot_user_id=bot_user_id,
                bot_id=bot_id,
                drop_texts=drop,
                max_message_chars=max_message_chars,
            )
        )
        is not None
    ]

    kept: list[str] = []
    used_chars = 0
    for line in reversed(lines):
        cost = len(line) + 1
        if used_chars + cost > budget_chars:
            break
        used_chars += cost
        kept.append(line)
    if not kept:
        return None
    kept.reverse()

    omitted = len(lines) - len(kept)
    parts = [CONTEXT_HEADER]
    if omitted > 0:
        parts.append(f"[... {omitted} earlier messages omitted]")
    parts.extend(kept)
    parts.append(CONTEXT_FOOTER)
    return "\n".join(parts)


def with_context(context: str | None, text: str) -> str:
    """The user's text with the context block in front, separated by a blank line."""
    return f"{context}\n\n{text}" if context else text
