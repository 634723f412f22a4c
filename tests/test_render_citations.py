"""Footnote markers and the Sources list (ark/slack/render/citations.py)."""

from __future__ import annotations

import time

from ark.bedrock.types import Citation, Source
from ark.slack.render.citations import (
    SOURCES_HEADING,
    compose_answer,
    escape_markdown,
    sources_markdown,
    with_footnotes,
)
from ark.slack.render.markdown import render_markdown
from ark.slack.render.mrkdwn import to_mrkdwn
from ark.slack.render.tokens import FENCE, TABLE, blocks, parser

POLICY = Source("travel-policy.pdf, p. 4", "https://docs.example.com/travel-policy.pdf")
WIKI = Source("Expenses FAQ", "https://example.atlassian.net/wiki/spaces/HR/pages/1")
NO_URL = Source("crm record 0015g00000XyZ")


def test_marker_goes_at_the_end_of_each_cited_span_numbered_like_the_sources() -> None:
    text = "Book economy class. Hotels are capped at 200 USD. Ask your manager."
    citations = (
        Citation((POLICY,), 0, 19),
        Citation((WIKI, POLICY), 20, 49),
    )
    out = with_footnotes(text, citations, (POLICY, WIKI))
    assert out == "Book economy class.[1] Hotels are capped at 200 USD.[1][2] Ask your manager."


def test_a_span_ending_mid_word_or_mid_link_moves_to_the_end_of_that_word() -> None:
    text = "See [the policy](https://x.example/p) now."
    # span_end inside the link destination
    out = with_footnotes(text, (Citation((POLICY,), 0, 25),), (POLICY,))
    assert out == "See [the policy](https://x.example/p)[1] now."
    mid_word = with_footnotes("capital city", (Citation((POLICY,), 0, 3),), (POLICY,))
    assert mid_word == "capital[1] city"


def test_a_span_ending_in_trailing_whitespace_marks_the_last_word() -> None:
    out = with_footnotes("First.\n\nSecond.", (Citation((POLICY,), 0, 8),), (POLICY,))
    assert out == "First.[1]\n\nSecond."


def test_a_marker_never_enters_a_code_block_or_a_table() -> None:
    text = "Run this:\n\n```bash\necho hi\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nDone."
    code_end = text.index("echo hi") + 4
    table_mid = text.index("| 1 |") + 3
    out = with_footnotes(
        text, (Citation((POLICY,), 0, code_end), Citation((WIKI,), 0, table_mid)), (POLICY, WIKI)
    )
    kinds = [b.kind for b in blocks(out)]
    assert kinds == ["paragraph", FENCE, "paragraph", TABLE, "paragraph", "paragraph"]
    assert "echo hi\n```\n\n[1]\n" in out
    assert "| 1 | 2 |\n\n[2]\n" in out
    fence = next(b for b in blocks(out) if b.kind == FENCE)
    assert fence.tokens[0].content == "echo hi\n"


def test_citations_without_spans_or_unknown_sources_add_no_marker() -> None:
    other = Source("not listed")
    text = "Answer."
    assert with_footnotes(text, (Citation((POLICY,)),), (POLICY,)) == text
    assert with_footnotes(text, (Citation((other,), 0, 7),), (POLICY,)) == text


def test_out_of_range_spans_are_clamped() -> None:
    out = with_footnotes("Short.", (Citation((POLICY,), 0, 999),), (POLICY,))
    assert out == "Short.[1]"


def test_sources_list_links_where_a_location_has_an_http_url() -> None:
    hostile = Source("a*b_[c]", "javascript:alert(1)")
    spaced = Source("Spaced", "https://x.example/a b")
    listing = sources_markdown((POLICY, NO_URL, hostile, spaced))
    assert listing.splitlines() == [
        SOURCES_HEADING,
        "",
        "1. [travel-policy.pdf, p. 4](https://docs.example.com/travel-policy.pdf)",
        "2. crm record 0015g00000XyZ",
        "3. a\\*b\\_\\[c\\]",
        "4. Spaced",
    ]


def test_escape_markdown_neutralises_markup_and_newlines() -> None:
    assert (
        escape_markdown("# <b>|x|\n~y~ `z` &amp;") == "\\# \\<b\\>\\|x\\| \\~y\\~ \\`z\\` \\&amp;"
    )


def test_compose_puts_sources_after_the_answer_and_handles_empty_parts() -> None:
    composed = compose_answer("Answer.", (Citation((POLICY,), 0, 7),), (POLICY,))
    assert composed.startswith("Answer.[1]\n\n**Sources**\n\n1. [travel-policy")
    assert compose_answer("  Just text.  ") == "Just text."
    assert compose_answer("", (), (NO_URL,)).startswith(SOURCES_HEADING)
    assert compose_answer("   ") == ""


def test_a_marker_goes_after_an_inline_code_span_not_inside_it() -> None:
    out = with_footnotes("Run `foo bar` now", (Citation((POLICY,), 0, 8),), (POLICY,))
    assert out == "Run `foo bar`[1] now"
    out = with_footnotes("Use ``a ` b`` here.", (Citation((POLICY,), 0, 7),), (POLICY,))
    assert out == "Use ``a ` b``[1] here."
    # a lone backtick opens no code span: the marker ends the word as usual
    out = with_footnotes("a ` b c", (Citation((POLICY,), 0, 3),), (POLICY,))
    assert out == "a `[1] b c"


def test_a_marker_goes_after_link_syntax_not_into_the_link_text() -> None:
    text = "See [the policy](https://x.example/p) now and ![a chart](https://x.example/c.png) too."
    out = with_footnotes(
        text, (Citation((POLICY,), 0, 6), Citation((WIKI,), 0, 50)), (POLICY, WIKI)
    )
    assert out == (
        "See [the policy](https://x.example/p)[1] now and "
        "![a chart](https://x.example/c.png)[2] too."
    )


def test_cjk_markers_stay_where_the_span_ends() -> None:
    text = "東京は日本の首都です。大阪は大きい。"
    citations = (Citation((POLICY,), 0, 2), Citation((WIKI,), 3, 11))
    out = with_footnotes(text, citations, (POLICY, WIKI))
    assert out == "東京[1]は日本の首都です。[2]大阪は大きい。"
    mixed = with_footnotes("Tokyo東京 is big", (Citation((POLICY,), 0, 3),), (POLICY,))
    assert mixed == "Tokyo[1]東京 is big"


def test_many_citations_over_100kb_take_bounded_time() -> None:
    # 1,000 citations over 100 KB of CJK text (no spaces): 6.7 s when each marker scanned
    # to the end of the run, about 0.01 s now; the bound is generous
    text = "日本語のテキスト。" * 11_200
    citations = tuple(Citation((POLICY,), 0, i * 100) for i in range(1, 1_001))
    started = time.perf_counter()
    out = with_footnotes(text, citations, (POLICY,))
    assert time.perf_counter() - started < 2.0
    assert out.count("[1]") == 1_000
    latin = "a" * 100_000  # one long word: every marker goes to its end
    started = time.perf_counter()
    assert with_footnotes(latin, citations, (POLICY,)) == latin + "[1]"
    assert time.perf_counter() - started < 2.0


def _link_hrefs(markdown: str) -> list[str]:
    return [
        str(t.attrGet("href"))
        for block in parser().parse(markdown)
        for t in block.children or ()
        if t.type == "link_open"
    ]


def test_markers_cannot_become_reference_links() -> None:
    text = "Fact one. Fact two.\n\n[1]: https://evil.example/one\n[2]: https://evil.example/two"
    citations = (Citation((POLICY,), 0, 9), Citation((POLICY, WIKI), 10, 19))
    out = with_footnotes(text, citations, (POLICY, WIKI))
    assert out.startswith("Fact one.\\[1] Fact two.\\[1]\\[2]\n\n")
    assert _link_hrefs(out) == []
    # both paths show `[n]`
    (part,) = render_markdown(out)
    assert part.message.text.startswith("Fact one.[1] Fact two.[1][2]")
    assert to_mrkdwn(out).startswith("Fact one.[1] Fact two.[1][2]")


def test_markers_before_a_parenthesis_or_after_a_bracket_are_escaped() -> None:
    out = with_footnotes("東京(注) x", (Citation((POLICY,), 0, 2),), (POLICY,))
    assert out == "東京\\[1](注) x"
    assert _link_hrefs(out) == []
    assert to_mrkdwn(out) == "東京[1](注) x"
    shortcut = "See [guide] now.\n\n[guide]: https://g.example"
    out = with_footnotes(shortcut, (Citation((POLICY,), 0, 11),), (POLICY,))
    assert out.startswith("See [guide]\\[1] now.")
    assert _link_hrefs(out) == ["https://g.example"]  # `[guide]` is still its link
    # no definitions: plain markers, as before
    assert with_footnotes("A b.", (Citation((POLICY, WIKI), 0, 4),), (POLICY, WIKI)) == "A b.[1][2]"
