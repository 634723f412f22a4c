"""The shared markdown tokenisation (ark/slack/render/tokens.py)."""

from __future__ import annotations

import pytest

from ark.slack.render import tokens
from ark.slack.render.tokens import block_plain, blocks, inline_plain, list_items, table

ANSWER = """# Title

[ref]: https://example.com/ref
Para **bold** and [a link](https://a.example) and `code`.
- one
  - two
    - three
- four

| Region | Sales |
|:--|--:|
| EMEA | **12** |
| APAC |

```python
x = '<!here>'
```
> quoted

---
"""


def test_blocks_cover_every_line_in_order_with_exact_source() -> None:
    found = blocks(ANSWER)
    assert [b.kind for b in found] == [
        tokens.HEADING,
        tokens.OTHER,
        tokens.PARAGRAPH,
        tokens.BULLET_LIST,
        tokens.TABLE,
        tokens.FENCE,
        tokens.BLOCKQUOTE,
        tokens.HR,
    ]
    assert found[1].source == "[ref]: https://example.com/ref"
    assert found[5].source == "```python\nx = '<!here>'\n```"
    joined = "\n".join(b.source for b in found)
    assert [line for line in ANSWER.splitlines() if line.strip()] == [
        line for line in joined.splitlines() if line.strip()
    ]


def test_list_items_keep_nested_lists_inside_their_item() -> None:
    lst = next(b for b in blocks(ANSWER) if b.kind == tokens.BULLET_LIST)
    assert list_items(lst) == ["- one\n  - two\n    - three", "- four"]


def test_table_structure_alignment_and_row_sources() -> None:
    t = table(next(b for b in blocks(ANSWER) if b.kind == tokens.TABLE))
    assert t.columns == 2
    assert t.aligns == ("left", "right")
    assert [inline_plain(c) for c in t.header] == ["Region", "Sales"]
    assert [[inline_plain(c) for c in row] for row in t.rows] == [["EMEA", "12"], ["APAC", ""]]
    assert t.header_source == "| Region | Sales |"
    assert t.delimiter_source == "|:--|--:|"
    assert t.row_sources == ("| EMEA | **12** |", "| APAC |")


def test_table_rejects_other_blocks() -> None:
    with pytest.raises(ValueError):
        table(blocks("just text")[0])


def test_inline_plain_drops_markup_and_keeps_urls_not_already_shown() -> None:
    para = next(b for b in blocks(ANSWER) if b.kind == tokens.PARAGRAPH)
    assert block_plain(para) == "Para bold and a link (https://a.example) and code."
    auto = blocks("<https://x.example> and ![chart](https://x.example/c.png)")[0]
    assert block_plain(auto) == "https://x.example and chart"


def test_block_plain_of_code_lists_and_rules() -> None:
    found = {b.kind: b for b in blocks(ANSWER)}
    assert block_plain(found[tokens.FENCE]) == "x = '<!here>'"
    assert block_plain(found[tokens.BULLET_LIST]) == "• one\n    • two\n        • three\n• four"
    assert block_plain(found[tokens.TABLE]) == "Region | Sales\nEMEA | 12\nAPAC | "
    assert block_plain(found[tokens.BLOCKQUOTE]) == "quoted"


def test_block_plain_keeps_list_numbers_and_nesting() -> None:
    source = (
        "3. third\n4. fourth\n   - nested\n\n     0. zero\n\n        ```\n        code\n        ```"
    )
    (found,) = blocks(source)
    assert block_plain(found) == (
        "3. third\n4. fourth\n    • nested\n        0. zero\n           code"
    )
    (zero,) = blocks("0. zero\n1. one")
    assert block_plain(zero) == "0. zero\n1. one"


def test_blocks_hands_back_the_parser_env() -> None:
    env: dict[str, object] = {}
    blocks("[a]\n\n[A]: https://x.example", env)
    assert env["references"] == {"A": {"title": "", "href": "https://x.example", "map": [2, 3]}}


def test_the_parser_is_built_once() -> None:
    assert tokens.parser() is tokens.parser()
