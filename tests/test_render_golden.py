"""Golden tests: realistic agent answers and the exact Slack payloads Ark posts for them.

Each `tests/golden/cases/NN-name.md` (plus an optional `NN-name.citations.json`) is
rendered through both paths: the Block Kit messages Ark posts first, and the mrkdwn text
it falls back to when Slack rejects a payload. The result must equal
`tests/golden/expected/NN-name.json`. After an intended rendering change, regenerate with
`ARK_UPDATE_GOLDEN=1 make test` and review the diff of tests/golden/expected/ like code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from ark.bedrock.types import Citation, Source
from ark.slack.render.citations import compose_answer
from ark.slack.render.markdown import render_markdown
from ark.slack.render.model import (
    MAX_BLOCKS,
    MAX_MARKDOWN_CHARS,
    MAX_TABLE_COLUMNS,
    MAX_TABLE_ROWS,
    MAX_TEXT_FALLBACK_CHARS,
)
from ark.slack.render.mrkdwn import render_mrkdwn
from ark.slack.render.safety import has_live_token

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted((GOLDEN / "cases").glob("*.md"))
UPDATE = os.environ.get("ARK_UPDATE_GOLDEN") == "1"


def _compose(case: Path) -> str:
    text = case.read_bytes().decode("utf-8")
    meta_path = case.with_suffix(".citations.json")
    if not meta_path.exists():
        return compose_answer(text)
    meta = orjson.loads(meta_path.read_bytes())
    sources = tuple(Source(s["name"], s.get("url")) for s in meta["sources"])
    citations = tuple(
        Citation(tuple(sources[i] for i in c["sources"]), c.get("span_start"), c.get("span_end"))
        for c in meta["citations"]
    )
    return compose_answer(text, citations, sources)


def _render(case: Path) -> dict[str, Any]:
    composed = _compose(case)
    return {
        "blocks": [
            {"text": part.message.text, "blocks": [dict(b) for b in part.message.blocks]}
            for part in render_markdown(composed)
        ],
        "fallback": [message.text for message in render_mrkdwn(composed)],
    }


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CASES) >= 30
    assert sum(1 for c in CASES if c.with_suffix(".citations.json").exists()) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_payloads(case: Path) -> None:
    rendered = _render(case)
    expected_path = GOLDEN / "expected" / f"{case.stem}.json"
    if UPDATE:
        expected_path.parent.mkdir(exist_ok=True)
        expected_path.write_bytes(
            orjson.dumps(rendered, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
        )
    assert expected_path.exists(), f"no golden file: run ARK_UPDATE_GOLDEN=1 for {case.name}"
    assert rendered == orjson.loads(expected_path.read_bytes())


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden_payloads_respect_every_limit(case: Path) -> None:
    rendered = _render(case)
    for message in rendered["blocks"]:
        blocks = message["blocks"]
        assert 0 < len(message["text"]) <= MAX_TEXT_FALLBACK_CHARS
        assert len(blocks) <= MAX_BLOCKS
        markdown = sum(len(b["text"]) for b in blocks if b["type"] == "markdown")
        assert markdown <= MAX_MARKDOWN_CHARS
        tables = [b for b in blocks if b["type"] == "table"]
        assert len(tables) <= 1
        if tables:
            assert blocks[-1] is tables[0], "a message ends at its table"
            assert len(tables[0]["rows"]) <= MAX_TABLE_ROWS
            assert all(len(row) <= MAX_TABLE_COLUMNS for row in tables[0]["rows"])
    for text in rendered["fallback"]:
        assert 0 < len(text) <= MAX_TEXT_FALLBACK_CHARS
    for text in _strings(rendered):
        assert not has_live_token(text), text[:200]
    blank = not _compose(case).strip()
    assert (rendered["blocks"] == []) == blank
    assert (rendered["fallback"] == []) == blank
