"""End to end: the real gateway against a loopback Slack (WebSocket + Web API) and a loopback
Bedrock Agent Runtime (binary event-stream) reached through the real aiobotocore client."""

from __future__ import annotations

import asyncio
import base64
import logging

import orjson
import pytest

from ark.app import FatalError
from ark.errors import BUSY_REPLY, ERROR_REPLY, UNSUPPORTED_FILE_REPLY
from tests.e2e_harness import running_ark
from tests.fakes.bedrock import Chunk, Delay, Files, HttpError, StreamError, Trace
from tests.fakes.slack import FakeSlack
from tests.logcapture import captured_records


def _posts_in(slack: FakeSlack, thread_ts: str | None) -> list[str]:
    return [c.params["text"] for c in slack.posts if c.params.get("thread_ts") == thread_ts]


async def test_dm_is_answered_in_its_own_thread(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch):
        event = slack.dm_event("hello there")
        await slack.send_event(event)
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["channel"] == "D1"
        assert post.params["thread_ts"] == event["ts"]
        assert post.params["text"] == "You said: hello there"
        (inv,) = bedrock.invocations
        assert inv.session_id == event["ts"].replace(".", "-")
        assert inv.body["inputText"] == "hello there"
        attrs = inv.body["sessionState"]["promptSessionAttributes"]
        assert attrs["user_name"] == "Ada Lovelace"
        assert attrs["user_timezone"] == "Europe/London"
        assert attrs["user_title"] == "Engineer"
        assert attrs["current_datetime"].endswith("+00:00")
        # :eyes: while answering, removed after; a brand-new thread fetches no history
        await slack.wait_for_call("reactions.remove")
        (react,) = slack.calls_to("reactions.add")
        assert react.params == {"channel": "D1", "timestamp": event["ts"], "name": "eyes"}
        assert slack.calls_to("conversations.replies") == []


async def test_channel_mention_is_stripped_and_threaded(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch):
        event = slack.mention_event("what is <@U2>'s role?")
        await slack.send_event(event)
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["channel"] == "C1"
        assert post.params["thread_ts"] == event["ts"]
        assert bedrock.invocations[0].body["inputText"] == "what is <@U2>'s role?"
        # the user's own mention is quoted back inert, never as a live mention
        assert "<@U2>" not in post.params["text"]


async def test_thread_continuity_uses_one_session_and_no_refetch(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch):
        first = slack.mention_event("first")
        await slack.send_event(first)
        await slack.wait_for_call("chat.postMessage")
        second = slack.mention_event("second", thread_ts=first["ts"])
        await slack.send_event(second)
        await slack.wait_for_call("chat.postMessage", count=2)
        sessions = {inv.session_id for inv in bedrock.invocations}
        assert sessions == {first["ts"].replace(".", "-")}
        assert bedrock.invocations[1].body["inputText"] == "second"
        assert slack.calls_to("conversations.replies") == []


async def test_unknown_thread_restores_context(slack, bedrock, monkeypatch):
    root_ts = "1700000000.000100"
    slack.set_thread(
        "C1",
        root_ts,
        [
            {"user": "U1", "text": "<@UBOT> what's our refund policy?", "ts": root_ts},
            {"user": "UBOT", "bot_id": "BBOT", "text": "30 days.", "ts": "1700000001.000100"},
            {"user": "U1", "text": ERROR_REPLY, "ts": "1700000002.000100", "bot_id": "BBOT"},
        ],
    )
    async with running_ark(slack, bedrock, monkeypatch):
        event = slack.mention_event("and for digital goods?", thread_ts=root_ts)
        await slack.send_event(event)
        await slack.wait_for_call("chat.postMessage")
        (replies,) = slack.calls_to("conversations.replies")
        assert replies.params["ts"] == root_ts
        text = bedrock.invocations[0].body["inputText"]
        assert text.startswith("[Previous conversation context]\n")
        assert "User (U1): <@UBOT> what's our refund policy?" in text
        assert "Assistant: 30 days." in text
        assert ERROR_REPLY not in text
        assert text.endswith("[End of previous context]\n\nand for digital goods?")
        assert bedrock.invocations[0].session_id == root_ts.replace(".", "-")


async def test_context_fetch_failure_still_answers(slack, bedrock, monkeypatch):
    slack.fail_next("conversations.replies", "missing_scope")
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.mention_event("hi", thread_ts="1700000000.000100"))
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["text"] == "You said: hi"


async def test_users_info_failure_still_answers(slack, bedrock, monkeypatch):
    slack.fail_next("users.info", "ratelimited")
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("hi"))
        await slack.wait_for_call("chat.postMessage")
        attrs = bedrock.invocations[0].body["sessionState"]["promptSessionAttributes"]
        assert set(attrs) == {"current_datetime"}


async def test_flat_dm_mode_continues_one_session_per_channel(slack, bedrock, monkeypatch):
    slack.set_history(
        "D1",
        [
            {"user": "U1", "text": "my name is Ada", "ts": "1700000000.000100"},
            {"user": "UBOT", "bot_id": "BBOT", "text": "Hi Ada", "ts": "1700000001.000100"},
        ],
    )
    async with running_ark(slack, bedrock, monkeypatch, DM_REPLIES="flat"):
        await slack.send_event(slack.dm_event("what is my name?"))
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert "thread_ts" not in post.params or post.params["thread_ts"] is None
        await slack.send_event(slack.dm_event("and again?"))
        await slack.wait_for_call("chat.postMessage", count=2)
        first, second = bedrock.invocations
        assert first.session_id == second.session_id == "dm-D1"
        assert "User (U1): my name is Ada" in first.body["inputText"]
        assert "Assistant: Hi Ada" in first.body["inputText"]
        assert second.body["inputText"] == "and again?"  # fresh session: no refetch
        assert len(slack.calls_to("conversations.history")) == 1


async def test_dm_thread_reply_in_flat_mode_stays_in_thread(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch, DM_REPLIES="flat"):
        await slack.send_event(slack.dm_event("in a thread", thread_ts="1700000000.000100"))
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["thread_ts"] == "1700000000.000100"
        assert bedrock.invocations[0].session_id == "1700000000-000100"


async def test_input_files_reach_the_agent(slack, bedrock, monkeypatch):
    csv = b"a,b\n1,2\n"
    async with running_ark(slack, bedrock, monkeypatch):
        files = [slack.file_object("data.csv", csv, mimetype="text/csv")]
        await slack.send_event(slack.dm_event("sum it", files=files))
        await slack.wait_for_call("chat.postMessage")
        (sent,) = bedrock.invocations[0].body["sessionState"]["files"]
        assert sent["name"] == "data.csv"
        assert sent["useCase"] == "CODE_INTERPRETER"
        content = sent["source"]["byteContent"]
        assert sent["source"]["sourceType"] == "BYTE_CONTENT"
        assert content["mediaType"] == "text/csv"
        assert base64.b64decode(content["data"]) == csv


async def test_unsupported_file_gets_one_reply_and_text_is_answered(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch):
        files = [
            slack.file_object("tool.exe", b"MZ...", mimetype="application/octet-stream"),
            slack.file_object("img.png", b"\x89PNG", mimetype="image/png"),
        ]
        await slack.send_event(slack.dm_event("what is this?", files=files))
        posts = await slack.wait_for_call("chat.postMessage", count=2)
        texts = [p.params["text"] for p in posts]
        assert texts.count(UNSUPPORTED_FILE_REPLY) == 1
        assert "You said: what is this?" in texts
        assert "files" not in bedrock.invocations[0].body.get("sessionState", {})


async def test_files_over_the_total_cap_are_named(slack, bedrock, monkeypatch):
    big = b"x" * (6 * 1024 * 1024)
    async with running_ark(slack, bedrock, monkeypatch):
        files = [
            slack.file_object("one.csv", big, mimetype="text/csv"),
            slack.file_object("two.csv", big, mimetype="text/csv"),
        ]
        await slack.send_event(slack.dm_event("compare", files=files))
        posts = await slack.wait_for_call("chat.postMessage", count=2)
        notice = next(p.params["text"] for p in posts if "left out" in p.params["text"])
        assert "two.csv" in notice and "one.csv" not in notice
        (sent,) = bedrock.invocations[0].body["sessionState"]["files"]
        assert sent["name"] == "one.csv"


async def test_citations_and_agent_files(slack, bedrock, monkeypatch):
    citation = {
        "generatedResponsePart": {
            "textResponsePart": {"text": "Refunds", "span": {"start": 0, "end": 6}}
        },
        "retrievedReferences": [
            {
                "content": {"text": "..."},
                "location": {"type": "S3", "s3Location": {"uri": "s3://kb/policies/refunds.pdf"}},
                "metadata": {"x-amz-bedrock-kb-document-page-number": 3.0},
            },
            {
                "location": {"type": "S3", "s3Location": {"uri": "s3://kb/policies/refunds.pdf"}},
                "metadata": {"x-amz-bedrock-kb-document-page-number": 3.0},
            },
        ],
    }
    bedrock.queue_script(
        [
            Chunk("Refunds take 30 days.", citations=[citation]),
            Files([{"name": "chart.png", "type": "image/png", "bytes": b"\x89PNG-data"}]),
            Files([{"name": "chart.png", "type": "image/png", "bytes": b"\x89PNG-data"}]),
        ]
    )
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("refunds?"))
        await slack.wait_for_call("files.completeUploadExternal")
        (post,) = slack.posts
        # the citation's span (0..6) gets a footnote; the source is listed once
        assert post.params["text"].startswith("Refunds[1] take 30 days.")
        assert post.params["text"].count("refunds.pdf, p. 3") == 1
        (markdown,) = post.json_field("blocks")
        assert markdown["text"].endswith("**Sources**\n\n1. refunds.pdf, p. 3")
        (upload,) = slack.uploads
        assert upload.filename == "chart.png"
        assert upload.data == b"\x89PNG-data"
        assert upload.thread_ts == post.params["thread_ts"]


async def test_long_answer_is_split_under_slack_limits(slack, bedrock, monkeypatch):
    paragraphs = [f"Paragraph {i}: " + "word " * 150 for i in range(40)]  # ~31,000 chars
    bedrock.queue_script([Chunk("\n\n".join(paragraphs))])
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("long please"))
        await bedrock.wait_for_invocations(1)
        await slack.wait_for_call("reactions.remove")
        posts = slack.posts
        assert len(posts) == 3  # 12,000 characters of markdown blocks per message
        assert all(len(p.params["text"]) <= 4000 for p in posts)  # the plain fallback
        shown = [b["text"] for p in posts for b in p.json_field("blocks")]
        assert all(len(text) <= 12_000 for text in shown)
        assert "\n\n".join(shown) == "\n\n".join(p.rstrip() for p in paragraphs)


async def test_busy_reply_beyond_the_queue(slack, bedrock, monkeypatch):
    bedrock.script = lambda inv: [Delay(0.6), Chunk("done")]
    async with running_ark(
        slack, bedrock, monkeypatch, MAX_CONCURRENT_REQUESTS="1", ARK_MAX_QUEUED_REQUESTS="1"
    ):
        events = [slack.mention_event(f"q{i}") for i in range(3)]
        for event in events:
            await slack.send_event(event)
        posts = await slack.wait_for_call("chat.postMessage", count=3)
        busy = [p for p in posts if p.params["text"] == BUSY_REPLY]
        assert len(busy) == 1
        assert busy[0].params["thread_ts"] == events[2]["ts"]
        assert len(bedrock.invocations) == 2
        assert bedrock.max_concurrent_streams == 1


async def test_one_invocation_at_a_time_per_session_in_order(slack, bedrock, monkeypatch):
    bedrock.script = lambda inv: [Delay(0.3), Chunk("re: " + inv.body["inputText"])]
    async with running_ark(slack, bedrock, monkeypatch):
        root = slack.mention_event("one")
        await slack.send_event(root)
        await slack.send_event(slack.mention_event("two", thread_ts=root["ts"]))
        await slack.send_event(slack.mention_event("three", thread_ts=root["ts"]))
        posts = await slack.wait_for_call("chat.postMessage", count=3)
        assert [p.params["text"] for p in posts] == ["re: one", "re: two", "re: three"]
        session = root["ts"].replace(".", "-")
        assert bedrock.max_concurrent_per_session[session] == 1


async def test_agent_failure_gets_the_apology(slack, bedrock, monkeypatch):
    bedrock.queue_script([HttpError(403, "AccessDeniedException", "not allowed")])
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("hi"))
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["text"] == ERROR_REPLY
        assert len(bedrock.invocations) == 1  # access denied is not retried


async def test_throttling_before_text_is_retried(slack, bedrock, monkeypatch):
    bedrock.queue_script([HttpError(429, "ThrottlingException", "slow down")])
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("hi"))
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["text"] == "You said: hi"
        assert len(bedrock.invocations) == 2


async def test_error_mid_stream_keeps_the_partial_answer(slack, bedrock, monkeypatch):
    bedrock.queue_script([Chunk("Half an answer"), StreamError("throttlingException", "x")])
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("hi"))
        posts = await slack.wait_for_call("chat.postMessage", count=2)
        assert posts[0].params["text"] == "Half an answer"
        assert "incomplete" in posts[1].params["text"]
        assert len(bedrock.invocations) == 1


async def test_slack_429_on_post_is_honoured(slack, bedrock, monkeypatch):
    slack.rate_limit_next("chat.postMessage", retry_after=1)
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("hi"))
        posts = await slack.wait_for_call("chat.postMessage", count=2)
        assert posts[1].at - posts[0].at >= 0.9
        assert slack.posts[-1].params["text"] == "You said: hi"


async def test_refresh_opens_replacement_before_closing(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_disconnect("refresh_requested")
        await slack.wait_until(lambda: slack.total_connections == 2 and slack.connections == 1)
        await slack.send_event(slack.dm_event("after refresh"))
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["text"] == "You said: after refresh"
        assert len(slack.calls_to("apps.connections.open")) == 2


async def test_abrupt_close_reconnects(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.drop_connection()
        await slack.wait_until(lambda: slack.total_connections == 2 and slack.connections == 1)
        await slack.send_event(slack.dm_event("still there?"))
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["text"] == "You said: still there?"


async def test_duplicate_delivery_is_answered_once(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch):
        event = slack.mention_event("once")
        await slack.send_event(event, event_id="Ev1")
        await slack.send_event(event, event_id="Ev1", retry_attempt=1)
        await slack.send_event(event, event_id="Ev2", retry_attempt=2)  # new id, same ts
        # a later message in the same thread is answered after anything accepted before it
        await slack.send_event(slack.mention_event("marker", thread_ts=event["ts"]))
        await slack.wait_for_call("chat.postMessage", count=2)
        assert [inv.body["inputText"] for inv in bedrock.invocations] == ["once", "marker"]
        assert len(slack.acks) == 4


async def test_a_redelivery_alone_is_answered(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("lost ack"), retry_attempt=1, retry_reason="timeout")
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["text"] == "You said: lost ack"


async def test_malformed_frames_are_skipped(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_raw("not json at all")
        await slack.send_raw("[1, 2, 3]")
        await slack.send_raw(orjson.dumps({"type": "mystery"}))
        await slack.send_raw(orjson.dumps({"type": "events_api", "envelope_id": "E-bad"}))
        await slack.send_event(slack.dm_event("fine"))
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["text"] == "You said: fine"
        assert "E-bad" in slack.acks
        assert slack.total_connections == 1


async def test_envelopes_are_acked_while_answers_hang(slack, bedrock, monkeypatch):
    bedrock.script = lambda inv: [Delay(5.0), Chunk("late")]
    async with running_ark(slack, bedrock, monkeypatch, ARK_SHUTDOWN_DEADLINE_S="0.5"):
        ids = [await slack.send_event(slack.mention_event(f"m{i}")) for i in range(5)]
        for envelope_id in ids:
            latency = await slack.wait_for_ack(envelope_id, timeout_s=2.0)
            assert latency < 1.0


async def test_analytics_record_goes_to_firehose(slack, bedrock, monkeypatch):
    trace = {
        "agentId": "AGENT12345",
        "trace": {
            "orchestrationTrace": {
                "invocationInput": {
                    "knowledgeBaseLookupInput": {"knowledgeBaseId": "KB1", "text": "refunds"}
                }
            }
        },
    }
    bedrock.queue_script([Trace(trace), Chunk("secret answer text")])
    async with running_ark(slack, bedrock, monkeypatch, FIREHOSE_STREAM_NAME="ark-analytics"):
        await slack.send_event(slack.dm_event("private question"))
        await slack.wait_for_call("chat.postMessage")
        await bedrock.wait_for_firehose_records(1)
        assert bedrock.invocations[0].body["enableTrace"] is True
        record = bedrock.firehose_records[0]
        assert record.endswith(b"\n")
        doc = orjson.loads(record)
        assert doc["user_id"] == "U1"
        assert doc["knowledge_bases"] == ["KB1"]
        assert doc["search_queries"] == ["refunds"]
        assert doc["message_length"] == len("private question")
        assert doc["response_length"] == len("secret answer text")
        assert b"private question" not in record and b"secret answer" not in record


async def test_link_disabled_is_fatal(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch) as ark:
        await slack.send_disconnect("link_disabled")
        with pytest.raises(FatalError, match="link_disabled"):
            async with asyncio.timeout(10):
                await ark.task


async def test_invalid_bot_token_is_fatal(slack, bedrock, monkeypatch):
    async with running_ark(
        slack, bedrock, monkeypatch, wait_connected=False, SLACK_BOT_TOKEN="xoxb-wrong"
    ) as ark:
        with pytest.raises(FatalError, match="invalid_auth"):
            async with asyncio.timeout(10):
                await ark.task
        assert slack.total_connections == 0


async def test_shutdown_drains_in_flight_answers(slack, bedrock, monkeypatch):
    bedrock.script = lambda inv: [Delay(0.5), Chunk("finished")]
    async with running_ark(slack, bedrock, monkeypatch) as ark:
        await slack.send_event(slack.dm_event("slow one"))
        await bedrock.wait_for_invocations(1)
        await ark.shutdown()
        assert [p.params["text"] for p in slack.posts] == ["finished"]


async def test_shutdown_deadline_tells_the_user(slack, bedrock, monkeypatch):
    bedrock.script = lambda inv: [Delay(30), Chunk("too late")]
    async with running_ark(slack, bedrock, monkeypatch, ARK_SHUTDOWN_DEADLINE_S="0.3") as ark:
        await slack.send_event(slack.dm_event("slow one"))
        await bedrock.wait_for_invocations(1)
        await ark.shutdown()
        (post,) = slack.posts
        assert "restarting" in post.params["text"]


async def test_shutdown_fits_in_one_deadline_even_when_slack_is_slow(slack, bedrock, monkeypatch):
    # The answer outlives the deadline and Slack sits on the restart notice: the whole
    # shutdown, from the stop signal to serve() returning, still ends at the deadline
    # (before, answers alone had the deadline and the notices came on top of it).
    deadline_s = 2.0
    bedrock.script = lambda inv: [Delay(30), Chunk("too late")]
    async with running_ark(
        slack, bedrock, monkeypatch, ARK_SHUTDOWN_DEADLINE_S=str(deadline_s)
    ) as ark:
        await slack.send_event(slack.dm_event("slow one"))
        await bedrock.wait_for_invocations(1)
        slack.delay_next("chat.postMessage", 10.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await ark.shutdown()
        elapsed = loop.time() - started
    assert elapsed < deadline_s + 1.5, elapsed


async def test_a_reply_that_arrives_later_is_not_in_the_earlier_ones_context(
    slack, bedrock, monkeypatch
):
    # A and B arrive together in a thread this process does not know: A's restored context
    # holds what came before A, never B (B is its own turn, answered after A)
    bedrock.script = lambda inv: [Delay(0.2), Chunk("ok")]
    root, a_ts, b_ts = "1700000000.000100", "1700000010.000100", "1700000011.000100"
    slack.set_thread(
        "C1",
        root,
        [
            {"user": "U1", "text": "root question", "ts": root},
            {"user": "U1", "text": "<@UBOT> message A", "ts": a_ts},
            {"user": "U1", "text": "<@UBOT> message B", "ts": b_ts},
        ],
    )
    async with running_ark(slack, bedrock, monkeypatch):
        first = slack.mention_event("message A", thread_ts=root)
        first["ts"] = a_ts
        second = slack.mention_event("message B", thread_ts=root)
        second["ts"] = b_ts
        await slack.send_event(first)
        await slack.send_event(second)
        await slack.wait_for_call("chat.postMessage", count=2)
        inputs = [inv.body["inputText"] for inv in bedrock.invocations]
        assert "root question" in inputs[0]
        assert "message B" not in inputs[0]
        assert inputs[0].endswith("\n\nmessage A")


async def test_users_info_is_asked_once_per_user(slack, bedrock, monkeypatch):
    async with running_ark(slack, bedrock, monkeypatch):
        await slack.send_event(slack.dm_event("first"))
        await slack.wait_for_call("chat.postMessage")
        await slack.send_event(slack.dm_event("second"))
        await slack.wait_for_call("chat.postMessage", count=2)
        assert len(slack.calls_to("users.info")) == 1
        attrs = [inv.body["sessionState"]["promptSessionAttributes"] for inv in bedrock.invocations]
        assert [a["user_name"] for a in attrs] == ["Ada Lovelace", "Ada Lovelace"]


async def test_throttling_during_orchestration_is_retried_with_analytics_on(
    slack, bedrock, monkeypatch
):
    trace = {"orchestrationTrace": {"rationale": {"text": "look it up"}}}
    bedrock.queue_script([Trace(trace), StreamError("throttlingException", "slow down")])
    async with running_ark(slack, bedrock, monkeypatch, FIREHOSE_STREAM_NAME="ark-test"):
        await slack.send_event(slack.dm_event("hi"))
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["text"] == "You said: hi"
        assert len(bedrock.invocations) == 2


async def test_each_stage_of_an_answer_is_logged_with_its_latency(slack, bedrock, monkeypatch):
    with captured_records("ark.gateway", logging.INFO) as records:
        async with running_ark(slack, bedrock, monkeypatch):
            event = slack.dm_event("timed")
            await slack.send_event(event)
            await slack.wait_for_call("chat.postMessage")
            await slack.wait_for_call("reactions.remove")
    by_event = {r.getMessage(): r.ark_fields for r in records}  # type: ignore[attr-defined]
    assert by_event["event_received"]["ts"] == event["ts"]
    invoked = by_event["agent_invoked"]
    assert {"queue_wait_ms", "prepare_ms"} <= invoked.keys()
    answered = by_event["answered"]
    stages = ("total_ms", "first_byte_ms", "agent_ms", "post_ms", "queue_wait_ms")
    assert all(isinstance(answered[k], int) and answered[k] >= 0 for k in stages)
    assert answered["total_ms"] >= answered["agent_ms"] + answered["post_ms"] - 1
