"""Routing: from a Slack event to a decision (answer it? where? in which session?).

Pure functions over plain data. `route` returns a `Message` to answer or an `Ignored`
with the reason, so every decision is visible in a debug log and trivially unit-tested.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

DM_REPLIES_THREAD = "thread"
DM_REPLIES_FLAT = "flat"
_ALLOWED_MESSAGE_SUBTYPES = frozenset({None, "file_share"})

HistorySource = Literal["replies", "history"]


@dataclass(frozen=True, slots=True)
class Message:
    """A user message Ark will answer, with everything needed to place the answer."""

    kind: Literal["dm", "mention"]
    channel: str
    user: str
    text: str
    ts: str
    event_id: str | None
    files: tuple[Mapping[str, Any], ...]
    reply_thread_ts: str | None  # where answers go; None = flat in the channel
    session_key: str  # per-session ordering and staleness key
    session_id: str  # the Bedrock sessionId
    history: HistorySource | None  # where context lives when the session is stale
    history_ts: str | None  # the thread ts for conversations.replies

    @property
    def new_thread(self) -> bool:
        """A brand-new thread has no earlier context to restore."""
        return self.history is None


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str


def session_id_for_ts(ts: str) -> str:
    """Bedrock session id for a Slack thread: its ts with '.' replaced by '-'."""
    return ts.replace(".", "-")


def session_id_for_dm(channel: str) -> str:
    return f"dm-{channel}"


def strip_bot_mention(text: str, bot_user_id: str) -> str:
    """Remove the bot's own mention(s) (`<@UBOT>` or `<@UBOT|name>`) and tidy spaces."""
    if not bot_user_id:
        return text.strip()
    pattern = re.compile(r"<@" + re.escape(bot_user_id) + r"(?:\|[^>]*)?>")
    return re.sub(r"[ \t]{2,}", " ", pattern.sub("", text)).strip()


def _str(event: Mapping[str, Any], key: str) -> str | None:
    value = event.get(key)
    return value if isinstance(value, str) and value else None


def _files(event: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    files = event.get("files")
    if not isinstance(files, list):
        return ()
    return tuple(f for f in files if isinstance(f, Mapping))


def route(
    payload: Mapping[str, Any],
    *,
    bot_user_id: str,
    dm_replies: str = DM_REPLIES_THREAD,
) -> Message | Ignored:
    """Decide what to do with an events_api payload (`{"event_id":…, "event":{…}}`)."""
    event = payload.get("event")
    if not isinstance(event, Mapping):
        return Ignored("no_event")
    event_type = event.get("type")
    if event_type not in ("message", "app_mention"):
        return Ignored(f"event_type:{event_type}")

    if "edited" in event:
        return Ignored("edited")
    subtype = event.get("subtype")
    if subtype not in _ALLOWED_MESSAGE_SUBTYPES:
        return Ignored(f"subtype:{subtype}")
    user = _str(event, "user")
    if event.get("bot_id") or event.get("bot_profile"):
        return Ignored("bot_message")
    if user is None:
        return Ignored("no_user")
    if user == bot_user_id:
        return Ignored("own_message")
    channel = _str(event, "channel")
    ts = _str(event, "ts")
    if channel is None or ts is None:
        return Ignored("missing_fields")

    raw_text = event.get("text")
    text = raw_text if isinstance(raw_text, str) else ""
    files = _files(event)
    thread_ts = _str(event, "thread_ts")
    in_thread = thread_ts is not None and thread_ts != ts
    event_id = _str(payload, "event_id")
    is_im = event.get("channel_type") == "im" or channel.startswith("D")

    if event_type == "message":
        if event.get("channel_type") != "im":
            return Ignored("not_dm")
        text = text.strip()
        if not text and not files:
            return Ignored("empty")
        if in_thread:
            assert thread_ts is not None
            return Message(
                "dm", channel, user, text, ts, event_id, files,
                reply_thread_ts=thread_ts,
                session_key=thread_ts,
                session_id=session_id_for_ts(thread_ts),
                history="replies",
                history_ts=thread_ts,
            )  # fmt: skip
        if dm_replies == DM_REPLIES_FLAT:
            return Message(
                "dm", channel, user, text, ts, event_id, files,
                reply_thread_ts=None,
                session_key=f"dm:{channel}",
                session_id=session_id_for_dm(channel),
                history="history",
                history_ts=None,
            )  # fmt: skip
        return Message(
            "dm", channel, user, text, ts, event_id, files,
            reply_thread_ts=ts,
            session_key=ts,
            session_id=session_id_for_ts(ts),
            history=None,
            history_ts=None,
        )  # fmt: skip

    # app_mention
    if is_im:
        return Ignored("mention_in_dm")  # the message.im event for it is answered
    text = strip_bot_mention(text, bot_user_id)
    if not text and not files:
        return Ignored("empty")
    root = thread_ts if in_thread else ts
    assert root is not None
    return Message(
        "mention", channel, user, text, ts, event_id, files,
        reply_thread_ts=root,
        session_key=root,
        session_id=session_id_for_ts(root),
        history="replies" if in_thread else None,
        history_ts=root if in_thread else None,
    )  # fmt: skip
