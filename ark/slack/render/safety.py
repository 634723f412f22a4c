"""Nothing the agent writes may ping anyone.

Slack turns `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>`, `<@U…>`, `<@W…>` and
`<#C…>` into live mentions. `defuse` puts a zero-width space after the `<` (and after the
`@` of a bare `@here`, `@channel`, `@everyone`), so no parser can read a mention there while
a person still sees the same characters. Used on the agent's text in every rendering path;
the mrkdwn path also escapes `&`, `<`, `>`, which is enough there on its own.
"""

from __future__ import annotations

import re

ZWSP = "\u200b"
# what follows `<` in a live token: a broadcast or user-group, a user or bot, a channel
_LIVE_AFTER_BRACKET = r"(?:!(?:channel|here|everyone|subteam\^)|@[UWB][A-Z0-9]|#[CG][A-Z0-9])"
# `<`, or an entity a markdown renderer would decode to `<`
_OPEN = r"(?:<|&lt;|&#0*60;|&#x0*3c;)"
_BRACKET_MENTION_RE = re.compile("(" + _OPEN + ")(?=" + _LIVE_AFTER_BRACKET + ")", re.IGNORECASE)
_BARE_BROADCAST_RE = re.compile(r"(?<![\w@])@(?=(?:here|channel|everyone)\b)", re.IGNORECASE)
LIVE_TOKEN_RE = re.compile(
    _OPEN + _LIVE_AFTER_BRACKET + r"|(?<![\w@])@(?:here|channel|everyone)\b", re.IGNORECASE
)


def defuse(text: str) -> str:
    """Make every mention or broadcast token in `text` inert (visible text unchanged)."""
    text = _BRACKET_MENTION_RE.sub(r"\1" + ZWSP, text)
    return _BARE_BROADCAST_RE.sub("@" + ZWSP, text)


def has_live_token(text: str) -> bool:
    """True when `text` still holds something Slack could read as a mention."""
    return LIVE_TOKEN_RE.search(text) is not None
