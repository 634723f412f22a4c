"""Tests for ark.log: line formats, level filtering and secret redaction at every level."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator

import orjson
import pytest

from ark.log import REDACTED, Redactor, configure_logging, get_logger

BOT_TOKEN = "xoxb-1234-5678-CONFIGUREDbotSECRET"
APP_TOKEN = "xapp-1-A0001-999-CONFIGUREDappSECRET"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
# shaped like Slack tokens but never configured
STRAY_BOT = "xoxb-0000-1111-strayBOTtoken"
STRAY_USER = "xoxp-2222-3333-strayUSERtoken"
STRAY_APP = "xapp-1-A9-4444-strayAPPtoken"
ALL_SECRETS = (BOT_TOKEN, APP_TOKEN, AWS_SECRET, STRAY_BOT, STRAY_USER, STRAY_APP)
# distinctive fragments: none of them may survive even partially
FRAGMENTS = (
    "CONFIGUREDbotSECRET",
    "CONFIGUREDappSECRET",
    "EXAMPLEKEY",
    "strayBOTtoken",
    "strayUSERtoken",
    "strayAPPtoken",
)

_TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_PAIR_RE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')

LogSetup = Callable[..., io.StringIO]


def _parse_text(line: str) -> dict[str, str]:
    """key=value line into a dict (quoted values unescaped)."""
    out: dict[str, str] = {}
    consumed = 0
    for m in _PAIR_RE.finditer(line):
        assert line[consumed : m.start()].strip() == "", f"junk in line: {line!r}"
        consumed = m.end()
        key, value = m.group(1), m.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", lambda g: {"n": "\n"}.get(g.group(1), g.group(1)), value[1:-1])
        out[key] = value
    assert line[consumed:].strip() == ""
    return out


def _lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line]


@pytest.fixture
def setup_logging() -> Iterator[LogSetup]:
    """configure_logging into a fresh StringIO; restores the 'ark' logger afterwards."""
    root = logging.getLogger("ark")
    saved = (list(root.handlers), root.level, root.propagate)

    def setup(level: str = "info", fmt: str = "text", secrets: tuple[str, ...] = ()) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(level, fmt, secrets, stream=stream)
        return stream

    yield setup
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    root.propagate = saved[2]


# --- text format ---------------------------------------------------------------------------


def test_text_line_is_key_value_with_standard_fields(setup_logging: LogSetup) -> None:
    stream = setup_logging()
    get_logger("ark.gateway").info("answered", channel="C1", latency_ms=812)
    (line,) = _lines(stream)
    assert line.startswith("ts=")
    fields = _parse_text(line)
    assert _TS_RE.match(fields["ts"])
    assert fields["level"] == "info"
    assert fields["logger"] == "ark.gateway"
    assert fields["event"] == "answered"
    assert fields["channel"] == "C1"
    assert fields["latency_ms"] == "812"
    assert list(fields)[:4] == ["ts", "level", "logger", "event"]


def test_text_values_with_spaces_quotes_and_equals_are_quoted(setup_logging: LogSetup) -> None:
    stream = setup_logging()
    get_logger("ark.t").info(
        "two words",
        reason="no such channel",
        quote='say "hi"',
        eq="a=b",
        empty="",
        multi="line1\nline2",
    )
    (line,) = _lines(stream)
    assert 'event="two words"' in line
    assert 'reason="no such channel"' in line
    assert 'eq="a=b"' in line
    assert 'empty=""' in line
    assert "\n" not in line  # one event, one line
    fields = _parse_text(line)
    assert fields["event"] == "two words"
    assert fields["reason"] == "no such channel"
    assert fields["quote"] == 'say "hi"'
    assert fields["multi"] == "line1\nline2"


def test_text_value_formatting(setup_logging: LogSetup) -> None:
    stream = setup_logging()
    get_logger("ark.t").info("e", ok=True, bad=False, ratio=0.5, whole=2.0, gone=None, n=3)
    fields = _parse_text(_lines(stream)[0])
    assert fields["ok"] == "true"
    assert fields["bad"] == "false"
    assert fields["ratio"] == "0.5"
    assert fields["whole"] == "2"
    assert fields["n"] == "3"
    assert "gone" not in fields


def test_level_names(setup_logging: LogSetup) -> None:
    stream = setup_logging("debug")
    log = get_logger("ark.t")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    levels = [_parse_text(line)["level"] for line in _lines(stream)]
    assert levels == ["debug", "info", "warn", "error"]


def test_get_logger_prefixes_ark(setup_logging: LogSetup) -> None:
    stream = setup_logging()
    get_logger("gateway").info("x")
    assert _parse_text(_lines(stream)[0])["logger"] == "ark.gateway"


# --- JSON format ---------------------------------------------------------------------------


def test_json_lines_parse_and_carry_fields(setup_logging: LogSetup) -> None:
    stream = setup_logging(fmt="json")
    log = get_logger("ark.gateway")
    log.info("answered", channel="C1", latency_ms=812, ok=True, note="two words")
    log.warning("slow", ratio=1.5)
    first, second = (orjson.loads(line) for line in _lines(stream))
    assert _TS_RE.match(first["ts"])
    assert first["level"] == "info"
    assert first["logger"] == "ark.gateway"
    assert first["event"] == "answered"
    assert first["channel"] == "C1"
    assert first["latency_ms"] == 812
    assert first["ok"] is True
    assert first["note"] == "two words"
    assert second["level"] == "warn"
    assert second["ratio"] == 1.5


def test_json_serialises_unusual_values(setup_logging: LogSetup) -> None:
    stream = setup_logging(fmt="json")
    get_logger("ark.t").info("e", obj=ValueError("boom"))
    assert orjson.loads(_lines(stream)[0])["obj"] == "boom"


# --- levels --------------------------------------------------------------------------------


def test_debug_suppressed_at_info(setup_logging: LogSetup) -> None:
    stream = setup_logging("info")
    log = get_logger("ark.t")
    log.debug("hidden")
    log.info("shown")
    assert not log.is_debug()
    lines = _lines(stream)
    assert len(lines) == 1
    assert "event=shown" in lines[0]


def test_info_suppressed_at_warn_and_warn_at_error(setup_logging: LogSetup) -> None:
    stream = setup_logging("warn")
    log = get_logger("ark.t")
    log.info("hidden")
    log.warning("shown_warn")
    assert [_parse_text(x)["event"] for x in _lines(stream)] == ["shown_warn"]

    stream = setup_logging("error")
    log.warning("hidden")
    log.error("shown_error")
    assert [_parse_text(x)["event"] for x in _lines(stream)] == ["shown_error"]


def test_debug_level_shows_debug(setup_logging: LogSetup) -> None:
    stream = setup_logging("debug")
    log = get_logger("ark.t")
    assert log.is_debug()
    log.debug("shown")
    assert len(_lines(stream)) == 1


def test_configure_logging_replaces_earlier_handlers(setup_logging: LogSetup) -> None:
    first = setup_logging()
    second = setup_logging()
    get_logger("ark.t").info("once")
    assert _lines(first) == []
    assert len(_lines(second)) == 1


# --- redaction -----------------------------------------------------------------------------


def _assert_clean(text: str) -> None:
    for secret in ALL_SECRETS:
        assert secret not in text
    for fragment in FRAGMENTS:
        assert fragment not in text


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("method", ["debug", "info", "warning", "error", "exception"])
def test_secrets_redacted_everywhere_at_every_level(
    setup_logging: LogSetup, fmt: str, method: str
) -> None:
    stream = setup_logging("debug", fmt, (BOT_TOKEN, APP_TOKEN, AWS_SECRET))
    log = get_logger("ark.t")
    emit = getattr(log, method)
    for secret in ALL_SECRETS:
        fields = {"value": secret, "sentence": f"Bearer {secret} was sent", "url": f"u?t={secret}"}
        if method == "exception":
            try:
                raise RuntimeError(f"bad token {secret}")
            except RuntimeError:
                emit(f"event_{secret}", **fields)
        else:
            emit(f"event_{secret}", **fields)
    output = stream.getvalue()
    lines = _lines(stream)
    assert len(lines) == len(ALL_SECRETS)
    _assert_clean(output)
    assert REDACTED in output
    for line in lines:
        if fmt == "json":
            doc = orjson.loads(line)
            assert doc["value"] == REDACTED
            assert doc["event"] == f"event_{REDACTED}"
            if method == "exception":
                assert doc["exc"] == f"bad token {REDACTED}"
        else:
            fields = _parse_text(line)
            assert fields["value"] == REDACTED
            assert fields["event"] == f"event_{REDACTED}"
            assert fields["sentence"] == f"Bearer {REDACTED} was sent"


def test_token_glued_to_other_text_is_still_redacted(setup_logging: LogSetup) -> None:
    stream = setup_logging()
    get_logger("ark.t").info("form", body=f"token%3D{STRAY_BOT}&x=1", other=f"abc{STRAY_USER}")
    _assert_clean(stream.getvalue())


def test_redactor_removes_configured_and_token_shaped_values() -> None:
    redact = Redactor([AWS_SECRET, BOT_TOKEN])
    assert redact(f"a {AWS_SECRET} b") == f"a {REDACTED} b"
    assert redact(f"a {BOT_TOKEN} b") == f"a {REDACTED} b"
    assert redact(f"{STRAY_APP} {STRAY_USER}") == f"{REDACTED} {REDACTED}"
    assert redact("xoxa-2-abc xoxe-1-def") == f"{REDACTED} {REDACTED}"
    assert redact("nothing secret here: xoxb and xapp words") == (
        "nothing secret here: xoxb and xapp words"
    )


def test_redactor_removes_longest_secret_whole() -> None:
    redact = Redactor(["abcdef", "abcdef-longer-secret"])
    assert redact("x abcdef-longer-secret y") == f"x {REDACTED} y"


def test_redactor_ignores_very_short_secrets() -> None:
    # a 1-5 character "secret" would shred ordinary text
    assert Redactor(["a", "", "ab12"])("a banana ab12") == "a banana ab12"


def test_exception_adds_type_and_message_without_traceback(setup_logging: LogSetup) -> None:
    stream = setup_logging()
    log = get_logger("ark.t")
    try:
        raise ValueError("bad thing happened")
    except ValueError:
        log.exception("failed", channel="C1")
    output = stream.getvalue()
    assert "Traceback" not in output
    assert 'File "' not in output
    (line,) = _lines(stream)
    fields = _parse_text(line)
    assert fields["level"] == "error"
    assert fields["event"] == "failed"
    assert fields["channel"] == "C1"
    assert fields["exc_type"] == "ValueError"
    assert fields["exc"] == "bad thing happened"


def test_exception_in_json(setup_logging: LogSetup) -> None:
    stream = setup_logging(fmt="json")
    try:
        raise KeyError("k")
    except KeyError:
        get_logger("ark.t").exception("failed")
    output = stream.getvalue()
    assert "Traceback" not in output
    doc = orjson.loads(_lines(stream)[0])
    assert doc["exc_type"] == "KeyError"
    assert doc["exc"] == "'k'"
    assert doc["level"] == "error"
