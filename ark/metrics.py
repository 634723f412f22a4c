"""Metrics without an agent: CloudWatch Embedded Metric Format (EMF) lines on stdout.

With LOG_FORMAT=json Ark prints one EMF line per finished message and one per reconnect
attempt. CloudWatch Logs turns them into metrics in the namespace ARK_METRICS_NAMESPACE
(default `Ark`): no sidecar, no port, no PutMetricData permission. With LOG_FORMAT=text
`NullMetrics` is used and nothing is printed.

An answer line (one dimension, `Outcome`, so at most len(OUTCOMES) series per metric):

    {"_aws": {"Timestamp": 1767225600123, "CloudWatchMetrics": [{"Namespace": "Ark",
      "Dimensions": [["Outcome"]], "Metrics": [{"Name": "Messages", "Unit": "Count"},
      {"Name": "AnswerLatency", "Unit": "Milliseconds"}, ...]}]},
     "event": "answer_metrics", "Outcome": "answered", "Messages": 1, "AnswerLatency": 812, ...}

A reconnect line has no dimension: `"Dimensions": [[]]`, metric `Reconnects` (Count).

Lines go to stdout (log lines go to stderr), one write per line, flushed, never wrapped in
the logger's envelope: each must be a log event on its own for CloudWatch to parse it.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any, Final, Literal, Protocol, get_args

import orjson

from ark.log import get_logger

log = get_logger("ark.metrics")

Outcome = Literal[
    "answered",  # the answer was posted
    "busy",  # refused at admission: the queue was full (or Ark was shutting down)
    "error_agent",  # the agent failed (InvokeAgent error; a partial answer may be posted)
    "error_empty",  # the agent answered nothing
    "error_slack",  # Slack refused the reply (chat.postMessage and friends)
    "error_internal",  # anything else (a bug): the user got the generic error reply
    "cancelled",  # still running at the shutdown deadline: the user got the restart notice
]
OUTCOMES: Final[tuple[str, ...]] = get_args(Outcome)

DEFAULT_NAMESPACE = "Ark"
DIMENSION_OUTCOME = "Outcome"

# metric name -> (unit, answer() keyword); the order is the order in the line
MS = "Milliseconds"
COUNT = "Count"
ANSWER_METRICS: Final[tuple[tuple[str, str, str], ...]] = (
    ("AnswerLatency", MS, "total_ms"),  # event received -> answer posted
    ("QueueWait", MS, "queue_wait_ms"),  # prepared -> agent slot obtained
    ("FirstByte", MS, "first_byte_ms"),  # agent invoked -> its first event
    ("AgentTotal", MS, "agent_ms"),  # agent invoked -> stream finished
    ("SlackPost", MS, "post_ms"),  # stream finished -> answer posted
    ("InputFiles", COUNT, "input_files"),  # attachments given to the agent
)
METRIC_MESSAGES = "Messages"
METRIC_RECONNECTS = "Reconnects"


class Metrics(Protocol):
    """What the gateway and app report; EmfMetrics prints, NullMetrics does nothing."""

    def answer(
        self,
        outcome: Outcome,
        *,
        total_ms: float | None = None,
        queue_wait_ms: float | None = None,
        first_byte_ms: float | None = None,
        agent_ms: float | None = None,
        post_ms: float | None = None,
        input_files: int | None = None,
    ) -> None: ...

    def reconnect(self, reason: str | None = None) -> None: ...


class NullMetrics:
    """Metrics that go nowhere (LOG_FORMAT=text, tests, `ark chat`)."""

    def answer(
        self,
        outcome: Outcome,
        *,
        total_ms: float | None = None,
        queue_wait_ms: float | None = None,
        first_byte_ms: float | None = None,
        agent_ms: float | None = None,
        post_ms: float | None = None,
        input_files: int | None = None,
    ) -> None:
        return None

    def reconnect(self, reason: str | None = None) -> None:
        return None


def _print_line(line: str) -> None:
    # sys.stdout looked up per call: whatever stdout is now (pytest's capsys, a redirect)
    print(line, file=sys.stdout, flush=True)


def _value(raw: float | int | None) -> float | int | None:
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    value = float(raw)
    if not math.isfinite(value):
        return None
    return round(value, 3)


class EmfMetrics:
    """Prints one EMF document per call through `write` (stdout by default).

    Never raises: a closed or broken stdout is logged once and the metric is dropped."""

    def __init__(
        self,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        write: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not namespace or len(namespace) > 255:
            raise ValueError("the metrics namespace must be 1 to 255 characters")
        self._namespace = namespace
        self._write = write or _print_line
        self._clock = clock
        self._failed = False

    @property
    def namespace(self) -> str:
        return self._namespace

    def answer(
        self,
        outcome: Outcome,
        *,
        total_ms: float | None = None,
        queue_wait_ms: float | None = None,
        first_byte_ms: float | None = None,
        agent_ms: float | None = None,
        post_ms: float | None = None,
        input_files: int | None = None,
    ) -> None:
        given: dict[str, float | int | None] = {
            "total_ms": total_ms,
            "queue_wait_ms": queue_wait_ms,
            "first_byte_ms": first_byte_ms,
            "agent_ms": agent_ms,
            "post_ms": post_ms,
            "input_files": input_files,
        }
        values: dict[str, float | int] = {METRIC_MESSAGES: 1}
        units: list[tuple[str, str]] = [(METRIC_MESSAGES, COUNT)]
        for name, unit, keyword in ANSWER_METRICS:
            value = _value(given[keyword])
            if value is not None:  # an absent stage is left out, never sent as 0
                values[name] = value
                units.append((name, unit))
        self._emit(
            dimensions=[DIMENSION_OUTCOME],
            units=units,
            members={"event": "answer_metrics", DIMENSION_OUTCOME: str(outcome), **values},
        )

    def reconnect(self, reason: str | None = None) -> None:
        members: dict[str, Any] = {"event": "reconnect_metrics", METRIC_RECONNECTS: 1}
        if reason:
            members["reason"] = reason
        self._emit(dimensions=[], units=[(METRIC_RECONNECTS, COUNT)], members=members)

    def _emit(
        self, *, dimensions: list[str], units: list[tuple[str, str]], members: dict[str, Any]
    ) -> None:
        doc = {
            "_aws": {
                "Timestamp": int(self._clock() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": [dimensions],
                        "Metrics": [{"Name": name, "Unit": unit} for name, unit in units],
                    }
                ],
            },
            **members,
        }
        try:
            self._write(orjson.dumps(doc).decode())
        except Exception as exc:  # stdout closed or broken: metrics must not break answers
            if not self._failed:
                self._failed = True
                log.warning("metrics_write_failed", exc_type=type(exc).__name__)


def make_metrics(log_format: str, namespace: str = DEFAULT_NAMESPACE) -> Metrics:
    """EmfMetrics with LOG_FORMAT=json, NullMetrics otherwise."""
    if log_format == "json":
        return EmfMetrics(namespace)
    return NullMetrics()
