"""Tests for ark.events: which Slack events Ark answers, where, and in which session."""

from __future__ import annotations

from typing import Any

import pytest

from ark.events import (
    Ignored,
    Message,
    route,
    session_id_for_dm,
    session_id_for_ts,
    strip_bot_mention,
)

BOT = "UBOT"
USER = "U123"
DM = "D0DM"
CHANNEL = "C0CHAN"
TS = "1700000000.000100"
THREAD_TS = "1699999999.000200"


def _dm(**fields: Any) -> dict[str, Any]:
    event = {
        "type": "message",
        "channel_type": "im",
        "channel": DM,
        "user": USER,
        "text": "hello",
        "ts": TS,
    }
    event.update(fields)
    return {"event_id": "Ev1", "event": event}


def _mention(**fields: Any) -> dict[str, Any]:
    event = {
        "type": "app_mention",
        "channel": CHANNEL,
        "user": USER,
        "text": f"<@{BOT}> what is up",
        "ts": TS,
    }
    event.update(fields)
    return {"event_id": "Ev2", "event": event}


def _message(payload: dict[str, Any], dm_replies: str = "thread") -> Message:
    result = route(payload, bot_user_id=BOT, dm_replies=dm_replies)
    assert isinstance(result, Message), result
    return result


def _ignored(payload: Any, dm_replies: str = "thread") -> str:
    result = route(payload, bot_user_id=BOT, dm_replies=dm_replies)
    assert isinstance(result, Ignored), result
    return result.reason


# --- helpers -------------------------------------------------------------------------------


def test_session_id_for_ts() -> None:
    assert session_id_for_ts("1700000000.000100") == "1700000000-000100"


def test_session_id_for_dm() -> None:
    assert session_id_for_dm("D0DM") == "dm-D0DM"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<@UBOT> hi", "hi"),
        ("<@UBOT|ark> hi", "hi"),
        ("hi <@UBOT>", "hi"),
        ("ask <@UBOT> about <@U999>", "ask about <@U999>"),
        ("<@UBOT><@UBOT|ark>  two", "two"),
        ("<@UBOTX> not me", "<@UBOTX> not me"),
    ],
)
def test_strip_bot_mention(text: str, expected: str) -> None:
    assert strip_bot_mention(text, BOT) == expected


def test_strip_bot_mention_without_bot_id_only_trims() -> None:
    assert strip_bot_mention("  <@UBOT> hi ", "") == "<@UBOT> hi"


# --- DMs -----------------------------------------------------------------------------------


def test_top_level_dm_starts_its_own_thread() -> None:
    m = _message(_dm(text="  hello  "))
    assert m.kind == "dm"
    assert m.channel == DM
    assert m.user == USER
    assert m.text == "hello"
    assert m.ts == TS
    assert m.event_id == "Ev1"
    assert m.files == ()
    assert m.reply_thread_ts == TS
    assert m.session_key == TS
    assert m.session_id == "1700000000-000100"
    assert m.history is None
    assert m.history_ts is None
    assert m.new_thread is True


def test_dm_file_share_is_accepted() -> None:
    files = [{"id": "F1", "name": "a.csv"}, "not-a-file"]
    m = _message(_dm(subtype="file_share", text="", files=files))
    assert m.files == ({"id": "F1", "name": "a.csv"},)
    assert m.text == ""


def test_dm_reply_in_thread_joins_the_thread_session() -> None:
    m = _message(_dm(thread_ts=THREAD_TS))
    assert m.reply_thread_ts == THREAD_TS
    assert m.session_key == THREAD_TS
    assert m.session_id == session_id_for_ts(THREAD_TS)
    assert m.history == "replies"
    assert m.history_ts == THREAD_TS
    assert m.new_thread is False


def test_dm_thread_ts_equal_to_ts_is_a_new_thread() -> None:
    m = _message(_dm(thread_ts=TS))
    assert m.reply_thread_ts == TS
    assert m.history is None


def test_flat_dm_replies_in_the_channel_with_one_session() -> None:
    m = _message(_dm(), dm_replies="flat")
    assert m.kind == "dm"
    assert m.reply_thread_ts is None
    assert m.session_id == f"dm-{DM}"
    assert m.session_key == f"dm:{DM}"
    assert m.history == "history"
    assert m.history_ts is None
    assert m.new_thread is False


def test_flat_dm_session_is_the_same_for_every_top_level_message() -> None:
    first = _message(_dm(ts="1.000001"), dm_replies="flat")
    second = _message(_dm(ts="2.000002"), dm_replies="flat")
    assert first.session_id == second.session_id
    assert first.session_key == second.session_key


def test_flat_dm_thread_reply_still_goes_to_the_thread() -> None:
    m = _message(_dm(thread_ts=THREAD_TS), dm_replies="flat")
    assert m.reply_thread_ts == THREAD_TS
    assert m.session_id == session_id_for_ts(THREAD_TS)
    assert m.history == "replies"
    assert m.history_ts == THREAD_TS


# --- mentions ------------------------------------------------------------------------------


@pytest.mark.parametrize("mention", [f"<@{BOT}>", f"<@{BOT}|ark>"])
def test_channel_mention_strips_bot_mention_only(mention: str) -> None:
    m = _message(_mention(text=f"{mention} ask <@U999> about <#C1>"))
    assert m.kind == "mention"
    assert m.channel == CHANNEL
    assert m.text == "ask <@U999> about <#C1>"
    assert BOT not in m.text


def test_new_mention_starts_a_thread_at_its_ts() -> None:
    m = _message(_mention())
    assert m.reply_thread_ts == TS
    assert m.session_key == TS
    assert m.session_id == session_id_for_ts(TS)
    assert m.history is None
    assert m.history_ts is None
    assert m.event_id == "Ev2"


def test_mention_in_thread_uses_thread_root() -> None:
    m = _message(_mention(thread_ts=THREAD_TS))
    assert m.reply_thread_ts == THREAD_TS
    assert m.session_key == THREAD_TS
    assert m.session_id == session_id_for_ts(THREAD_TS)
    assert m.history == "replies"
    assert m.history_ts == THREAD_TS


def test_mention_with_only_files_is_answered() -> None:
    m = _message(_mention(text=f"<@{BOT}>", files=[{"id": "F1"}]))
    assert m.text == ""
    assert m.files == ({"id": "F1"},)


def test_mention_with_only_the_bot_mention_is_empty() -> None:
    assert _ignored(_mention(text=f"  <@{BOT}>  ")) == "empty"


def test_missing_event_id_is_none() -> None:
    payload = _mention()
    del payload["event_id"]
    assert _message(payload).event_id is None


# --- ignored -------------------------------------------------------------------------------


def test_own_message_ignored() -> None:
    assert _ignored(_dm(user=BOT)) == "own_message"
    assert _ignored(_mention(user=BOT)) == "own_message"


@pytest.mark.parametrize("fields", [{"bot_id": "B1"}, {"bot_profile": {"id": "B1"}}])
def test_other_bots_ignored(fields: dict[str, Any]) -> None:
    assert _ignored(_dm(**fields)) == "bot_message"
    assert _ignored(_mention(**fields)) == "bot_message"


@pytest.mark.parametrize(
    "subtype",
    ["message_changed", "message_deleted", "channel_join", "bot_message", "thread_broadcast"],
)
def test_other_subtypes_ignored(subtype: str) -> None:
    assert _ignored(_dm(subtype=subtype)).startswith("subtype")


def test_edited_ignored() -> None:
    assert _ignored(_dm(edited={"user": USER, "ts": TS})) == "edited"


@pytest.mark.parametrize("channel_type", ["channel", "group", "mpim", None])
def test_non_dm_message_ignored(channel_type: str | None) -> None:
    payload = _dm(channel=CHANNEL, channel_type=channel_type, text=f"<@{BOT}> hi")
    if channel_type is None:
        del payload["event"]["channel_type"]
    assert _ignored(payload) == "not_dm"


def test_app_mention_in_dm_ignored() -> None:
    # the message.im event for the same message is the one answered
    assert _ignored(_mention(channel=DM)) == "mention_in_dm"
    assert _ignored(_mention(channel=DM, channel_type="im")) == "mention_in_dm"


@pytest.mark.parametrize("text", ["", "   \n ", None])
def test_empty_dm_without_files_ignored(text: str | None) -> None:
    assert _ignored(_dm(text=text)) == "empty"
    assert _ignored(_dm(text=text, files=[])) == "empty"


@pytest.mark.parametrize("field", ["channel", "ts", "user"])
@pytest.mark.parametrize("make", [_dm, _mention])
def test_missing_fields_ignored(field: str, make: Any) -> None:
    payload = make()
    del payload["event"][field]
    assert isinstance(route(payload, bot_user_id=BOT), Ignored)
    payload = make(**{field: ""})
    assert isinstance(route(payload, bot_user_id=BOT), Ignored)
    payload = make(**{field: 12})
    assert isinstance(route(payload, bot_user_id=BOT), Ignored)


@pytest.mark.parametrize("payload", [{}, {"event": None}, {"event": "message"}, {"event": [1]}])
def test_non_dict_event_ignored(payload: dict[str, Any]) -> None:
    assert _ignored(payload) == "no_event"


@pytest.mark.parametrize(
    "event_type", ["reaction_added", "app_home_opened", "member_joined_channel", None]
)
def test_unknown_event_types_ignored(event_type: str | None) -> None:
    payload = _dm(type=event_type)
    assert _ignored(payload).startswith("event_type")
