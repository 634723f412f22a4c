"""Nothing the agent writes may ping anyone.

Slack turns `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>`, `<@U…>`, `<@W…>` and
`<#C…>` into live mentions. `defuse` puts a zero-width space after the `<` (and after the
`@` of a bare `@here`, `@channel`, `@everyone`), so no parser can read a mention there while
a person still sees the same characters. Used on the agent's text in every rendering path;
the mrkdwn path also escapes `&`, `<`, `>`, which is enough there on its own.

Markdown decodes before Slack reads: a backslash escape (`\\!`) and an HTML entity (`&#33;`,
`&excl;`, `&lt;`) each become one plain character, so `<\\!channel>` or `&lt;&#33;here&gt;`
renders as `<!channel>` / `<!here>`. `defuse` therefore looks at the *decoded* characters
after every form of `<` (and of `@`) — backslash escapes removed, entities decoded with
`html.unescape` semantics, numeric and named — and `has_live_token` checks the raw, the
entity-decoded and the markdown-decoded form of a text.
"""

from __future__ import annotations

import html
import re

ZWSP = "\u200b"
# what follows `<` in a live token: a broadcast or user-group, a user or bot, a channel
_LIVE_AFTER_BRACKET = r"(?:!(?:channel|here|everyone|subteam\^)|@[UWB][A-Z0-9]|#[CG][A-Z0-9])"
_LIVE_AFTER_AT = r"(?:here|channel|everyone)\b"
_LIVE_AFTER_BRACKET_RE = re.compile(_LIVE_AFTER_BRACKET, re.IGNORECASE)
_LIVE_AFTER_AT_RE = re.compile(_LIVE_AFTER_AT, re.IGNORECASE)
# an entity's `#` or `;` may itself be backslash-escaped: `&\#60\;` decodes to `<` too
_SEMI = r"(?:\\?;)?"
# every form of `<` a markdown renderer or an HTML decoder reads as `<`
_OPEN = (
    r"(?:<|\\<|&(?:lt|LT)"
    + _SEMI
    + r"|&\\?#0*60(?![0-9])"
    + _SEMI
    + r"|&\\?#[xX]0*3[cC](?![0-9a-fA-F])"
    + _SEMI
    + ")"
)
# every form of `@` (a bare `@` after a letter is checked in `_starts_word`)
_AT = (
    r"(?:(?<!@)@|\\@|&commat"
    + _SEMI
    + r"|&\\?#0*64(?![0-9])"
    + _SEMI
    + r"|&\\?#[xX]0*40(?![0-9a-fA-F])"
    + _SEMI
    + ")"
)
# (what follows must start like `!`, `@`, `#` or `here`…, or be an escape or an entity)
_CANDIDATE_RE = re.compile(f"(?P<open>{_OPEN})(?=[!@#&\\\\])|(?P<at>{_AT})(?=[hceHCE&\\\\])")
# one decoded character (or entity) after a candidate: a backslash escape, an entity, a char
_UNIT_RE = re.compile(
    r"(?P<entity>&\\?#[xX][0-9a-fA-F]+"
    + _SEMI
    + r"|&\\?#[0-9]+"
    + _SEMI
    + r"|&[^\t\n\f <&#;\\]{1,32}"
    + _SEMI
    + ")"
    + r"|\\(?P<escaped>[!-/:-@\[-`{-~])"
    + r"|(?P<char>[\s\S])"
)
_LOOKAHEAD_UNITS = 12  # enough decoded characters for `!everyone` and a word boundary
_NUMERIC_RE = re.compile(r"&#(?:([xX])0*([0-9a-fA-F]+)|0*([0-9]+))")
# markdown's decoding, in one pass: a backslash escape (ASCII punctuation only, as in
# CommonMark) gives its character as is; an entity (as `html.unescape` reads one) decodes
_DECODE_RE = re.compile(
    r"\\(?P<escaped>[!-/:-@\[-`{-~])"
    r"|(?P<entity>&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?))"
)
LIVE_TOKEN_RE = re.compile(
    "<" + _LIVE_AFTER_BRACKET + r"|(?<![\w@])@" + _LIVE_AFTER_AT, re.IGNORECASE
)


def _short_numeric(match: re.Match[str]) -> str:
    # html.unescape would call int() on any number of digits (Python refuses over 4,300);
    # a number that long is out of range anyway and decodes to U+FFFD either way
    hex_mark, hex_digits, digits = match.groups()
    if hex_mark:
        return "&#x" + (hex_digits if len(hex_digits) <= 8 else "FFFFFFFF")
    return "&#" + (digits if len(digits) <= 10 else "9999999999")


def unescape(text: str) -> str:
    """`html.unescape`, safe on numeric references of any length."""
    if "&" not in text:
        return text
    return html.unescape(_NUMERIC_RE.sub(_short_numeric, text))


def _decode_one(match: re.Match[str]) -> str:
    escaped = match.group("escaped")
    return escaped if escaped is not None else unescape(match.group("entity"))


def markdown_decoded(text: str) -> str:
    """What markdown shows for `text`: backslash escapes and HTML entities decoded (an
    escaped `\\&` stays a plain `&`, as in CommonMark)."""
    if "\\" not in text and "&" not in text:
        return text
    return _DECODE_RE.sub(_decode_one, text)


def _decoded_after(text: str, at: int, first: str) -> str:
    """The first few characters after offset `at`, decoded as markdown would; just the
    first when it is not one of `first` (no token can follow)."""
    out: list[str] = []
    for n in range(_LOOKAHEAD_UNITS):
        if n == 1 and (not out[0] or out[0][0] not in first):
            break
        unit = _UNIT_RE.match(text, at)
        if unit is None:
            break
        at = unit.end()
        if unit.group("escaped") is not None:
            out.append(unit.group("escaped"))
        elif unit.group("entity") is not None:
            out.append(unescape(unit.group("entity").replace("\\", "")))
        else:
            out.append(unit.group("char"))
    return "".join(out)


def _starts_word(text: str, at: int) -> bool:
    """True when the `@` at `at` starts a word, or follows an entity that ends in a letter
    or digit (`&lt@here` decodes to `<@here`)."""
    start = at
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
        start -= 1
    if start == at:
        return True
    return start > 0 and text[start - 1] in "&#"


def defuse(text: str) -> str:
    """Make every mention or broadcast token in `text` inert (visible text unchanged), in
    whatever escaped or entity-encoded form the agent wrote it."""
    out: list[str] = []
    last = 0
    for match in _CANDIDATE_RE.finditer(text):
        bracket = match.group("open") is not None
        if not bracket and text[match.start()] == "@" and not _starts_word(text, match.start()):
            continue
        after = _decoded_after(text, match.end(), "!@#" if bracket else "hceHCE")
        live = _LIVE_AFTER_BRACKET_RE if bracket else _LIVE_AFTER_AT_RE
        raw = text[match.end() : match.end() + _LOOKAHEAD_UNITS]
        if live.match(after) or live.match(raw):
            out.append(text[last : match.end()])
            out.append(ZWSP)
            last = match.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def has_live_token(text: str) -> bool:
    """True when `text` still holds something Slack could read as a mention: as written,
    with its HTML entities decoded, or decoded as markdown (escapes, then entities)."""
    return any(
        LIVE_TOKEN_RE.search(form) is not None
        for form in (text, unescape(text), markdown_decoded(text))
    )
