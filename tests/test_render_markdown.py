"""Tests for ark.slack.render.markdown: the primary Block Kit rendering (`markdown` blocks and
a native `table` block) and its splitting under Slack's limits."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ark.slack.render import tokens
from ark.slack.render.markdown import MIN_LIMIT, render_markdown
from ark.slack.render.model import (
    MAX_BLOCKS,
    MAX_MARKDOWN_CHARS,
    MAX_TABLE_COLUMNS,
    MAX_TABLE_ROWS,
    MAX_TEXT_FALLBACK_CHARS,
    Part,
)
from ark.slack.render.safety import ZWSP, has_live_token
from ark.slack.render.tokens import parser
from tests.markdown_corpus import BLOCK, HUGE, alnum, is_subsequence, report, visible

# generous: about 10x the slowest 100 KB input measured (`[` * 100_000, under 2 s)
HUGE_SECONDS = 20.0


def _markdown(part: Part) -> str:
    return "".join(b["text"] for b in part.message.blocks if b["type"] == "markdown")


def _tables(part: Part) -> list[dict[str, Any]]:
    return [dict(b) for b in part.message.blocks if b["type"] == "table"]


def _cells(table: dict[str, Any]) -> list[list[str]]:
    return [[cell["text"] for cell in row] for row in table["rows"]]


def _shown(parts: list[Part]) -> str:
    """Everything the messages show, in order: markdown text, then the table's cells."""
    out: list[str] = []
    for part in parts:
        out.append(_markdown(part))
        for table in _tables(part):
            out.extend(" ".join(row) for row in _cells(table))
    return "\n".join(out)


def _fence_lines(text: str) -> int:
    """Lines that open or close a backtick fence (whose info string has no backtick)."""
    count = 0
    for line in text.split("\n"):
        body = line.lstrip(" >")
        run = len(body) - len(body.lstrip("`"))
        count += run >= 3 and "`" not in body[run:]
    return count


def _check(markdown: str, limit: int = MAX_MARKDOWN_CHARS) -> list[Part]:
    """Render and assert every Slack limit and the safety rules on every message."""
    parts = render_markdown(markdown, limit=limit)
    for part in parts:
        message = part.message
        blocks = message.blocks
        assert 0 < len(blocks) <= min(2, MAX_BLOCKS)
        assert 0 < len(message.text) <= MAX_TEXT_FALLBACK_CHARS
        assert not has_live_token(message.text)
        text = _markdown(part)
        assert len(text) <= limit
        assert not has_live_token(text)
        assert _fence_lines(text) % 2 == 0, text
        tables = _tables(part)
        assert len(tables) <= 1
        if tables:
            assert blocks[-1]["type"] == "table", "a message ends at its table"
            rows = _cells(tables[0])
            assert 1 <= len(rows) <= MAX_TABLE_ROWS
            assert all(len(row) == len(rows[0]) <= MAX_TABLE_COLUMNS for row in rows)
            assert all(cell and not has_live_token(cell) for row in rows for cell in row)
    return parts


# --- shapes ---------------------------------------------------------------------------------


def test_empty_and_whitespace_give_nothing() -> None:
    assert render_markdown("") == []
    assert render_markdown(" \n\n\t\n") == []


def test_limit_too_small() -> None:
    with pytest.raises(ValueError):
        render_markdown("x", limit=MIN_LIMIT - 1)


def test_short_answer_is_one_markdown_block_with_a_plain_fallback() -> None:
    (part,) = _check("## Plan\n\nUse **bold**, *it* and [docs](https://x.io).\n\n- a\n- b")
    assert part.message.blocks == (
        {
            "type": "markdown",
            "text": "## Plan\n\nUse **bold**, *it* and [docs](https://x.io).\n\n- a\n- b",
        },
    )
    assert part.message.text == "Plan\n\nUse bold, it and docs (https://x.io).\n\n• a\n• b"
    assert part.markdown == "## Plan\n\nUse **bold**, *it* and [docs](https://x.io).\n\n- a\n- b"


def test_table_becomes_a_native_table_that_ends_its_message() -> None:
    source = (
        "Numbers:\n\n| Region | **Sales** | Note |\n|:--|--:|:-:|\n"
        "| EMEA | `12` | [wiki](https://w.io) |\n| APAC |\n\nAfter the table."
    )
    first, second = _check(source)
    prose, table = first.message.blocks
    assert prose == {"type": "markdown", "text": "Numbers:"}
    assert table["column_settings"] == [{"align": "left"}, {"align": "right"}, {"align": "center"}]
    assert _cells(table) == [
        ["Region", "Sales", "Note"],
        ["EMEA", "12", "wiki (https://w.io)"],
        ["APAC", " ", " "],  # a short row is padded: a raw_text cell needs some text
    ]
    assert second.message.blocks == ({"type": "markdown", "text": "After the table."},)
    assert first.markdown.endswith("| APAC |")  # the fallback gets the table's own source


def test_table_without_alignment_has_no_column_settings() -> None:
    (part,) = _check("| a | b |\n|---|---|\n| 1 | 2 |")
    (table,) = part.message.blocks
    assert "column_settings" not in table
    assert part.message.text == "a | b\n1 | 2"


def test_long_table_is_split_with_its_header_repeated() -> None:
    rows = [f"| r{i} | {i * 3} |" for i in range(250)]
    source = "Intro.\n\n| Name | Value |\n|---|--:|\n" + "\n".join(rows) + "\n\nOutro."
    parts = _check(source)
    tables = [t for p in parts for t in _tables(p)]
    assert len(tables) == 3
    assert [len(t["rows"]) for t in tables] == [100, 100, 53]
    assert all(_cells(t)[0] == ["Name", "Value"] for t in tables)
    body = [row[0] for t in tables for row in _cells(t)[1:]]
    assert body == [f"r{i}" for i in range(250)]
    assert _markdown(parts[0]) == "Intro."
    assert _markdown(parts[-1]) == "Outro."


def test_two_tables_each_get_their_own_message() -> None:
    source = "A:\n\n| x |\n|---|\n| 1 |\n\nB:\n\n| y |\n|---|\n| 2 |\n\nDone."
    parts = _check(source)
    assert [[b["type"] for b in p.message.blocks] for p in parts] == [
        ["markdown", "table"],
        ["markdown", "table"],
        ["markdown"],
    ]


def test_table_wider_than_slack_allows_stays_in_markdown() -> None:
    header = "| " + " | ".join(f"c{i}" for i in range(25)) + " |"
    rule = "|" + "---|" * 25
    row = "| " + " | ".join(str(i) for i in range(25)) + " |"
    (part,) = _check(f"{header}\n{rule}\n{row}")
    assert [b["type"] for b in part.message.blocks] == ["markdown"]
    assert _markdown(part) == f"{header}\n{rule}\n{row}"


def test_wide_long_table_in_markdown_repeats_its_header() -> None:
    header = "| " + " | ".join(f"col{i}" for i in range(22)) + " |"
    rule = "|" + "---|" * 22
    rows = ["| " + " | ".join(f"v{r}.{i}" for i in range(22)) + " |" for r in range(200)]
    parts = _check("\n".join([header, rule, *rows]), limit=4_000)
    assert len(parts) > 3
    for part in parts:
        lines = _markdown(part).split("\n")
        assert lines[:2] == [header, rule]
    shown = [line for p in parts for line in _markdown(p).split("\n")[2:]]
    assert shown == rows


def test_long_code_block_is_closed_and_reopened_with_its_info_string() -> None:
    lines = [f"row {i}: a*b_c <x> | y & z" for i in range(600)]
    source = "Query:\n\n```sql\n" + "\n".join(lines) + "\n```\n\nThat is all."
    parts = _check(source)
    assert len(parts) >= 2
    code: list[str] = []
    for part in parts:
        text = _markdown(part)
        assert text.count("```sql") == text.count("```") // 2
        inside = False
        for line in text.split("\n"):
            if line.startswith("```"):
                inside = not inside
            elif inside:
                code.append(line)
    assert code == lines
    assert _markdown(parts[-1]).endswith("```\n\nThat is all.")


def test_long_list_splits_between_items_and_stays_tight() -> None:
    items = [f"{n}. item number {n} " + "word " * 60 for n in range(1, 80)]
    parts = _check("\n".join(items), limit=4_000)
    assert len(parts) > 3
    shown = [line for p in parts for line in _markdown(p).split("\n")]
    assert shown == [item.rstrip() for item in items]  # no blank line between items


def test_huge_list_item_with_a_fence_keeps_the_fence_balanced() -> None:
    code = "\n".join(f"   step {i} " + "x" * 40 for i in range(200))
    source = f"1. Run this:\n\n   ```bash\n{code}\n   ```\n2. Then this."
    parts = _check(source, limit=2_000)
    assert len(parts) > 3
    assert alnum(_shown(parts)).count("step") == 200


def test_long_line_is_cut_outside_links_and_bold() -> None:
    words = " ".join(
        f"word{i} **bold {i} text** and [a link {i}](https://x.io/{i})" for i in range(400)
    )
    parts = _check(words, limit=2_000)
    assert len(parts) > 5
    for part in parts:
        text = _markdown(part)
        assert text.count("**") % 2 == 0
        assert text.count("[") == text.count("](") == text.count(")")


def test_hostile_tokens_are_defused_in_markdown_cells_and_text() -> None:
    source = (
        "Hey <!channel> and @here, ping <@U123ABC> in <#C999|general>.\n\n"
        "| who |\n|---|\n| <!everyone> |\n| &lt;!here&gt; |"
    )
    (part,) = _check(source)
    text = _markdown(part)
    assert f"<{ZWSP}!channel>" in text and f"@{ZWSP}here" in text
    assert f"<{ZWSP}@U123ABC>" in text and f"<{ZWSP}#C999|general>" in text
    (table,) = _tables(part)
    assert _cells(table)[1:] == [[f"<{ZWSP}!everyone>"], [f"<{ZWSP}!here>"]]
    assert "&lt;" in part.message.text  # the `text` fallback is escaped mrkdwn


def test_fallback_text_is_capped() -> None:
    (part,) = _check("word " * 2_300)
    assert len(part.message.text) == MAX_TEXT_FALLBACK_CHARS
    assert part.message.text.endswith("…")


def test_unusual_line_separators_do_not_duplicate_text() -> None:
    source = "alpha\u2028beta\x0bgamma\n\ndelta\r\nepsilon\rzeta"
    parts = _check(source)
    assert alnum(_shown(parts)) == alnum(source)


def test_long_report_keeps_every_block_once() -> None:
    source = report(60_000)
    parts = _check(source)
    assert len(parts) >= 5

    def lines(text: str) -> list[str]:
        return [line.rstrip() for line in text.split("\n") if line.strip()]

    assert [line for p in parts for line in lines(_markdown(p))] == lines(source)


# --- properties -----------------------------------------------------------------------------

_LIMITS = st.sampled_from([MIN_LIMIT, 1_500, 4_000, MAX_MARKDOWN_CHARS])
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(text=st.text(max_size=3_000), limit=_LIMITS)
def test_property_arbitrary_text(text: str, limit: int) -> None:
    parts = _check(text, limit)
    assert is_subsequence(alnum(visible(text)), alnum(_shown(parts)))
    assert (parts == []) == (not text.strip())


@_SETTINGS
@given(blocks=st.lists(BLOCK, min_size=1, max_size=12), limit=_LIMITS)
def test_property_generated_markdown(blocks: list[tuple[str, str]], limit: int) -> None:
    source = "\n\n".join(b[0] for b in blocks)
    parts = _check(source, limit)
    expected = alnum(" ".join(b[1] for b in blocks))
    assert is_subsequence(expected, alnum(_shown(parts)))
    # nothing duplicated across messages: the parts' markdown is the source, cut up (only a
    # reopened fence repeats its info string)
    joined = "\n".join(p.markdown for p in parts)
    if _fence_lines(joined) == _fence_lines(source):
        assert alnum(joined) == alnum(source)
    else:
        assert is_subsequence(alnum(source), alnum(joined))


@pytest.mark.parametrize("source", HUGE, ids=range(len(HUGE)))
def test_100kb_inputs_render(source: str) -> None:
    started = time.perf_counter()
    render_markdown(source)
    assert time.perf_counter() - started < HUGE_SECONDS
    parts = _check(source)
    assert parts
    assert is_subsequence(alnum(visible(source)), alnum(_shown(parts)))


def test_wide_table_with_a_huge_header_is_still_cut_within_the_limit() -> None:
    header = "| " + " | ".join(f"column {i} " + "h" * 60 for i in range(25)) + " |"
    rule = "|" + "---|" * 25
    rows = ["| " + " | ".join(f"v{r}" for _ in range(25)) + " |" for r in range(60)]
    parts = _check("\n".join([header, rule, *rows]), limit=MIN_LIMIT)
    assert alnum(_shown(parts)) == alnum("\n".join([header, *rows]))


# --- regressions ----------------------------------------------------------------------------


def test_a_line_starting_with_a_triple_backtick_code_span_is_not_a_fence() -> None:
    # a backtick fence's info string cannot hold a backtick: this is a code span, and a
    # split must not "reopen" it as a fence in every message
    first = "```npm install``` then run the build."
    steps = [f"Step {i}: " + "do the thing " * 10 for i in range(200)]
    source = first + " " + "\n".join(steps)
    parts = _check(source)
    assert len(parts) == 3
    joined = "\n".join(_markdown(p) for p in parts)
    assert joined.count("npm install") == 1
    assert _fence_lines(joined) == 0
    assert joined.count("```") == 2
    assert alnum(_shown(parts)) == alnum(visible(source))
    assert _markdown(parts[0]).startswith(first)
    assert _markdown(parts[1]).startswith("Step ")


def test_an_answer_is_parsed_once_when_its_blocks_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    source = report(100_000)
    parsed: list[int] = []
    real = parser()

    class Counting:
        def parse(self, text: str, env: Any = None) -> Any:
            parsed.append(len(text))
            return real.parse(text, env)

    monkeypatch.setattr(tokens, "parser", Counting)
    parts = render_markdown(source)
    assert len(parts) > 5
    assert parsed == [len(source)]  # the text fallbacks reuse the blocks already parsed


def test_fallback_text_keeps_list_numbers_and_nesting() -> None:
    (part,) = _check("0. zero\n1. one\n   - nested\n\n     1. deeper\n2. two")
    assert part.message.text == "0. zero\n1. one\n    • nested\n        1. deeper\n2. two"


def test_reference_links_keep_their_definition_after_a_split() -> None:
    body = "\n\n".join(f"Paragraph {i} " + "filler " * 60 for i in range(12))
    source = (
        "See [the docs][docs] and [Guide] first.\n\n"
        + body
        + '\n\n[docs]: https://docs.example.com/a "Docs"\n[guide]: <https://g.example.com/b c>'
    )
    parts = _check(source, limit=MIN_LIMIT)
    assert len(parts) > 3
    first = _markdown(parts[0])
    hrefs = [
        t.attrGet("href")
        for block in parser().parse(first)
        for t in block.children or ()
        if t.type == "link_open"
    ]
    assert hrefs == ["https://docs.example.com/a", "https://g.example.com/b%20c"]
    assert parts[0].markdown == first  # the mrkdwn fallback of this part gets them too
    assert "https://docs.example.com/a" in parts[0].message.text
    # a part that uses no reference gets no definition
    assert "]:" not in _markdown(parts[1])


def test_reference_definitions_are_not_carried_over_the_limit() -> None:
    label = "x" * 300
    source = f"[a][{label}] " + "word " * 95 + f"\n\n{'y ' * 200}\n\n[{label}]: https://e.example/"
    for part in _check(source, limit=MIN_LIMIT):
        assert len(_markdown(part)) <= MIN_LIMIT
