"""Log records of one `ark.*` logger, captured for assertions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def _capturing(name: str, level: int, emit: Callable[[logging.LogRecord], None]) -> Iterator[None]:
    handler = logging.Handler()
    handler.emit = emit  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@contextmanager
def captured_records(name: str, level: int = logging.DEBUG) -> Iterator[list[logging.LogRecord]]:
    """The records logger `name` emits at `level` or above inside the block (the list
    fills as they come); the logger's handlers and level are restored afterwards."""
    records: list[logging.LogRecord] = []
    with _capturing(name, level, records.append):
        yield records


@contextmanager
def captured_messages(name: str, level: int = logging.DEBUG) -> Iterator[list[str]]:
    """Like `captured_records`, but only each record's message (the event name)."""
    names: list[str] = []
    with _capturing(name, level, lambda record: names.append(record.getMessage())):
        yield names
