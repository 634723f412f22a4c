"""What the renderer produces: Slack message payloads, and the limits they respect."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Slack's limits (docs.slack.dev; see shared facts). Units are characters.
MAX_TEXT_FALLBACK_CHARS = 4_000  # chat.postMessage `text`: Slack's advice
MAX_MESSAGE_TEXT_CHARS = 40_000  # `text` is truncated past this
MAX_MARKDOWN_CHARS = 12_000  # across all `markdown` blocks of one message
MAX_SECTION_CHARS = 3_000  # section block text
MAX_BLOCKS = 50  # blocks per message
MAX_TABLE_ROWS = 100  # table block rows (header included)
MAX_TABLE_COLUMNS = 20  # table block cells per row
MAX_TABLES_PER_MESSAGE = 1  # more is `only_one_table_allowed`


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One chat.postMessage payload: `text` always (notifications, old clients, and the
    whole message when `blocks` is empty, as mrkdwn), `blocks` when rendered as Block Kit."""

    text: str
    blocks: tuple[Mapping[str, Any], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Part:
    """One primary message of an answer and the standard markdown it shows, so the
    fallback can re-render exactly the content of this part and those after it."""

    markdown: str
    message: SlackMessage
