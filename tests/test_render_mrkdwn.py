"""Tests for ark.slack.render.mrkdwn: markdown → Slack mrkdwn (the fallback path) and its
splitting under the text limit."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it.token import Token

from ark.slack.render.model import MAX_TEXT_FALLBACK_CHARS, SlackMessage
from ark.slack.render.mrkdwn import (
    HR_LINE,
    MIN_LIMIT,
    _Out,
    _render_inline,
    _tree,
    render_mrkdwn,
    to_mrkdwn,
)
from ark.slack.render.safety import ZWSP, has_live_token
from tests.markdown_corpus import BLOCK as _BLOCK
from tests.markdown_corpus import HUGE as _HUGE
from tests.markdown_corpus import alnum as _alnum
from tests.markdown_corpus import is_subsequence as _is_subsequence
from tests.markdown_corpus import report as _report
from tests.markdown_corpus import visible as _visible

Z = ZWSP


def texts(markdown: str, limit: int = MAX_TEXT_FALLBACK_CHARS) -> list[str]:
    messages = render_mrkdwn(markdown, limit=limit)
    for message in messages:
        assert isinstance(message, SlackMessage)
        assert message.blocks == ()
    return [m.text for m in messages]


# --- emphasis -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("**b**", "*b*"),  # the reference left `**b**`
        ("__b__", "*b*"),
        ("*i*", "_i_"),  # the reference let Slack show this bold
        ("_i_", "_i_"),
        ("~~s~~", "~s~"),
        ("a **bold** and *it* and ~~gone~~.", "a *bold* and _it_ and ~gone~."),
        ("***both***", "_*both*_"),
        ("**a _b_ c**", "*a _b_ c*"),
        ("**outer **inner** outer**", "*outer inner outer*"),  # no `*` inside `*…*`
        ("(**b**)", "(*b*)"),
    ],
)
def test_emphasis(source: str, expected: str) -> None:
    assert to_mrkdwn(source) == expected


def test_strong_is_not_left_double_or_turned_italic() -> None:
    out = to_mrkdwn("**b**")
    assert "**" not in out
    assert out != "_b_"


def test_intra_word_emphasis_drops_markers() -> None:
    assert to_mrkdwn("foo**bar**baz") == "foobarbaz"
    assert to_mrkdwn("foo*bar*baz") == "foobarbaz"
    assert to_mrkdwn("foo**bar** baz") == "foobar baz"


def test_emphasis_over_a_line_break_is_wrapped_per_line() -> None:
    assert to_mrkdwn("**multi\nline** end") == "*multi*\n*line* end"


def test_empty_emphasis_renders_nothing() -> None:
    # CommonMark never yields an empty span, so feed the renderer one directly
    children = [
        Token("text", "", 0, content="a "),
        Token("strong_open", "strong", 1, markup="**"),
        Token("strong_close", "strong", -1, markup="**"),
        Token("text", "", 0, content=" b"),
    ]
    out = _Out()
    _render_inline(_tree(children), out, frozenset(), "", "")
    assert out.text() == "a  b"


# --- links ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("[t](https://example.com/a)", "<https://example.com/a|t>"),
        ("[t](https://x.io/?a=1&b=2)", "<https://x.io/?a=1&amp;b=2|t>"),
        # markdown-it percent-encodes `|` in a destination, so the link stays valid
        ("[t](https://a.io/x|y)", "<https://a.io/x%7Cy|t>"),
        ("![alt text](https://img.io/p.png)", "<https://img.io/p.png|alt text>"),
        ("[**bold** label](https://a.io)", "<https://a.io|bold label>"),
        ("[a & <b>](https://a.io)", "<https://a.io|a &amp; &lt;b&gt;>"),
        ("[](https://a.io)", "<https://a.io>"),
        ("<https://auto.io/x>", "<https://auto.io/x>"),
        ("see https://bare.io/?a=1&b=2 ok", "see https://bare.io/?a=1&amp;b=2 ok"),
        ("[t](ftp://files.io/x)", "t (ftp://files.io/x)"),
        ("[t](/relative/path)", "t (/relative/path)"),
        ("<mail@example.com>", "mail@example.com"),
        ("[x](@U123)", "x (@U123)"),
        ("[x](#C0123)", "x (#C0123)"),
        ("[x](<!here>)", "x (!here)"),
    ],
)
def test_links(source: str, expected: str) -> None:
    assert to_mrkdwn(source) == expected


def test_link_with_mention_like_url_is_text() -> None:
    out = to_mrkdwn("[t](https://x.io/@here)")
    assert out == f"t (https://x.io/@{Z}here)"
    assert not has_live_token(out)


def test_link_label_cannot_ping() -> None:
    out = to_mrkdwn("[@channel](https://a.io)")
    assert out == f"<https://a.io|@{Z}channel>"
    assert not has_live_token(out)


# --- blocks ---------------------------------------------------------------------------------


def test_heading_is_a_bold_line() -> None:
    assert to_mrkdwn("# Heading") == "*Heading*"
    assert to_mrkdwn("## A **strong** _word_") == "*A strong _word_*"
    assert to_mrkdwn("Setext\n===\n\ntext") == "*Setext*\n\ntext"


def test_nested_lists_three_deep() -> None:
    source = "- one\n  - two\n    - three\n    - three b\n- four"
    assert to_mrkdwn(source) == ("• one\n    ◦ two\n        ▪ three\n        ▪ three b\n• four")


def test_ordered_list_keeps_its_start_number() -> None:
    assert to_mrkdwn("3. c\n4. d\n1. e") == "3. c\n4. d\n5. e"


def test_ordered_list_may_start_at_zero() -> None:
    assert to_mrkdwn("0. zero\n1. one\n2. two") == "0. zero\n1. one\n2. two"
    assert to_mrkdwn("- a\n\n  0. nested") == "• a\n    0. nested"


def test_mixed_nested_lists() -> None:
    source = "1. first\n   - sub *it*\n2. second\n\n   more of second"
    assert to_mrkdwn(source) == "1. first\n    ◦ sub _it_\n2. second\n    more of second"


def test_list_item_starting_with_code() -> None:
    assert to_mrkdwn("- ```\n  code\n  ```\n- x") == "•\n    ```\n    code\n    ```\n• x"


def test_block_quotes() -> None:
    assert to_mrkdwn("> quoted **b**\n> line two") == "> quoted *b*\n> line two"
    assert to_mrkdwn("> outer\n>\n> > inner") == "> outer\n> > inner"


def test_fenced_code_verbatim_with_tag_dropped() -> None:
    source = "```python\nx = a*b_c < d | e & f  # **not bold**\n  indented\n```"
    assert to_mrkdwn(source) == (
        "```\nx = a*b_c &lt; d | e &amp; f  # **not bold**\n  indented\n```"
    )


def test_backtick_runs_cannot_close_a_code_block() -> None:
    assert to_mrkdwn("~~~\n```\nx\n~~~") == f"```\n``{Z}`\nx\n```"
    assert to_mrkdwn("use `` ``` `` here") == f"use ``{Z}`{Z}`` here"


def test_indented_code_block() -> None:
    assert to_mrkdwn("text\n\n    code *x*\n") == "text\n\n```\ncode *x*\n```"


def test_inline_code_verbatim() -> None:
    assert to_mrkdwn("run `a*b_c <x> | y` now") == "run `a*b_c &lt;x&gt; | y` now"


def test_table_as_aligned_code_block() -> None:
    source = "| Name | Qty | Note |\n|:--|--:|:-:|\n| apple | 3 | **ok** |\n| kiwi | 12 | a&b |"
    assert to_mrkdwn(source) == (
        "```\nName  | Qty | Note\n------+-----+-----\napple |   3 |  ok\nkiwi  |  12 | a&amp;b\n```"
    )


def test_table_wide_characters_count_double() -> None:
    source = "| a | b |\n|---|---|\n| 中文 | x |\n| ok | y |"
    assert to_mrkdwn(source) == "```\na    | b\n-----+--\n中文 | x\nok   | y\n```"


def test_hr_html_and_breaks() -> None:
    assert to_mrkdwn("a\n\n---\n\nb") == f"a\n\n{HR_LINE}\n\nb"
    assert to_mrkdwn("<div>\n<b>x</b>\n</div>") == "&lt;div&gt;\n&lt;b&gt;x&lt;/b&gt;\n&lt;/div&gt;"
    assert to_mrkdwn("a <span>b</span>") == "a &lt;span&gt;b&lt;/span&gt;"
    assert to_mrkdwn("soft\nbreak  \nhard\\\nback") == "soft\nbreak\nhard\nback"


def test_escaping() -> None:
    assert to_mrkdwn("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert to_mrkdwn("AT&T &amp; &lt;x&gt;") == "AT&amp;T &amp; &lt;x&gt;"


def test_reference_definitions_are_kept() -> None:
    assert (
        to_mrkdwn("see [t][r]\n\n[r]: https://r.io") == "see <https://r.io|t>\n\n[r]: https://r.io"
    )


@pytest.mark.parametrize("sep", ["\x0c", "\x0b", "\x85", "\u2028", "\u2029", "\x1c"])
def test_unusual_line_separators_do_not_duplicate_text(sep: str) -> None:
    assert to_mrkdwn(f"x{sep}y\n\nz") == f"x{sep}y\n\nz"


def test_crlf_input() -> None:
    assert to_mrkdwn("a\r\n\r\n- b\r\n- c\r\n") == "a\n\n• b\n• c"


# --- safety ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("hi <!channel> there", f"hi &lt;{Z}!channel&gt; there"),
        ("hi <!here>", f"hi &lt;{Z}!here&gt;"),
        ("hi <!everyone>", f"hi &lt;{Z}!everyone&gt;"),
        ("hi &lt;!here&gt;", f"hi &lt;{Z}!here&gt;"),
        ("ping <@U123ABC>", f"ping &lt;{Z}@U123ABC&gt;"),
        ("ping <@W123ABC>", f"ping &lt;{Z}@W123ABC&gt;"),
        ("in <#C0123|x>", f"in &lt;{Z}#C0123|x&gt;"),
        ("team <!subteam^S1>", f"team &lt;{Z}!subteam^S1&gt;"),
        ("@everyone look", f"@{Z}everyone look"),
        ("hey @here and @channel", f"hey @{Z}here and @{Z}channel"),
        ("`<!here>`", f"`&lt;{Z}!here&gt;`"),
        ("```\n<!channel>\n```", f"```\n&lt;{Z}!channel&gt;\n```"),
        ("[x](@U123)", "x (@U123)"),
    ],
)
def test_hostile_tokens_are_defused(source: str, expected: str) -> None:
    out = to_mrkdwn(source)
    assert out == expected
    assert not has_live_token(out)
    assert [m.text for m in render_mrkdwn(source)] == [out]


def test_html_block_of_hostile_tokens() -> None:
    out = to_mrkdwn("<!here> <@U123ABC> <#C0123> <!subteam^S1^x>")
    assert not has_live_token(out)
    assert "<" not in out


# --- splitting ------------------------------------------------------------------------------


def test_empty_and_whitespace_input() -> None:
    assert render_mrkdwn("") == []
    assert render_mrkdwn("  \n\t\n ") == []
    assert to_mrkdwn("") == ""


def test_limit_too_small() -> None:
    with pytest.raises(ValueError):
        render_mrkdwn("x", limit=MIN_LIMIT - 1)


def test_short_answer_is_one_message() -> None:
    assert texts("**hi** there\n\n- a\n- b") == ["*hi* there\n\n• a\n• b"]


def test_long_report_splits_at_block_boundaries() -> None:
    source = _report(30_000)
    parts = texts(source)
    assert len(parts) >= 8
    assert all(0 < len(p) <= MAX_TEXT_FALLBACK_CHARS for p in parts)
    # only whole blocks were moved: the parts are the whole rendering, cut at blank lines
    assert "\n\n".join(parts) == to_mrkdwn(source)


def test_long_code_block_is_closed_and_reopened() -> None:
    lines = [f"row {i}: a*b_c <x> | y & z" for i in range(400)]
    source = "```sql\n" + "\n".join(lines) + "\n```"
    assert len(source) > 10_000
    parts = texts(source)
    assert len(parts) >= 3
    body: list[str] = []
    for part in parts:
        assert len(part) <= MAX_TEXT_FALLBACK_CHARS
        assert part.startswith("```\n")
        assert part.endswith("\n```")
        assert part.count("```") == 2
        body += part.split("\n")[1:-1]
    expected = [
        line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") for line in lines
    ]
    assert body == expected


def test_long_code_line_is_cut_inside_fences() -> None:
    source = "```\n" + "x&y" * 5000 + "\n```"
    parts = texts(source)
    assert len(parts) >= 4
    for part in parts:
        assert len(part) <= MAX_TEXT_FALLBACK_CHARS
        assert part.startswith("```\n") and part.endswith("\n```")
        inner = part[4:-4]
        assert re.fullmatch(r"(?:[xy]|&amp;)*", inner), inner[:40]  # no entity cut in half
    assert "".join(p[4:-4] for p in parts) == ("x&y" * 5000).replace("&", "&amp;")


def test_long_table_repeats_header() -> None:
    rows = "\n".join(f"| r{i} | {i} |" for i in range(600))
    source = "| name | value |\n|---|--:|\n" + rows
    parts = texts(source)
    assert len(parts) >= 2
    seen: list[str] = []
    for part in parts:
        assert len(part) <= MAX_TEXT_FALLBACK_CHARS
        lines = part.split("\n")
        assert lines[:3] == ["```", "name | value", "-----+------"]
        assert lines[-1] == "```"
        seen += lines[3:-1]
    assert [line.split(" | ")[0].strip() for line in seen] == [f"r{i}" for i in range(600)]


def test_long_list_splits_between_items() -> None:
    source = "\n".join(f"- item {i} " + "word " * 20 + f"\n  - sub {i}" for i in range(200))
    parts = texts(source)
    assert len(parts) >= 3
    for part in parts:
        assert len(part) <= MAX_TEXT_FALLBACK_CHARS
        assert part.startswith("• item ")
        assert part.split("\n")[-1].startswith("    ◦ sub ")


def test_code_in_list_item_split_keeps_indented_fences() -> None:
    code = "\n".join(f"   line {i}" for i in range(1000))
    source = "1. step\n\n   ```\n" + code + "\n   ```\n"
    parts = texts(source)
    assert len(parts) >= 3
    assert parts[0].startswith("1. step\n    ```\n")
    for part in parts:
        assert len(part) <= MAX_TEXT_FALLBACK_CHARS
        assert part.endswith("\n    ```")
    for part in parts[1:]:
        assert part.startswith("    ```\n    line ")


def test_long_paragraph_cut_outside_links_bold_and_entities() -> None:
    source = " ".join(f"w{i} **bold {i}** [l {i}](https://x.io/{i}?a&b) a&b" for i in range(1500))
    parts = texts(source)
    assert len(parts) >= 10
    for part in parts:
        assert len(part) <= MAX_TEXT_FALLBACK_CHARS
        assert part.count("<") == part.count(">")  # whole links only
        assert part.count("*") % 2 == 0  # whole bold spans only
        assert re.fullmatch(r"(?:[^&]|&(?:amp|lt|gt);)*", part, re.DOTALL)
    assert " ".join(parts) == to_mrkdwn(source)


def test_long_quote_stays_quoted() -> None:
    source = "\n".join(f"> line {i} " + "text " * 15 for i in range(300))
    source = source.replace("> line 100", ">\n> line 100")  # two paragraphs in one quote
    parts = texts(source)
    assert len(parts) >= 3
    for part in parts:
        assert all(line.startswith(">") for line in part.split("\n"))


def test_huge_word_hard_cut_never_splits_an_entity() -> None:
    parts = texts("x" * 9_001 + "<" * 3_000)
    assert all(len(p) <= MAX_TEXT_FALLBACK_CHARS for p in parts)
    assert all(re.fullmatch(r"(?:x|&lt;)*", p) for p in parts)
    assert "".join(parts) == "x" * 9_001 + "&lt;" * 3_000


def test_cut_cannot_create_a_live_broadcast() -> None:
    # a hard cut just before `@here` inside a word must not leave it live at a part's start
    for offset in range(-3, 4):
        source = "x" * (MAX_TEXT_FALLBACK_CHARS + offset) + "@here" + "y" * 10
        for part in texts(source):
            assert len(part) <= MAX_TEXT_FALLBACK_CHARS
            assert not has_live_token(part)


# --- properties -----------------------------------------------------------------------------

_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
_LINK_RE = re.compile(r"<[^<>|]*\|([^<>]*)>|<([^<>]*)>")


def _shown(text: str) -> str:
    """What Slack shows of our output, minus link URLs: `<u|t>` → t, `<u>` → u."""
    text = _LINK_RE.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text


def _fence_lines(part: str) -> int:
    return sum(1 for line in part.split("\n") if line.lstrip(" >") == "```")


def _check(markdown: str, limit: int) -> list[str]:
    parts = texts(markdown, limit)
    for part in parts:
        assert part.strip()
        assert len(part) <= limit
        assert not has_live_token(part)
        assert _fence_lines(part) % 2 == 0, part
    return parts


_LIMITS = st.sampled_from([MIN_LIMIT, 700, 1_500, MAX_TEXT_FALLBACK_CHARS])
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(text=st.text(max_size=3_000), limit=_LIMITS)
def test_property_arbitrary_text(text: str, limit: int) -> None:
    parts = _check(text, limit)
    assert _is_subsequence(_alnum(_visible(text)), _alnum(_shown("\n".join(parts))))
    if not text.strip():
        assert parts == []


_MARKUP = "abcXYZ019 \n*_#>-+:=é中😀\t"


@_SETTINGS
@given(text=st.text(alphabet=_MARKUP, max_size=2_000), limit=_LIMITS)
def test_property_markup_text_keeps_every_letter_of_the_input(text: str, limit: int) -> None:
    # without `[`, `<`, `&`, backticks, `~`, `|` and `.`/`)` there are no links, entities,
    # fences, tables or renumbered lists, so every letter and digit of the raw input shows
    parts = _check(text, limit)
    assert _is_subsequence(_alnum(text), _alnum(_shown("\n".join(parts))))


@_SETTINGS
@given(blocks=st.lists(_BLOCK, min_size=1, max_size=12), limit=_LIMITS)
def test_property_generated_markdown(blocks: list[tuple[str, str]], limit: int) -> None:
    source = "\n\n".join(b[0] for b in blocks)
    parts = _check(source, limit)
    joined = "\n".join(parts)
    expected = _alnum(" ".join(b[1] for b in blocks))
    assert _is_subsequence(expected, _alnum(_shown(joined)))
    # nothing duplicated across splits (a split table repeats only its header)
    whole = _alnum(to_mrkdwn(source))
    if "|---|" not in source:
        assert _alnum(joined) == whole
    else:
        assert _is_subsequence(whole, _alnum(joined))


# generous: about 10x the slowest 100 KB input measured (about 1 s)
HUGE_SECONDS = 10.0


@pytest.mark.parametrize("source", _HUGE, ids=range(len(_HUGE)))
def test_100kb_inputs_render(source: str) -> None:
    started = time.perf_counter()
    render_mrkdwn(source)
    assert time.perf_counter() - started < HUGE_SECONDS
    parts = _check(source, MAX_TEXT_FALLBACK_CHARS)
    assert parts


def test_many_spans_in_one_paragraph_take_linear_time() -> None:
    # 100,000 emphasis spans in one paragraph (400 KB): about 3 s when each span's
    # neighbour is found in constant time; a copy of the rest of the paragraph per span
    # (quadratic) took minutes
    source = "*w* " * 100_000
    started = time.perf_counter()
    parts = texts(source)
    assert time.perf_counter() - started < 30.0
    assert "".join(parts).count("_w_") == 100_000
