"""The context block for stale sessions: the reference's exact format and limits."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ark.errors import BUSY_REPLY, ERROR_REPLY
from ark.slack.history import (
    CONTEXT_BUDGET_CHARS,
    CONTEXT_FOOTER,
    CONTEXT_HEADER,
    format_context,
    with_context,
)

BOT = "UBOT"


def msg(text: str, user: str = "U1", ts: str = "1.0", **extra: Any) -> dict[str, Any]:
    return {"user": user, "text": text, "ts": ts, **extra}


def thread(*texts_and_users: tuple[str, str]) -> list[dict[str, Any]]:
    return [msg(text, user, ts=f"{i}.0") for i, (text, user) in enumerate(texts_and_users, 1)]


def lines_part(block: str) -> str:
    """The message lines of a block: between the header (and omitted line) and the footer."""
    assert block.startswith(CONTEXT_HEADER + "\n") and block.endswith("\n" + CONTEXT_FOOTER)
    body = block[len(CONTEXT_HEADER) + 1 : -(len(CONTEXT_FOOTER) + 1)]
    if body.startswith("[... "):
        body = body.split("\n", 1)[1]
    return body


def test_golden_thread() -> None:
    messages = thread(
        ("what is our refund policy?", "U123"),
        ("Refunds are possible within 30 days.", BOT),
        ("and for digital goods?", "U456"),
        ("current question", "U123"),
    )
    assert format_context(messages, bot_user_id=BOT) == (
        "[Previous conversation context]\n"
        "User (U123): what is our refund policy?\n"
        "Assistant: Refunds are possible within 30 days.\n"
        "User (U456): and for digital goods?\n"
        "[End of previous context]"
    )


def test_with_context_joins_with_blank_line() -> None:
    assert with_context("CTX", "question") == "CTX\n\nquestion"
    assert with_context(None, "question") == "question"
    assert with_context("", "question") == "question"


def test_current_message_and_newer_ones_left_out_by_ts() -> None:
    # "third" arrived while "second" waited: it is its own turn, not second's past
    messages = thread(("first", "U1"), ("second", "U2"), ("third", "U1"))
    block = format_context(messages, bot_user_id=BOT, current_ts="2.0")
    assert block is not None
    assert lines_part(block) == "User (U1): first"


def test_ts_order_is_numeric_not_textual() -> None:
    messages = [
        msg("older, shorter seconds", ts="999999999.000900"),
        msg("older, same second", ts="1700000000.000099"),
        msg("current", ts="1700000000.000100"),
        msg("newer", ts="1700000000.001000"),
        msg("no ts kept", ts=None),  # type: ignore[arg-type]
    ]
    block = format_context(messages, bot_user_id=BOT, current_ts="1700000000.000100")
    assert block is not None
    assert lines_part(block) == (
        "User (U1): older, shorter seconds\nUser (U1): older, same second\nUser (U1): no ts kept"
    )


def test_only_current_message_gives_none() -> None:
    assert format_context([msg("hello")], bot_user_id=BOT) is None
    assert format_context([], bot_user_id=BOT) is None
    assert format_context([msg("hello", ts="5.0")], bot_user_id=BOT, current_ts="5.0") is None


def test_drops_subtypes_empty_and_canned_replies() -> None:
    messages = [
        msg("joined", ts="1.0", subtype="channel_join"),
        msg("edited away", ts="2.0", subtype="message_changed"),
        msg("here is the file", ts="3.0", subtype="file_share"),
        msg("   ", ts="4.0"),
        msg("", ts="5.0"),
        {"user": "U1", "ts": "6.0"},  # no text at all
        msg(ERROR_REPLY, user=BOT, ts="7.0"),
        msg(f"  {BUSY_REPLY}\n", user=BOT, ts="8.0"),
        msg(ERROR_REPLY + " (more)", user=BOT, ts="9.0"),  # not exactly the error reply
        msg("now", ts="10.0"),
    ]
    block = format_context(messages, bot_user_id=BOT)
    assert block is not None
    assert lines_part(block) == (f"User (U1): here is the file\nAssistant: {ERROR_REPLY} (more)")


def test_custom_drop_texts() -> None:
    messages = thread(("keep", "U1"), ("drop me", BOT), ("now", "U1"))
    block = format_context(messages, bot_user_id=BOT, drop_texts=("drop me ",))
    assert block is not None and lines_part(block) == "User (U1): keep"


def test_bot_recognised_by_user_id_and_by_bot_id() -> None:
    messages = [
        msg("by user id", user=BOT, ts="1.0"),
        {"bot_id": "B1", "text": "by bot id", "ts": "2.0"},
        {"bot_id": "B1", "text": "legacy bot message", "ts": "3.0", "subtype": "bot_message"},
        {"bot_id": "B2", "text": "another bot", "ts": "4.0", "subtype": "bot_message"},
        {"bot_id": "B2", "text": "another bot, no subtype", "ts": "5.0"},
        msg("now", ts="6.0"),
    ]
    block = format_context(messages, bot_user_id=BOT, bot_id="B1")
    assert block is not None
    assert lines_part(block) == (
        "Assistant: by user id\n"
        "Assistant: by bot id\n"
        "Assistant: legacy bot message\n"
        "User (B2): another bot, no subtype"
    )
    # without bot_id, B1's message is just another author
    block = format_context(messages[1:2] + messages[-1:], bot_user_id=BOT)
    assert block is not None and lines_part(block) == "User (B1): by bot id"


def test_long_text_cut_at_2000() -> None:
    long_text = "a" * 2_000 + "b" * 500
    block = format_context([msg(long_text, ts="1.0"), msg("now", ts="2.0")], bot_user_id=BOT)
    assert block is not None
    assert lines_part(block) == "User (U1): " + "a" * 2_000 + "..."
    exact = "c" * 2_000
    block = format_context([msg(exact, ts="1.0"), msg("now", ts="2.0")], bot_user_id=BOT)
    assert block is not None and lines_part(block) == "User (U1): " + exact


def test_budget_keeps_newest_and_counts_omitted() -> None:
    # each line is "User (U1): " (11) + 2,000 + "..." (3) = 2,014 chars, costing 2,015
    messages = [msg(f"{i}" * 2_100, ts=f"{i}.0") for i in range(1, 9)]
    messages.append(msg("now", ts="99.0"))
    block = format_context(messages, bot_user_id=BOT)
    assert block is not None
    lines = block.split("\n")
    # 5 lines cost 10,075 <= 12,000; a 6th would cost 12,090
    assert lines[0] == CONTEXT_HEADER
    assert lines[1] == "[... 3 earlier messages omitted]"
    assert [line[11] for line in lines[2:-1]] == ["4", "5", "6", "7", "8"]
    assert lines[-1] == CONTEXT_FOOTER


def test_budget_boundary_is_inclusive() -> None:
    # two lines of exactly 5 chars cost 6 each: budget 12 fits both, 11 only the newest
    messages = [msg("a", user="U", ts="1.0"), msg("b", user="U", ts="2.0"), msg("now", ts="3.0")]
    # "User (U): a" is 11 chars, cost 12
    both = format_context(messages, bot_user_id=BOT, budget_chars=24)
    assert both is not None and "omitted" not in both
    one = format_context(messages, bot_user_id=BOT, budget_chars=23)
    assert one is not None
    assert one == (
        "[Previous conversation context]\n"
        "[... 1 earlier messages omitted]\n"
        "User (U): b\n"
        "[End of previous context]"
    )


def test_budget_stops_at_first_line_that_does_not_fit() -> None:
    # a short older line behind a long one is omitted too: lines are contiguous, newest first
    messages = [
        msg("short", ts="1.0"),
        msg("x" * 50, ts="2.0"),
        msg("y", ts="3.0"),
        msg("now", ts="4.0"),
    ]
    block = format_context(messages, bot_user_id=BOT, budget_chars=30)
    assert block is not None
    assert block.split("\n")[1:3] == ["[... 2 earlier messages omitted]", "User (U1): y"]


_message = st.fixed_dictionaries(
    {
        "user": st.sampled_from(["U1", "U2", BOT]),
        # no line breaks inside texts, so the lines of a block can be counted
        "text": st.text(
            st.characters(blacklist_characters="\n\r\x1c\x1d\x1e\x85\u2028\u2029"), max_size=2_600
        ),
        "ts": st.integers(1, 10**6).map(lambda n: f"{n}.0"),
    },
    optional={"subtype": st.sampled_from(["file_share", "channel_join"])},
)


def _eligible(messages: list[dict[str, Any]]) -> int:
    """A plain model of the filter: all but the last, no foreign subtype, non-empty text."""
    drop = {ERROR_REPLY, BUSY_REPLY}
    return sum(
        1
        for m in messages[:-1]
        if m.get("subtype") in (None, "file_share")
        and m["text"].strip()
        and m["text"].strip() not in drop
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(_message, max_size=40), st.integers(min_value=1, max_value=CONTEXT_BUDGET_CHARS))
def test_property_lines_within_budget_and_counted(
    messages: list[dict[str, Any]], budget: int
) -> None:
    block = format_context(messages, bot_user_id=BOT, budget_chars=budget)
    eligible = _eligible(messages)
    if block is None:
        # nothing eligible, or even the newest line alone is over the budget
        assert eligible == 0 or budget < 2_020
        return
    body = lines_part(block)
    # sum(len(line) + 1) over the kept lines == len("\n".join(lines)) + 1
    assert len(body) + 1 <= budget
    kept = body.count("\n") + 1
    second = block.split("\n")[1]
    omitted = int(second.split()[1]) if second.startswith("[... ") else 0
    assert kept + omitted == eligible


@settings(max_examples=100, deadline=None)
@given(st.lists(_message, max_size=40))
def test_property_default_budget(messages: list[dict[str, Any]]) -> None:
    block = format_context(messages, bot_user_id=BOT)
    if _eligible(messages):
        assert block is not None  # one line (at most ~2,020 chars) always fits 12,000
        assert len(lines_part(block)) + 1 <= CONTEXT_BUDGET_CHARS
    else:
        assert block is None
