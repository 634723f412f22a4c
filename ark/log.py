"""Structured logging: one line per event, `key=value` text or JSON, secrets redacted.

    log = get_logger("ark.gateway")
    log.info("answered", channel="C1", latency_ms=812)

Every line passes through the redactor, which removes the configured secret values and
anything shaped like a Slack token, whatever field it hides in, at every level.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
from typing import IO, Any

import orjson

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}
REDACTED = "[REDACTED]"
# no \b: a token glued to other text ("id_xoxb-…", "%3Dxoxb-…") is still a token
_TOKEN_RE = re.compile(r"x(?:ox[a-z]|app)-[A-Za-z0-9-]+")
_NEEDS_QUOTES_RE = re.compile(r'[\s"=]')
_ROOT = "ark"


class Redactor:
    """Removes known secret values and Slack-token-shaped strings from text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first, so a secret containing another is removed whole
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _TOKEN_RE.sub(REDACTED, text)


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.3f}".rstrip("0").rstrip(".")
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    if text == "" or _NEEDS_QUOTES_RE.search(text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def _timestamp(created: float) -> str:
    ms = int((created % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{ms:03d}Z"


class _Formatter(logging.Formatter):
    def __init__(self, json_lines: bool, redactor: Redactor) -> None:
        super().__init__()
        self._json = json_lines
        self._redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "ark_fields", {}) or {}
        level = _LEVEL_NAMES.get(record.levelno, "error")
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            fields = {**fields, "exc_type": type(exc).__name__, "exc": str(exc)}
        if self._json:
            doc = {
                "ts": _timestamp(record.created),
                "level": level,
                "logger": record.name,
                "event": record.getMessage(),
                **fields,
            }
            line = orjson.dumps(doc, default=str).decode()
        else:
            parts = [
                f"ts={_timestamp(record.created)}",
                f"level={level}",
                f"logger={record.name}",
                f"event={_fmt_value(record.getMessage())}",
            ]
            parts.extend(f"{k}={_fmt_value(v)}" for k, v in fields.items() if v is not None)
            line = " ".join(parts)
        return self._redact(line)


class Logger:
    """A thin key=value front on a stdlib logger."""

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, event: str, fields: dict[str, Any], exc: bool = False) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, event, extra={"ark_fields": fields}, exc_info=exc)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An error line carrying the current exception's type and message (no traceback)."""
        self._log(logging.ERROR, event, fields, exc=True)

    def is_debug(self) -> bool:
        return self._logger.isEnabledFor(logging.DEBUG)


def get_logger(name: str) -> Logger:
    if not name.startswith(_ROOT):
        name = f"{_ROOT}.{name}"
    return Logger(logging.getLogger(name))


def configure_logging(
    level: str = "info",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> None:
    """Send Ark's log lines to `stream` (stderr by default), replacing earlier handlers."""
    root = logging.getLogger(_ROOT)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_Formatter(fmt == "json", Redactor(secrets)))
    root.addHandler(handler)
    root.setLevel(LEVELS.get(level, logging.INFO))
    root.propagate = False
    # botocore and aiohttp log request details (headers included) at debug: keep them quiet
    for noisy in ("botocore", "aiobotocore", "aiohttp", "websockets", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
