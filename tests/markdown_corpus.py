"""Markdown inputs shared by the rendering tests: hypothesis strategies that generate agent
answers together with the text a reader must see, 100 KB hostile inputs, and helpers that
compare visible text."""

from __future__ import annotations

from hypothesis import strategies as st
from markdown_it.token import Token

from ark.slack.render.tokens import parser


def alnum(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


def is_subsequence(needle: str, hay: str) -> bool:
    it = iter(hay)
    return all(c in it for c in needle)


def visible(markdown: str) -> str:
    """The text a reader sees, from the parser's tokens: inline text, code, raw HTML and
    image alt text, in document order; link URLs, titles and fence info strings left out."""
    out: list[str] = []

    def walk(tokens: list[Token]) -> None:
        for token in tokens:
            if (
                token.type in ("text", "code_inline", "html_inline", "fence", "code_block")
                or token.type == "html_block"
            ):
                out.append(token.content)
            elif token.type in ("inline", "image"):
                walk(token.children or [])
            out.append(" ")

    walk(parser().parse(markdown))
    return "".join(out)


def report(chars: int) -> str:
    parts: list[str] = []
    n = 0
    while sum(len(p) for p in parts) < chars:
        n += 1
        parts.append(
            f"## Section {n}\n\nParagraph {n} with **bold** and a [link](https://x.io/{n}). " * 3
        )
        parts.append(f"- item {n}.1\n  - sub {n}\n- item {n}.2")
    return "\n\n".join(parts)


_WORD = st.text(alphabet="abcdefghijXYZ0123456789éß中文😀", min_size=1, max_size=8)


@st.composite
def _inline(draw: st.DrawFn, *, in_table: bool = False) -> tuple[str, str]:
    """One inline piece: (markdown, the text a reader sees)."""
    w = draw(_WORD)
    kinds = [
        (w, w),
        (f"**{w}**", w),
        (f"__{w}__", w),
        (f"*{w}*", w),
        (f"_{w}_", w),
        (f"~~{w}~~", w),
        (f"[{w}](https://example.com/{w}?a=1&b=2)", w),
        (f"![{w}](https://img.example.com/x.png)", w),
        (f"[{w}](ftp://files/{w})", w),
        (f"{w} & < > {w}", f"{w}{w}"),
        ("<@U123ABC>", "U123ABC"),
        ("&lt;!here&gt;", "here"),
        ("@everyone", "everyone"),
        (f"`{w}*_<&`", w),
    ]
    if not in_table:
        kinds += [("<!channel>", "channel"), (f"`a|{w}`", w)]
    return draw(st.sampled_from(kinds))


@st.composite
def _line(draw: st.DrawFn, *, in_table: bool = False) -> tuple[str, str]:
    pieces = draw(st.lists(_inline(in_table=in_table), min_size=1, max_size=6))
    return " ".join(p[0] for p in pieces), " ".join(p[1] for p in pieces)


@st.composite
def _paragraph(draw: st.DrawFn) -> tuple[str, str]:
    lines = draw(st.lists(_line(), min_size=1, max_size=4))
    text, seen = "\n".join(line[0] for line in lines), " ".join(line[1] for line in lines)
    if draw(st.booleans()):
        # a paragraph that starts with a triple-backtick code span is not a code fence
        w = draw(_WORD)
        text, seen = f"```{w} install``` {text}", f"{w} install {seen}"
    return text, seen


@st.composite
def _list(draw: st.DrawFn, depth: int = 0) -> tuple[str, str]:
    ordered = draw(st.booleans())
    start = draw(st.integers(1, 20))
    items = []
    for n in range(draw(st.integers(1, 6))):
        marker = f"{start + n}. " if ordered else "- "
        text, seen = draw(_line())
        lines = [marker + text]
        if depth < 2 and draw(st.booleans()):
            nested, nested_seen = draw(_list(depth + 1))
            lines += [" " * len(marker) + line for line in nested.split("\n")]
            seen += " " + nested_seen
        items.append(("\n".join(lines), seen))
    return "\n".join(i[0] for i in items), " ".join(i[1] for i in items)


@st.composite
def _fence(draw: st.DrawFn) -> tuple[str, str]:
    lines = draw(st.lists(_WORD.map(lambda w: f"{w} = a*b_c <x> | y & {w}"), max_size=80))
    tag = draw(st.sampled_from(["", "python", "sql"]))
    return f"```{tag}\n" + "\n".join(lines) + "\n```", " ".join(lines)


@st.composite
def _table(draw: st.DrawFn) -> tuple[str, str]:
    columns = draw(st.integers(1, 4))
    rows = draw(
        st.lists(
            st.lists(_line(in_table=True), min_size=columns, max_size=columns),
            min_size=1,
            max_size=60,
        )
    )
    head, body = rows[0], rows[1:]

    def row(cells: list[tuple[str, str]]) -> str:
        return "| " + " | ".join(c[0] for c in cells) + " |"

    source = "\n".join([row(head), "|" + "---|" * columns, *(row(r) for r in body)])
    return source, " ".join(c[1] for r in rows for c in r)


@st.composite
def _quote(draw: st.DrawFn) -> tuple[str, str]:
    text, seen = draw(_paragraph())
    prefix = draw(st.sampled_from(["> ", "> > "]))
    return "\n".join(prefix + line for line in text.split("\n")), seen


@st.composite
def _heading(draw: st.DrawFn) -> tuple[str, str]:
    text, seen = draw(_line())
    return "#" * draw(st.integers(1, 6)) + " " + text, seen


BLOCK = st.one_of(_paragraph(), _list(), _fence(), _table(), _quote(), _heading())


HUGE = [
    "*" * 100_000,
    "_a" * 50_000,
    "[" * 50_000,
    "[a](" * 25_000,
    "<" * 100_000,
    "&" * 100_000,
    "`a" * 50_000,
    "> " * 8 + "deep " * 20_000,
    "- " * 50_000,
    "|" * 100_000,
    "| a |\n|---|\n" + "| b |\n" * 16_000,
    "a" * 100_000,
    "@here " * 16_000,
    "**a " * 25_000,
    report(100_000),
    # many inline spans in one paragraph (the mrkdwn converter once went quadratic here)
    "*w* " * 25_000,
    "**b** " * 16_667,
    "~~s~~ " * 16_667,
    "*a" * 50_000,
    "[" * 100_000,
]
