"""Tests for ark.slack.render.plain: escaping that defuses mentions, and lossless splitting."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ark.bedrock.types import Source
from ark.slack.render.plain import (
    MAX_TEXT_CHARS,
    SOURCES_HEADING,
    escape,
    render_plain,
    sources_block,
    split_text,
)

LIVE_TOKENS = ("<!", "<@", "<#")
# every `&` in escaped text starts a whole entity
_WELL_FORMED_RE = re.compile(r"(?:[^&]|&(?:amp|lt|gt);)*", re.DOTALL)


def _non_ws(text: str) -> str:
    return "".join(c for c in text if not c.isspace())


def _assert_no_live_tokens(parts: list[str]) -> None:
    for part in parts:
        for token in LIVE_TOKENS:
            assert token not in part


def _slack_unescape(text: str) -> str:
    """What Slack shows for escaped text (it decodes exactly these three entities)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# --- escape --------------------------------------------------------------------------------


def test_escape_basic() -> None:
    assert escape("a < b > c & d") == "a &lt; b &gt; c &amp; d"
    assert escape("plain") == "plain"


def test_escape_ampersand_first() -> None:
    assert escape("&lt;") == "&amp;lt;"
    assert escape("a&lt;") == "a&amp;lt;"
    assert _slack_unescape(escape("a&lt;")) == "a&lt;"  # the user sees what the agent wrote


@pytest.mark.parametrize(
    "text",
    ["<!channel>", "<!here>", "<!everyone>", "<@U123>", "<#C1>", "<!subteam^S1>", "<https://x|y>"],
)
def test_escape_defuses_special_tokens(text: str) -> None:
    out = escape(f"hey {text} there")
    assert "<" not in out
    assert ">" not in out
    assert _slack_unescape(out) == f"hey {text} there"


def test_render_plain_defuses_special_tokens() -> None:
    parts = render_plain("Ping <!channel> and <!here>, also <@U123> in <#C1|general>.")
    assert parts == [
        "Ping &lt;!channel&gt; and &lt;!here&gt;, also &lt;@U123&gt; in &lt;#C1|general&gt;."
    ]
    _assert_no_live_tokens(parts)


# --- sources_block -------------------------------------------------------------------------


def test_sources_block_with_and_without_url() -> None:
    block = sources_block(
        [
            Source("report.pdf, p. 3"),
            Source("Wiki page", "https://wiki.example.com/a?b=1&c=2"),
        ]
    )
    assert block == (
        f"{SOURCES_HEADING}\n"
        "• report.pdf, p. 3\n"
        "• <https://wiki.example.com/a?b=1&amp;c=2|Wiki page>"
    )


def test_sources_block_escapes_names() -> None:
    block = sources_block([Source("<!channel> & co", "https://x.example/"), Source("<@U1>")])
    assert "<!channel>" not in block
    assert "<@U1>" not in block
    assert "&lt;!channel&gt; &amp; co" in block
    _assert_no_live_tokens([block])


@pytest.mark.parametrize("url", ["https://x.example/a|b", "https://x.example/a>b"])
def test_sources_block_unsafe_url_shows_name_only(url: str) -> None:
    block = sources_block([Source("Doc", url)])
    assert block == f"{SOURCES_HEADING}\n• Doc"


# --- split_text ----------------------------------------------------------------------------


def test_short_text_is_one_part() -> None:
    assert split_text("hello") == ["hello"]
    assert split_text("\n\nhello\n\n") == ["hello"]


def test_empty_text_has_no_parts() -> None:
    assert split_text("") == []
    assert split_text("\n \n") == []


def test_split_prefers_blank_lines() -> None:
    para1 = "a" * 40 + "\nline two of para one"
    para2 = "b " * 20
    text = f"{para1}\n\n{para2}\nc"
    parts = split_text(text, limit=90)
    assert parts[0] == para1  # cut at the blank line, not the later newline or spaces
    assert all(len(p) <= 90 for p in parts)
    assert _non_ws("".join(parts)) == _non_ws(text)


def test_split_falls_back_to_newline_then_space() -> None:
    text = "x" * 30 + "\n" + "y" * 30 + " " + "z" * 60
    parts = split_text(text, limit=70)
    assert parts[0] == "x" * 30  # the newline wins over a later space
    text = "x" * 30 + " " + "y" * 30 + " " + "z" * 60
    parts = split_text(text, limit=70)
    assert parts[0] == "x" * 30 + " " + "y" * 30  # no newline: the last space
    text = " ".join(["word"] * 30)
    parts = split_text(text, limit=50)
    assert all(len(p) <= 50 for p in parts)
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in parts)
    assert _non_ws("".join(parts)) == _non_ws(text)


def test_split_long_text_at_default_limit() -> None:
    paragraphs = [f"Paragraph {i}. " + "lorem ipsum " * 50 for i in range(40)]
    text = "\n\n".join(paragraphs)
    parts = split_text(text)
    assert len(parts) > 1
    assert all(len(p) <= MAX_TEXT_CHARS for p in parts)
    assert all(p.startswith("Paragraph ") for p in parts)  # every cut fell on a blank line
    assert _non_ws("".join(parts)) == _non_ws(text)


def test_hard_split_of_a_very_long_word() -> None:
    word = "".join(chr(ord("a") + i % 26) for i in range(10_000))
    parts = split_text(word)
    assert [len(p) for p in parts] == [4_000, 4_000, 2_000]
    assert "".join(parts) == word


@pytest.mark.parametrize("prefix_len", range(3_990, 4_001))
def test_hard_split_never_cuts_an_entity(prefix_len: int) -> None:
    text = "x" * prefix_len + escape("&<>&&") + "y" * 5_000
    parts = split_text(text)
    assert all(len(p) <= MAX_TEXT_CHARS for p in parts)
    assert "".join(parts) == text
    for part in parts:
        assert _WELL_FORMED_RE.fullmatch(part), part[-8:]


def test_split_with_small_limits_keeps_entities_whole() -> None:
    text = escape("&" * 50)
    for limit in range(6, 20):
        parts = split_text(text, limit=limit)
        assert "".join(parts) == text
        assert all(len(p) <= limit for p in parts)
        assert all(_WELL_FORMED_RE.fullmatch(p) for p in parts)


# --- render_plain --------------------------------------------------------------------------


def test_render_plain_with_sources() -> None:
    parts = render_plain(
        "  The answer is 42 & more.  \n", [Source("a.pdf"), Source("Site", "https://s.example/")]
    )
    assert parts == [
        "The answer is 42 &amp; more.\n\n*Sources:*\n• a.pdf\n• <https://s.example/|Site>"
    ]


def test_render_plain_without_sources() -> None:
    assert render_plain("hi\n") == ["hi"]


def test_render_plain_sources_only() -> None:
    assert render_plain("   ", [Source("a.pdf")]) == ["*Sources:*\n• a.pdf"]


def test_render_plain_empty() -> None:
    assert render_plain("") == []
    assert render_plain(" \n ") == []


def test_render_plain_long_answer_with_sources() -> None:
    text = "\n\n".join("p" * 1_000 for _ in range(10))
    parts = render_plain(text, [Source("a.pdf")])
    assert all(len(p) <= MAX_TEXT_CHARS for p in parts)
    assert parts[-1].endswith("*Sources:*\n• a.pdf")
    assert _non_ws("".join(parts)) == _non_ws(text) + _non_ws("*Sources:*\n• a.pdf")


# --- properties ----------------------------------------------------------------------------

_PIECES = st.one_of(
    st.sampled_from(
        [
            "&",
            "<",
            ">",
            " ",
            "\n",
            "\n\n",
            "\t",
            "<!channel>",
            "<!here>",
            "<@U123>",
            "<#C1>",
            "&amp;",
            "&lt;",
            "<!",
            "<@",
            "<#",
        ]
    ),
    st.text(max_size=40),
    st.text(alphabet="ab&<", min_size=200, max_size=5_000),
    st.text(alphabet="ab \n&<>", min_size=200, max_size=3_000),
)
_TEXTS = st.lists(_PIECES, max_size=40).map("".join)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXTS)
def test_property_render_plain(text: str) -> None:
    parts = render_plain(text)
    assert all(len(p) <= MAX_TEXT_CHARS for p in parts)
    assert all(p.strip() for p in parts)
    _assert_no_live_tokens(parts)
    assert _non_ws("".join(parts)) == _non_ws(escape(text))
    for part in parts:
        assert _WELL_FORMED_RE.fullmatch(part)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXTS, limit=st.integers(min_value=6, max_value=300))
def test_property_split_text_any_limit(text: str, limit: int) -> None:
    escaped = escape(text)
    parts = split_text(escaped, limit=limit)
    assert all(len(p) <= limit for p in parts)
    _assert_no_live_tokens(parts)
    assert _non_ws("".join(parts)) == _non_ws(escaped)
    for part in parts:
        assert _WELL_FORMED_RE.fullmatch(part)
