"""The posting path: how an answer reaches Slack. One replaceable piece.

The gateway only ever calls a `Poster`. Today's `SlackPoster` posts the finished answer as
Block Kit messages (`markdown` blocks, a native `table` block) rendered from the agent's
markdown, falls back once to mrkdwn text when Slack rejects a payload, and uploads the
agent's files; a streaming poster (chat.startStream / appendStream) slots in behind the
same Protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ark.bedrock.response import AgentResponse
from ark.errors import SlackApiError
from ark.log import get_logger
from ark.slack.render.citations import compose_answer
from ark.slack.render.markdown import render_markdown
from ark.slack.render.model import Part, SlackMessage
from ark.slack.render.mrkdwn import render_mrkdwn
from ark.slack.render.plain import escape

if TYPE_CHECKING:
    from ark.slack.web import SlackWeb

MAX_OUTPUT_FILE_BYTES = 50 * 1024 * 1024  # Slack files we upload on the agent's behalf
EMPTY_ANSWER_NOTICE = "(The agent returned an empty answer.)"
# chat.postMessage errors that mean "this payload's blocks", not "this channel or token":
# the same content is re-sent as mrkdwn text, which Slack always accepts
BLOCK_REJECTION_CODES = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_attachments",
        "msg_blocks_too_long",
        "msg_too_long",
        "only_one_table_allowed",
        "too_many_attachments",
        "invalid_arguments",
    }
)

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


def render_answer(response: AgentResponse) -> list[Part]:
    """The answer (footnotes and Sources list included) as primary Block Kit messages."""
    return render_markdown(compose_answer(response.text, response.citations, response.sources))


class SlackPoster:
    """Posts answers as Block Kit messages in order, falling back to mrkdwn text once if
    Slack rejects a payload, then uploads the agent's files."""

    def __init__(self, web: SlackWeb, *, max_file_bytes: int = MAX_OUTPUT_FILE_BYTES) -> None:
        self._web = web
        self._max_file_bytes = max_file_bytes

    async def post_answer(self, target: ReplyTarget, response: AgentResponse) -> int:
        parts = render_answer(response)
        posted = 0
        if not parts and not response.files:
            await self.post_notice(target, EMPTY_ANSWER_NOTICE)
            posted = 1
        for index, part in enumerate(parts):
            try:
                await self._post(target, part.message)
            except SlackApiError as exc:
                if exc.code not in BLOCK_REJECTION_CODES:
                    raise
                log.warning(
                    "blocks_rejected",
                    error=exc.code,
                    part=index + 1,
                    parts=len(parts),
                    action="fallback_mrkdwn",
                )
                rest = "\n\n".join(p.markdown for p in parts[index:])
                for message in render_mrkdwn(rest):
                    await self._post(target, message)
                    posted += 1
                break
            posted += 1
        await self._upload_files(target, response)
        return posted

    async def _post(self, target: ReplyTarget, message: SlackMessage) -> None:
        await self._web.post_message(
            target.channel,
            message.text,
            thread_ts=target.thread_ts,
            blocks=[dict(block) for block in message.blocks] or None,
        )

    async def _upload_files(self, target: ReplyTarget, response: AgentResponse) -> None:
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

    async def post_notice(self, target: ReplyTarget, text: str) -> None:
        await self._web.post_message(target.channel, escape(text), thread_ts=target.thread_ts)
