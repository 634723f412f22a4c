"""`ark chat` against the loopback fake Bedrock, reached through the real aiobotocore client.

Most tests run the real command (`ark.chat.main`) in a worker thread with its own event
loop, stdin/stdout/stderr as StringIO, while the fake serves on the test's loop. The
context-restore and interruption tests drive a `ChatSession` directly (a fake clock, a
cancelled answer). Nothing leaves 127.0.0.1: Slack is played in process by `LocalSlack`.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ark.chat import (
    BOT_USER_ID,
    ChatOptions,
    ChatSession,
    Console,
    LocalUser,
    load_chat_settings,
    main,
    safe_file_name,
)
from ark.errors import ERROR_REPLY, SHUTDOWN_REPLY
from tests.fakes.bedrock import Chunk, FakeBedrock, Files, Hang, HttpError

CHAT_TIMEOUT_S = 30.0
TABLE_ANSWER = "Here you go:\n\n| Plan | Price |\n|---|---|\n| Basic | 10 |\n| Pro | 20 |"


@pytest.fixture(autouse=True)
def _restore_ark_logger() -> Iterator[None]:
    """`ark chat` configures the 'ark' logger; give it back as it was."""
    root = logging.getLogger("ark")
    saved = (list(root.handlers), root.level, root.propagate)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    root.propagate = saved[2]


@pytest.fixture
def chat_env(bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Only what `ark chat` needs: the agent, a region, the fake's endpoint. No Slack."""
    env = {
        "BEDROCK_AGENT_ID": "AGENT12345",
        "BEDROCK_AGENT_ALIAS_ID": "ALIAS12345",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME": bedrock.endpoint_url,
        "TZ": "Europe/Paris",
    }
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_API_URL", "DM_REPLIES"):
        monkeypatch.delenv(name, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


async def run_chat(tmp_path: Path, lines: str, *args: str) -> tuple[int, str, str]:
    """`ark chat ARGS` with `lines` on stdin; (exit status, stdout, stderr)."""
    stdin, stdout, stderr = io.StringIO(lines), io.StringIO(), io.StringIO()
    argv = ["--env-file", str(tmp_path / "missing.env"), "--out", str(tmp_path / "out"), *args]
    async with asyncio.timeout(CHAT_TIMEOUT_S):
        code = await asyncio.to_thread(main, argv, stdin=stdin, stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def slack_payloads(out: str) -> list[tuple[str, dict[str, Any]]]:
    """The `[slack] method` + pretty JSON sections `--slack` prints, decoded."""
    found: list[tuple[str, dict[str, Any]]] = []
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("[slack] "):
            method = lines[i].removeprefix("[slack] ")
            end = lines.index("}", i + 1)
            found.append((method, orjson.loads("\n".join(lines[i + 1 : end + 1]))))
            i = end
        i += 1
    return found


def _attributes(body: dict[str, Any]) -> dict[str, str]:
    return body["sessionState"]["promptSessionAttributes"]


# --------------------------------------------------------------------------- the command


async def test_question_is_answered_and_printed(tmp_path, chat_env, bedrock):
    code, out, err = await run_chat(tmp_path, "hello there\n")
    assert code == 0
    assert err == ""
    assert "You said: hello there" in out
    assert "[slack]" not in out
    (inv,) = bedrock.invocations
    assert (inv.agent_id, inv.alias_id) == ("AGENT12345", "ALIAS12345")
    assert inv.body["inputText"] == "hello there"


async def test_two_questions_share_one_session(tmp_path, chat_env, bedrock):
    code, out, _ = await run_chat(tmp_path, "first\nsecond\n")
    assert code == 0
    first, second = bedrock.invocations
    assert first.session_id == second.session_id
    # the gateway's scheme: the conversation's first message ts with '.' as '-'
    seconds, micros = first.session_id.split("-")
    assert seconds.isdigit() and len(micros) == 6
    # a fresh session needs no restored context
    assert second.body["inputText"] == "second"
    assert out.index("You said: first") < out.index("You said: second")


async def test_new_starts_another_session(tmp_path, chat_env, bedrock):
    code, out, _ = await run_chat(tmp_path, "one\n/session\n/new\ntwo\n")
    assert code == 0
    first, second = bedrock.invocations
    assert first.session_id != second.session_id
    assert f"session {first.session_id}" in out
    assert second.body["inputText"] == "two"


async def test_user_attributes_come_from_the_local_user(tmp_path, chat_env, bedrock):
    await run_chat(tmp_path, "who am I?\n")
    attrs = _attributes(bedrock.invocations[0].body)
    assert attrs["user_name"] == getpass.getuser()
    assert attrs["user_timezone"] == "Europe/Paris"
    assert "user_title" not in attrs  # an empty title is left out, as for a Slack user
    assert attrs["current_datetime"].endswith("+00:00")


async def test_user_attributes_can_be_chosen(tmp_path, chat_env, bedrock):
    await run_chat(tmp_path, "hi\n", "--name", "Ada Lovelace", "--title", "Engineer", "--tz", "UTC")
    attrs = _attributes(bedrock.invocations[0].body)
    assert attrs["user_name"] == "Ada Lovelace"
    assert attrs["user_title"] == "Engineer"
    assert attrs["user_timezone"] == "UTC"


async def test_file_is_attached_to_the_next_question(tmp_path, chat_env, bedrock):
    data = b"plan,price\nbasic,10\npro,20\n"
    report = tmp_path / "prices.csv"
    report.write_bytes(data)
    code, out, err = await run_chat(tmp_path, f"/file {report}\nsummarise this\nand now?\n")
    assert code == 0
    assert err == ""
    assert "attached prices.csv" in out
    first, second = bedrock.invocations
    (sent,) = first.body["sessionState"]["files"]
    assert sent["name"] == "prices.csv"
    assert sent["useCase"] == "CODE_INTERPRETER"
    assert sent["source"]["sourceType"] == "BYTE_CONTENT"
    assert sent["source"]["byteContent"]["mediaType"] == "text/csv"
    assert base64.b64decode(sent["source"]["byteContent"]["data"]) == data
    assert first.file_bytes == len(data)
    assert first.body["inputText"] == "summarise this"
    # the attachment went with one message only
    assert "files" not in second.body.get("sessionState", {})


async def test_files_alone_are_sent_with_an_empty_line(tmp_path, chat_env, bedrock):
    (tmp_path / "notes.md").write_text("# Notes\n")
    await run_chat(tmp_path, f"/file {tmp_path / 'notes.md'}\n\n")
    (inv,) = bedrock.invocations
    assert inv.body["inputText"] == "Please look at the attached file(s): notes.md"
    assert inv.body["sessionState"]["files"][0]["source"]["byteContent"]["mediaType"] == (
        "text/markdown"
    )


async def test_bad_files_are_one_line_each_and_nothing_is_sent(tmp_path, chat_env, bedrock):
    (tmp_path / "tool.exe").write_bytes(b"MZ")
    for n in range(6):
        (tmp_path / f"f{n}.txt").write_text(str(n))
    lines = [
        f"/file {tmp_path / 'nope.csv'}",
        f"/file {tmp_path / 'tool.exe'}",
        *(f"/file {tmp_path / f'f{n}.txt'}" for n in range(6)),
        "/file",
        "/frobnicate",
        "go",
    ]
    code, _, err = await run_chat(tmp_path, "\n".join(lines) + "\n")
    assert code == 0
    errors = err.splitlines()
    assert len(errors) == 5
    assert all(line.startswith("error: ") for line in errors)
    assert "no such file" in errors[0] and "nope.csv" in errors[0]
    assert "tool.exe" in errors[1] and "Supported formats" in errors[1]
    assert "f5.txt not attached" in errors[2] and "5 files" in errors[2]
    assert "usage: /file PATH" in errors[3]
    assert "/frobnicate" in errors[4]
    (inv,) = bedrock.invocations
    assert [f["name"] for f in inv.body["sessionState"]["files"]] == [f"f{n}.txt" for n in range(5)]


async def test_slack_flag_prints_the_exact_payloads(tmp_path, chat_env, bedrock):
    bedrock.queue_script([Chunk(TABLE_ANSWER)])
    code, out, _ = await run_chat(tmp_path, "prices?\n", "--slack")
    assert code == 0
    # the readable answer first: the markdown source
    assert out.startswith("Here you go:\n\n| Plan | Price |")
    payloads = slack_payloads(out)
    assert payloads and all(method == "chat.postMessage" for method, _ in payloads)
    (_, body), *_ = payloads
    assert body["channel"].startswith("D")
    assert body["thread_ts"]  # answered in the conversation's thread
    assert body["unfurl_links"] is False and body["unfurl_media"] is False
    types = [block["type"] for block in body["blocks"]]
    assert "table" in types
    table = next(block for block in body["blocks"] if block["type"] == "table")
    assert table["rows"][1][0] == {"type": "raw_text", "text": "Basic"}
    assert "Basic" in body["text"]  # the notification fallback text


async def test_agent_files_are_saved_and_their_path_printed(tmp_path, chat_env, bedrock):
    bedrock.queue_script(
        [
            Chunk("Your chart:"),
            Files([{"name": "../chart.png", "type": "image/png", "bytes": b"\x89PNG-1"}]),
        ]
    )
    bedrock.queue_script([Files([{"name": "chart.png", "type": "image/png", "bytes": b"PNG-2"}])])
    code, out, err = await run_chat(tmp_path, "draw\nagain\n", "--slack")
    assert code == 0, err
    first, second = tmp_path / "out" / "chart.png", tmp_path / "out" / "chart-1.png"
    assert first.read_bytes() == b"\x89PNG-1"
    assert second.read_bytes() == b"PNG-2"  # never overwritten
    assert f"saved: {first} (6 bytes)" in out
    assert f"saved: {second} (5 bytes)" in out
    methods = [method for method, _ in slack_payloads(out)]
    assert methods.count("files.completeUploadExternal") == 2


async def test_agent_error_is_one_line_and_the_chat_goes_on(tmp_path, chat_env, bedrock):
    bedrock.queue_script([HttpError(400, "ValidationException", "Input is not\nvalid")])
    code, out, err = await run_chat(tmp_path, "break\nstill there?\n")
    assert code == 0
    (line,) = err.splitlines()
    assert line.startswith("error: the agent failed: validation")
    assert "Input is not valid" in line and "ValidationException" in line
    assert "still there?\n" in out  # answered (the fake echoes the input)
    _, after = bedrock.invocations
    # the failed first message never made a session, so it comes back as context
    assert after.body["inputText"].endswith(
        "User (U0LOCALUSER): break\n[End of previous context]\n\nstill there?"
    )
    assert "Traceback" not in out + err


async def test_end_of_input_ends_with_status_0(tmp_path, chat_env, bedrock):
    code, out, err = await run_chat(tmp_path, "")
    assert (code, out, err) == (0, "", "")
    assert bedrock.invocations == []


async def test_quit_ends_before_later_lines(tmp_path, chat_env, bedrock):
    code, _, _ = await run_chat(tmp_path, "one\n/quit\ntwo\n")
    assert code == 0
    assert [inv.body["inputText"] for inv in bedrock.invocations] == ["one"]


async def test_missing_agent_id_is_one_line_and_status_2(tmp_path, chat_env, monkeypatch):
    monkeypatch.delenv("BEDROCK_AGENT_ID")
    code, out, err = await run_chat(tmp_path, "hello\n")
    assert code == 2
    assert out == ""
    (line,) = err.splitlines()
    assert "BEDROCK_AGENT_ID is required" in line
    assert "SLACK" not in line  # the Slack tokens are not asked for


async def test_unknown_aws_profile_is_one_line_and_status_2(tmp_path, chat_env, monkeypatch):
    # explicit keys would win over the profile: without them the profile must exist
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    code, out, err = await run_chat(tmp_path, "hello\n")
    assert code == 2
    assert out == ""
    (line,) = err.splitlines()
    assert "no-such-profile" in line


async def test_env_file_that_is_not_utf8_is_one_line_and_status_2(tmp_path, chat_env):
    bad = tmp_path / "bad.env"
    bad.write_bytes(b"BEDROCK_AGENT_ID=\xff\xfe\n")
    stdin, stdout, stderr = io.StringIO("hello\n"), io.StringIO(), io.StringIO()
    argv = ["--env-file", str(bad), "--out", str(tmp_path / "out")]
    async with asyncio.timeout(CHAT_TIMEOUT_S):
        code = await asyncio.to_thread(main, argv, stdin=stdin, stdout=stdout, stderr=stderr)
    assert code == 2
    assert stdout.getvalue() == ""
    (line,) = stderr.getvalue().splitlines()
    assert "bad.env" in line


async def test_slack_variables_are_ignored(tmp_path, chat_env, bedrock, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "not-a-bot-token")
    monkeypatch.setenv("SLACK_API_URL", "ftp://nowhere")
    code, out, err = await run_chat(tmp_path, "hello\n")
    assert (code, err) == (0, "")
    assert "You said: hello" in out


async def test_flat_dm_replies_use_the_dm_session(tmp_path, chat_env, bedrock, monkeypatch):
    monkeypatch.setenv("DM_REPLIES", "flat")
    code, out, _ = await run_chat(tmp_path, "a\nb\n/new\nc\n", "--slack")
    assert code == 0
    a, b, c = bedrock.invocations
    assert a.session_id == b.session_id == "dm-D0ARKCHAT1"
    assert c.session_id == "dm-D0ARKCHAT2"
    assert all("thread_ts" not in body for _, body in slack_payloads(out))


# --------------------------------------------------------------------------- the session


def _session(env: dict[str, str], console: Console, **kwargs: Any) -> ChatSession:
    options = ChatOptions(out_dir=Path("."), user=LocalUser(name="ada", timezone="UTC"))
    return ChatSession(load_chat_settings(env), env, console, options, **kwargs)


async def test_idle_session_gets_the_transcript_as_context(chat_env, bedrock):
    now = [1000.0]
    out, err = io.StringIO(), io.StringIO()
    async with (
        asyncio.timeout(CHAT_TIMEOUT_S),
        _session(chat_env, Console(out, err), clock=lambda: now[0]) as chat,
    ):
        assert await chat.handle("what is the refund policy?")
        bedrock.queue_script([HttpError(400, "ValidationException", "nope")])
        assert await chat.handle("this one fails")
        now[0] += chat.settings.session_ttl_s + 1  # Bedrock has forgotten the session
        assert await chat.handle("and for digital goods?")
    first, _, third = bedrock.invocations
    assert third.session_id == first.session_id
    text = third.body["inputText"]
    assert text.startswith("[Previous conversation context]\n")
    assert "User (U0LOCALUSER): what is the refund policy?" in text
    assert "Assistant: You said: what is the refund policy?" in text
    assert "User (U0LOCALUSER): this one fails" in text
    assert ERROR_REPLY not in text
    assert text.endswith("[End of previous context]\n\nand for digital goods?")
    assert BOT_USER_ID not in text


async def test_an_abandoned_answer_is_cancelled_quietly(chat_env, bedrock):
    out, err = io.StringIO(), io.StringIO()
    async with asyncio.timeout(CHAT_TIMEOUT_S), _session(chat_env, Console(out, err)) as chat:
        bedrock.queue_script([Hang()])
        answer = asyncio.create_task(chat.handle("slow question"))
        await bedrock.wait_for_invocations(1)
        answer.cancel()  # what Ctrl-C does to the line in progress
        with pytest.raises(asyncio.CancelledError):
            await answer
        assert await chat.handle("next")
    assert SHUTDOWN_REPLY not in out.getvalue() + err.getvalue()
    first, second = bedrock.invocations
    assert second.session_id == first.session_id
    assert second.body["inputText"].endswith("\n\nnext")
    assert "next\n" in out.getvalue()


def test_safe_file_names() -> None:
    assert safe_file_name("../../.bashrc") == "bashrc"
    assert safe_file_name("dir\\report.pdf") == "report.pdf"
    assert safe_file_name("a\x00b.txt") == "a_b.txt"
    assert safe_file_name("..") == "file"
    assert safe_file_name("") == "file"
