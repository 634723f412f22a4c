"""End to end: the attachment budget (ARK_MAX_INFLIGHT_FILE_MB) with the real gateway, the
loopback Slack and the loopback Bedrock Agent Runtime. Ordering is observed through events
(gated agent streams, recorded calls), never through timing."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

import ark.app
from ark.budget import in_flight_bytes
from ark.errors import ERROR_REPLY
from ark.gateway import FILES_QUEUED_NOTICE, GatewayOptions
from tests.e2e_harness import running_ark
from tests.fakes.bedrock import Chunk, Gate, StreamError
from tests.fakes.slack import FakeSlack

KIB = 1024
BUDGET_MB = "1"  # the smallest budget: 1 MiB
FILE_BYTES = 250 * KIB  # one message of these fits, two together do not:
assert in_flight_bytes(FILE_BYTES) <= 1024 * KIB < 2 * in_flight_bytes(FILE_BYTES)


@pytest.fixture
async def slack():
    async with FakeSlack() as fake:
        fake.add_user("U1", real_name="Ada Lovelace")
        yield fake


@pytest.fixture(autouse=True)
def short_patience(monkeypatch):
    """The queued notice after 0.2 s instead of 5 s (a GatewayOptions field app.py leaves at
    its default)."""
    patient = partial(GatewayOptions, files_queued_notice_s=0.2)
    monkeypatch.setattr(ark.app, "GatewayOptions", patient)


def _in_thread(slack: FakeSlack, thread_ts: str) -> list[str]:
    return [c.params["text"] for c in slack.posts if c.params.get("thread_ts") == thread_ts]


def _downloads(slack: FakeSlack, file: dict) -> int:
    return slack.hosted_files[file["url_private_download"]].downloads


async def test_files_over_the_budget_wait_their_turn_and_both_are_answered(
    slack, bedrock, monkeypatch
):
    gate = asyncio.Event()
    bedrock.queue_script([Gate(gate), Chunk("first answer")])
    async with running_ark(slack, bedrock, monkeypatch, ARK_MAX_INFLIGHT_FILE_MB=BUDGET_MB):
        file_a = slack.file_object("a.csv", b"a" * FILE_BYTES, mimetype="text/csv")
        first = slack.dm_event("first", files=[file_a])
        await slack.send_event(first)
        await bedrock.wait_for_invocations(1)  # the first holds its bytes: its stream is gated

        file_b = slack.file_object("b.csv", b"b" * FILE_BYTES, mimetype="text/csv")
        second = slack.dm_event("second", files=[file_b])
        await slack.send_event(second)
        (notice,) = await slack.wait_for_call(
            "chat.postMessage", lambda c: c.params.get("thread_ts") == second["ts"]
        )
        assert notice.params["text"] == FILES_QUEUED_NOTICE
        # queued before its download: nothing fetched, nothing sent to the agent
        assert _downloads(slack, file_b) == 0
        assert len(bedrock.invocations) == 1

        gate.set()  # the first answer streams: its bytes are given back
        await slack.wait_for_call(
            "chat.postMessage", lambda c: c.params.get("thread_ts") == second["ts"], count=2
        )
        await slack.wait_for_call(
            "chat.postMessage", lambda c: c.params.get("thread_ts") == first["ts"]
        )
        one, two = bedrock.invocations
        assert one.body["inputText"] == "first" and two.body["inputText"] == "second"
        assert one.file_bytes == two.file_bytes == FILE_BYTES  # nothing was dropped
        assert two.received_at >= one.first_chunk_at > 0  # admitted only after the release
        assert _in_thread(slack, first["ts"]) == ["first answer"]  # told nothing about a queue
        assert _in_thread(slack, second["ts"]) == [FILES_QUEUED_NOTICE, "You said: second"]


async def test_a_failed_invocation_gives_its_bytes_back(slack, bedrock, monkeypatch):
    gate = asyncio.Event()
    bedrock.queue_script([Gate(gate), StreamError("accessDeniedException", "no")])
    async with running_ark(slack, bedrock, monkeypatch, ARK_MAX_INFLIGHT_FILE_MB=BUDGET_MB):
        first = slack.dm_event(
            "first", files=[slack.file_object("a.csv", b"a" * FILE_BYTES, mimetype="text/csv")]
        )
        await slack.send_event(first)
        await bedrock.wait_for_invocations(1)
        second = slack.dm_event(
            "second", files=[slack.file_object("b.csv", b"b" * FILE_BYTES, mimetype="text/csv")]
        )
        await slack.send_event(second)
        await slack.wait_for_call(
            "chat.postMessage", lambda c: c.params.get("thread_ts") == second["ts"]
        )
        assert len(bedrock.invocations) == 1

        gate.set()  # the first fails before any event: the error path must release too
        await slack.wait_for_call(
            "chat.postMessage", lambda c: c.params.get("thread_ts") == second["ts"], count=2
        )
        assert _in_thread(slack, first["ts"]) == [ERROR_REPLY]
        assert _in_thread(slack, second["ts"]) == [FILES_QUEUED_NOTICE, "You said: second"]
        assert [i.body["inputText"] for i in bedrock.invocations] == ["first", "second"]


async def test_a_message_larger_than_the_budget_is_answered_alone(slack, bedrock, monkeypatch):
    big = b"x" * (1536 * KIB)  # 1.5 MiB against a 1 MiB budget
    async with running_ark(slack, bedrock, monkeypatch, ARK_MAX_INFLIGHT_FILE_MB=BUDGET_MB):
        files = [slack.file_object("big.csv", big, mimetype="text/csv")]
        event = slack.dm_event("big", files=files)
        await slack.send_event(event)
        (post,) = await slack.wait_for_call("chat.postMessage")
        assert post.params["text"] == "You said: big"
        assert bedrock.invocations[0].file_bytes == len(big)


async def test_messages_without_files_never_wait_for_the_budget(slack, bedrock, monkeypatch):
    gate = asyncio.Event()
    bedrock.queue_script([Gate(gate), Chunk("files answer")])
    async with running_ark(slack, bedrock, monkeypatch, ARK_MAX_INFLIGHT_FILE_MB=BUDGET_MB):
        holder = slack.dm_event(
            "files",
            files=[slack.file_object("a.csv", b"a" * (1536 * KIB), mimetype="text/csv")],
        )
        await slack.send_event(holder)
        await bedrock.wait_for_invocations(1)  # holds more than the whole budget
        plain = slack.dm_event("just text")
        await slack.send_event(plain)
        (post,) = await slack.wait_for_call(
            "chat.postMessage", lambda c: c.params.get("thread_ts") == plain["ts"]
        )
        assert post.params["text"] == "You said: just text"
        gate.set()
        await slack.wait_for_call(
            "chat.postMessage", lambda c: c.params.get("thread_ts") == holder["ts"]
        )


async def test_a_file_longer_than_slack_declared_is_refused_not_read_past_its_reservation(
    slack, bedrock, monkeypatch
):
    # Slack says 1 KiB; the body is 300 KiB. The budget reserved for the declared size, so
    # the download stops at it: the file is left out with a reason, the text is answered.
    liar = slack.file_object("data.csv", b"a,b\n" * (75 * KIB))
    liar["size"] = KIB
    async with running_ark(slack, bedrock, monkeypatch):
        event = slack.dm_event("what is in it?", files=[liar])
        await slack.send_event(event)
        await slack.wait_for_call("chat.postMessage", count=2)
        texts = _in_thread(slack, event["ts"])
        assert any("data.csv" in t and "larger than" in t for t in texts), texts
        assert "You said: what is in it?" in texts
        (inv,) = bedrock.invocations
        assert "files" not in inv.body.get("sessionState", {})
