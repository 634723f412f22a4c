"""Tests for ark.slack.render.safety: no mention or broadcast the agent writes survives, in
any escaped or entity-encoded form markdown would decode into a live token."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ark.slack.render.markdown import render_markdown
from ark.slack.render.mrkdwn import render_mrkdwn
from ark.slack.render.safety import (
    ZWSP,
    defuse,
    has_live_token,
    markdown_decoded,
    unescape,
)

# each decodes, as markdown (escapes, then entities) or as HTML, to a live token
ENCODED = [
    "<\\!channel>",
    "<&#33;channel>",
    "<!chann&#101;l>",
    "<@&#85;123ABC>",
    "&lt;&#33;here&gt;",
    "&lt;&excl;everyone&gt;",
    "&#60;#C123&#62;",
    "&#x3C;!subteam^S1|team>",
    "\\<!here>",
    "&lt!here&gt",
    "<&#0000033;here>",
    "&#64;here",
    "\\@channel",
    "&lt@everyone",
]


def _fields(markdown: str) -> list[str]:
    """Every text Slack renders for `markdown`, on both paths: markdown block text, table
    cells, the notification fallback, and the mrkdwn fallback messages."""
    out: list[str] = []
    for part in render_markdown(markdown, limit=500):
        out.append(part.message.text)
        for block in part.message.blocks:
            if block["type"] == "markdown":
                out.append(block["text"])
            else:
                out.extend(cell["text"] for row in block["rows"] for cell in row)
    out.extend(message.text for message in render_mrkdwn(markdown, limit=500))
    return out


@pytest.mark.parametrize("token", ENCODED)
def test_the_check_sees_decoded_forms(token: str) -> None:
    assert has_live_token(token)


@pytest.mark.parametrize("token", ENCODED)
def test_encoded_tokens_are_defused_and_look_the_same(token: str) -> None:
    out = defuse(token)
    assert not has_live_token(out), out
    assert markdown_decoded(out).replace(ZWSP, "") == markdown_decoded(token)


@pytest.mark.parametrize("token", ENCODED)
def test_encoded_tokens_are_defused_on_every_path(token: str) -> None:
    for source in (
        f"Ping {token} now.",
        f"| a |\n|---|\n| {token} |",
        f"- item {token}\n\n> quoted {token}",
        f"# {token}",
    ):
        fields = _fields(source)
        assert fields
        for text in fields:
            assert not has_live_token(text), (source, text)


def test_escaped_bang_in_a_table_cell_is_defused() -> None:
    (part,) = render_markdown("| a |\n|---|\n| <\\!here> |")
    table = part.message.blocks[-1]
    assert table["rows"][1] == [{"type": "raw_text", "text": f"<{ZWSP}!here>"}]


def test_plain_text_and_other_brackets_are_left_alone() -> None:
    for text in (
        "a < b",
        "<https://x.example>",
        "x@here.com",
        "<!-- c -->",
        "<@lice>",
        "&lt;b&gt;",
    ):
        assert defuse(text) == text


def test_unescape_survives_huge_numeric_references() -> None:
    assert unescape("&#" + "1" * 5_000 + ";") == "\ufffd"
    assert unescape("&#x" + "f" * 5_000 + ";") == "\ufffd"
    assert unescape("&#33;") == "!"


def test_an_escaped_ampersand_is_not_an_entity() -> None:
    # CommonMark: `\&` is a literal `&`, so `\&#33;` shows as `&#33;`, not `!`
    assert markdown_decoded("<\\&#33;here>") == "<&#33;here>"
    assert markdown_decoded("<\\!here>") == "<!here>"
    assert markdown_decoded("\\a") == "\\a"


_PIECES = st.sampled_from(
    [
        *("<", "&lt;", "&lt", "&LT;", "&#60;", "&#x3C;", "&#0060;", "\\", "\\<", "\\!"),
        *("!", "&#33;", "&excl;", "@", "&#64;", "&#x40;", "&commat;", "#", "&num;"),
        *("channel", "here", "everyone", "subteam^", "U1", "W2", "B3", "C4", "G5"),
        *("&#85;", "&#101;", "chann", "l", "e", ";", "&", "&amp;", "`", "|", ">"),
        *(" ", "\n", "a", "x", "[", "]", "(", ")", "*", "_", "0"),
    ]
)
_HOSTILE = st.lists(_PIECES, max_size=40).map("".join)
_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(text=st.one_of(st.text(max_size=500), _HOSTILE))
def test_property_defuse_leaves_no_live_token_in_any_decoded_form(text: str) -> None:
    out = defuse(text)
    assert not has_live_token(out)
    assert out.replace(ZWSP, "") == text.replace(ZWSP, "")  # only zero-width spaces added
    assert defuse(out) == out


@_SETTINGS
@given(text=_HOSTILE)
def test_property_hostile_text_renders_without_live_tokens(text: str) -> None:
    for field in _fields(text):
        assert not has_live_token(field), field
