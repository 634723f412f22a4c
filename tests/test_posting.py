"""Tests for ark.posting: answers posted in order as Block Kit, a rejected payload falling
back to mrkdwn exactly once, the empty-answer notice, and the agent's files."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from ark.bedrock.response import AgentResponse
from ark.bedrock.types import OutputFile
from ark.errors import SlackApiError
from ark.log import configure_logging
from ark.posting import (
    EMPTY_ANSWER_NOTICE,
    MAX_OUTPUT_FILE_BYTES,
    ReplyTarget,
    SlackPoster,
    render_answer,
)
from ark.slack.render.mrkdwn import render_mrkdwn
from ark.slack.render.plain import escape

TARGET = ReplyTarget("C1", "1700000000.000100")
LONG = "\n\n".join(f"Section {i}. " + "lorem ipsum dolor " * 120 for i in range(12))


@dataclass
class Post:
    channel: str
    text: str
    thread_ts: str | None
    blocks: list[dict[str, Any]] | None


@dataclass
class FakeWeb:
    """Records chat.postMessage and file uploads; fails the calls it is told to."""

    posts: list[Post] = field(default_factory=list)
    uploads: list[tuple[str, str | None, str, bytes]] = field(default_factory=list)
    post_errors: dict[int, str] = field(default_factory=dict)  # call index → error code
    upload_errors: dict[str, str] = field(default_factory=dict)  # filename → error code
    attempts: int = 0

    async def post_message(
        self,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        index = self.attempts
        self.attempts += 1
        self.posts.append(Post(channel, text, thread_ts, blocks))
        if index in self.post_errors:
            raise SlackApiError("chat.postMessage", self.post_errors[index])
        return {"ok": True, "ts": f"17.{index}"}

    async def upload_file(
        self, *, channel: str, thread_ts: str | None, filename: str, data: bytes
    ) -> None:
        if filename in self.upload_errors:
            raise SlackApiError("files.completeUploadExternal", self.upload_errors[filename])
        self.uploads.append((channel, thread_ts, filename, data))


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[str]]]:
    """Ark's log lines, as written, while the test runs."""
    root = logging.getLogger("ark")
    saved = (list(root.handlers), root.level, root.propagate)
    stream = io.StringIO()
    configure_logging("info", "text", stream=stream)
    yield lambda: [line for line in stream.getvalue().splitlines() if line]
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    root.propagate = saved[2]


def _poster(web: FakeWeb, **kwargs: Any) -> SlackPoster:
    return SlackPoster(web, **kwargs)  # type: ignore[arg-type]


def _event(lines: list[str], event: str) -> list[str]:
    return [line for line in lines if re.search(rf"\bevent={event}\b", line)]


async def test_parts_are_posted_in_order_as_blocks_in_the_thread() -> None:
    web = FakeWeb()
    response = AgentResponse(LONG)
    parts = render_answer(response)
    assert len(parts) >= 2
    assert await _poster(web).post_answer(TARGET, response) == len(parts)
    assert [(p.channel, p.thread_ts) for p in web.posts] == [
        (TARGET.channel, TARGET.thread_ts)
    ] * len(parts)
    assert [p.blocks for p in web.posts] == [
        [dict(b) for b in part.message.blocks] for part in parts
    ]
    assert [p.text for p in web.posts] == [part.message.text for part in parts]


async def test_an_error_that_is_not_a_rejection_is_raised_without_fallback() -> None:
    web = FakeWeb(post_errors={0: "channel_not_found"})
    with pytest.raises(SlackApiError) as raised:
        await _poster(web).post_answer(TARGET, AgentResponse("Hello **there**."))
    assert raised.value.code == "channel_not_found"
    assert len(web.posts) == 1  # no mrkdwn retry
    assert web.posts[0].blocks


async def test_a_rejected_part_is_logged_and_the_rest_falls_back_to_mrkdwn_once(
    log_lines: Callable[[], list[str]],
) -> None:
    response = AgentResponse(LONG)
    parts = render_answer(response)
    assert len(parts) >= 3
    web = FakeWeb(post_errors={1: "invalid_blocks"})  # part 2 is refused
    posted = await _poster(web).post_answer(TARGET, response)

    first, rejected, *fallback = web.posts
    assert first.blocks == [dict(b) for b in parts[0].message.blocks]
    assert rejected.blocks == [dict(b) for b in parts[1].message.blocks]
    assert fallback and all(p.blocks is None for p in fallback)  # text only, from then on
    assert all(p.thread_ts == TARGET.thread_ts for p in fallback)
    assert posted == 1 + len(fallback)
    # the fallback holds parts 2 onwards, once each, and not part 1 again
    expected = render_mrkdwn("\n\n".join(part.markdown for part in parts[1:]))
    assert [p.text for p in fallback] == [m.text for m in expected]
    shown = "".join(p.text for p in fallback)
    for i in range(12):
        assert shown.count(f"Section {i}.") == (f"Section {i}." not in parts[0].markdown)
    assert "Section 0." in parts[0].markdown and "Section 11." not in parts[0].markdown

    (line,) = _event(log_lines(), "blocks_rejected")
    assert "level=warn " in line
    assert re.search(r"\berror=invalid_blocks\b", line)
    assert re.search(r"\bpart=2\b", line)
    assert re.search(rf"\bparts={len(parts)}\b", line)
    assert re.search(r"\baction=fallback_mrkdwn\b", line)


async def test_a_rejection_of_the_first_part_sends_everything_as_text() -> None:
    web = FakeWeb(post_errors={0: "msg_blocks_too_long"})
    response = AgentResponse("| a | b |\n|---|---|\n| 1 | 2 |\n\nAfter **the** table.")
    await _poster(web).post_answer(TARGET, response)
    rejected, *fallback = web.posts
    assert rejected.blocks
    assert [p.text for p in fallback] == ["```\na | b\n--+--\n1 | 2\n```\n\nAfter *the* table."]
    assert fallback[0].blocks is None


async def test_an_empty_answer_posts_the_notice() -> None:
    web = FakeWeb()
    assert await _poster(web).post_answer(TARGET, AgentResponse("  \n ")) == 1
    (notice,) = web.posts
    assert notice.text == escape(EMPTY_ANSWER_NOTICE)
    assert notice.blocks is None
    assert notice.thread_ts == TARGET.thread_ts


async def test_an_empty_answer_with_files_posts_only_the_files() -> None:
    web = FakeWeb()
    response = AgentResponse("", files=(OutputFile("chart.png", "image/png", b"png"),))
    assert await _poster(web).post_answer(TARGET, response) == 0
    assert web.posts == []
    assert web.uploads == [(TARGET.channel, TARGET.thread_ts, "chart.png", b"png")]


async def test_empty_and_oversized_files_are_skipped_and_logged(
    log_lines: Callable[[], list[str]],
) -> None:
    assert MAX_OUTPUT_FILE_BYTES == 50 * 1024 * 1024
    files = (
        OutputFile("empty.csv", "text/csv", b""),
        OutputFile("huge.bin", "application/octet-stream", b"\0" * (MAX_OUTPUT_FILE_BYTES + 1)),
        OutputFile("limit.bin", "application/octet-stream", b"\1" * MAX_OUTPUT_FILE_BYTES),
        OutputFile("ok.csv", "text/csv", b"a,b\n1,2\n"),
    )
    web = FakeWeb()
    await _poster(web).post_answer(TARGET, AgentResponse("Here.", files=files))
    assert [u[2] for u in web.uploads] == ["limit.bin", "ok.csv"]
    skipped = _event(log_lines(), "agent_file_skipped")
    assert len(skipped) == 2
    assert "name=empty.csv" in skipped[0] and "bytes=0" in skipped[0]
    assert "name=huge.bin" in skipped[1] and f"bytes={MAX_OUTPUT_FILE_BYTES + 1}" in skipped[1]


async def test_a_failed_upload_is_logged_and_the_next_file_still_goes(
    log_lines: Callable[[], list[str]],
) -> None:
    files = (
        OutputFile("bad.csv", "text/csv", b"x"),
        OutputFile("good.csv", "text/csv", b"y"),
    )
    web = FakeWeb(upload_errors={"bad.csv": "not_allowed_token_type"})
    assert await _poster(web).post_answer(TARGET, AgentResponse("Files:", files=files)) == 1
    assert [u[2] for u in web.uploads] == ["good.csv"]
    (line,) = _event(log_lines(), "agent_file_upload_failed")
    assert "name=bad.csv" in line
    assert re.search(r"\berror=not_allowed_token_type\b", line)


async def test_a_custom_file_limit_is_honoured() -> None:
    web = FakeWeb()
    files = (OutputFile("a.txt", "text/plain", b"12345"), OutputFile("b.txt", "text/plain", b"123"))
    await _poster(web, max_file_bytes=4).post_answer(TARGET, AgentResponse("x", files=files))
    assert [u[2] for u in web.uploads] == ["b.txt"]


async def test_post_notice_escapes_the_text() -> None:
    web = FakeWeb()
    await _poster(web).post_notice(TARGET, "Busy <!here> & more")
    (post,) = web.posts
    assert post.text == "Busy &lt;!here&gt; &amp; more"
    assert post.blocks is None
