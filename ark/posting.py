"""The posting path: how an answer reaches Slack. One replaceable piece.

The gateway only ever calls a `Poster`. Today's `SlackPoster` posts the finished answer as
plain text parts and uploads the agent's files; a streaming poster (chat.startStream /
appendStream) or a Block Kit renderer slots in behind the same Protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ark.bedrock.response import AgentResponse
from ark.errors import SlackApiError
from ark.log import get_logger
from ark.slack.render.plain import escape, render_plain

if TYPE_CHECKING:
    from ark.slack.web import SlackWeb

MAX_OUTPUT_FILE_BYTES = 50 * 1024 * 1024  # Slack files we upload on the agent's behalf

log = get_logger("ark.posting")


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """Where replies to one message go: a channel, and a thread or None for flat."""

    channel: str
    thread_ts: str | None


class Poster(Protocol):
    async def post_answer(self, target: ReplyTarget, response: AgentResponse) -> int:
        """Post the whole answer; returns how many messages were posted."""
        ...

    async def post_notice(self, target: ReplyTarget, text: str) -> None:
        """Post a short notice Ark itself writes (busy, error, files left out)."""
        ...


class SlackPoster:
    """Posts answers as escaped plain-text messages, in order, then uploads files."""

    def __init__(self, web: SlackWeb, *, max_file_bytes: int = MAX_OUTPUT_FILE_BYTES) -> None:
        self._web = web
        self._max_file_bytes = max_file_bytes

    async def post_answer(self, target: ReplyTarget, response: AgentResponse) -> int:
        parts = render_plain(response.text, response.sources)
        if not parts and not response.files:
            parts = ["(The agent returned an empty answer.)"]
        for part in parts:
            await self._web.post_message(target.channel, part, thread_ts=target.thread_ts)
        for file in response.files:
            size = len(file.data)
            if size == 0 or size > self._max_file_bytes:
                log.warning("agent_file_skipped", name=file.name, bytes=size)
                continue
            try:
                await self._web.upload_file(
                    channel=target.channel,
                    thread_ts=target.thread_ts,
                    filename=file.name,
                    data=file.data,
                )
            except SlackApiError as exc:
                log.warning("agent_file_upload_failed", name=file.name, error=exc.code)
        return len(parts)

    async def post_notice(self, target: ReplyTarget, text: str) -> None:
        await self._web.post_message(target.channel, escape(text), thread_ts=target.thread_ts)
