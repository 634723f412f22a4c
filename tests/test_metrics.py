"""EMF lines checked against the CloudWatch Embedded Metric Format specification's structure.

The rules below are the specification's (CloudWatch_Embedded_Metric_Format_Specification):
a root object with `_aws` {Timestamp: integer ms since the epoch, CloudWatchMetrics: array of
MetricDirective}; each MetricDirective has Namespace (1..255 chars), Dimensions (an array of
DimensionSets, each an array of strings naming top-level string members, at most 30 keys; the
older text said 9, and Ark uses at most 1), Metrics (at most 100 MetricDefinitions, each
with a Name naming a top-level numeric member or array of at most 100 numbers, and an
optional Unit from CloudWatch's unit list).
"""

from __future__ import annotations

import asyncio
import io
import math
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest

from ark.metrics import (
    ANSWER_METRICS,
    OUTCOMES,
    EmfMetrics,
    NullMetrics,
    make_metrics,
)
from ark.posting import SlackPoster
from tests.e2e_harness import Running, running_ark
from tests.fakes.bedrock import Chunk, FakeBedrock, Gate, HttpError
from tests.fakes.slack import FakeSlack
from tests.logcapture import captured_messages

VALID_UNITS = frozenset(
    {
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    }
)
MAX_DIMENSION_KEYS = 30
MAX_METRICS = 100
MAX_VALUES = 100
MAX_EVENT_BYTES = 256 * 1024


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def validate_emf(line: str) -> dict[str, Any]:
    """Assert that `line` is one valid EMF document; return it parsed."""
    assert "\n" not in line, "one log event per line"
    assert len(line.encode()) <= MAX_EVENT_BYTES
    doc = orjson.loads(line)  # the whole line is one JSON object, nothing around it
    assert isinstance(doc, dict)
    meta = doc["_aws"]
    assert isinstance(meta, dict)
    assert isinstance(meta["Timestamp"], int) and not isinstance(meta["Timestamp"], bool)
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        namespace = directive["Namespace"]
        assert isinstance(namespace, str) and 1 <= len(namespace) <= 255
        dimension_sets = directive["Dimensions"]
        assert isinstance(dimension_sets, list) and len(dimension_sets) >= 1
        for dimension_set in dimension_sets:
            assert isinstance(dimension_set, list)
            assert len(dimension_set) <= MAX_DIMENSION_KEYS
            for key in dimension_set:
                assert isinstance(key, str) and 1 <= len(key) <= 255
                assert key != "_aws"
                assert isinstance(doc[key], str), f"dimension {key} must be a string member"
        metrics = directive["Metrics"]
        assert isinstance(metrics, list) and 1 <= len(metrics) <= MAX_METRICS
        names = [m["Name"] for m in metrics]
        assert len(names) == len(set(names))
        for definition in metrics:
            assert set(definition) <= {"Name", "Unit", "StorageResolution"}
            name = definition["Name"]
            assert isinstance(name, str) and 1 <= len(name) <= 255
            value = doc[name]
            if isinstance(value, list):
                assert 1 <= len(value) <= MAX_VALUES and all(_is_number(v) for v in value)
            else:
                assert _is_number(value), f"metric {name} must be numeric, got {value!r}"
            if "Unit" in definition:
                assert definition["Unit"] in VALID_UNITS
    return doc


def _sink(**kwargs: Any) -> tuple[EmfMetrics, list[str]]:
    lines: list[str] = []
    return EmfMetrics(write=lines.append, **kwargs), lines


def _units(doc: dict[str, Any]) -> dict[str, str]:
    return {m["Name"]: m["Unit"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


def test_answered_line_is_valid_emf_with_every_stage() -> None:
    metrics, lines = _sink(namespace="ArkTest", clock=lambda: 1_767_225_600.1234)
    metrics.answer(
        "answered",
        total_ms=812,
        queue_wait_ms=3.25,
        first_byte_ms=410,
        agent_ms=700,
        post_ms=95,
        input_files=2,
    )
    assert len(lines) == 1
    doc = validate_emf(lines[0])
    assert doc["_aws"]["Timestamp"] == 1_767_225_600_123
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ArkTest"
    assert directive["Dimensions"] == [["Outcome"]]
    assert doc["Outcome"] == "answered"
    assert _units(doc) == {
        "Messages": "Count",
        "AnswerLatency": "Milliseconds",
        "QueueWait": "Milliseconds",
        "FirstByte": "Milliseconds",
        "AgentTotal": "Milliseconds",
        "SlackPost": "Milliseconds",
        "InputFiles": "Count",
    }
    assert doc["Messages"] == 1
    assert doc["AnswerLatency"] == 812
    assert doc["QueueWait"] == 3.25
    assert doc["FirstByte"] == 410
    assert doc["AgentTotal"] == 700
    assert doc["SlackPost"] == 95
    assert doc["InputFiles"] == 2
    assert doc["event"] == "answer_metrics"


def test_absent_stages_are_left_out_not_zero() -> None:
    metrics, lines = _sink()
    metrics.answer("busy")
    metrics.answer("error_agent", queue_wait_ms=1, first_byte_ms=None, agent_ms=30.5)
    busy, agent = (validate_emf(line) for line in lines)
    assert _units(busy) == {"Messages": "Count"}
    assert busy["Outcome"] == "busy"
    assert "AnswerLatency" not in busy
    assert set(_units(agent)) == {"Messages", "QueueWait", "AgentTotal"}
    assert "FirstByte" not in agent and "SlackPost" not in agent


def test_non_finite_values_are_dropped() -> None:
    metrics, lines = _sink()
    metrics.answer("answered", total_ms=math.nan, agent_ms=math.inf, post_ms=1.0)
    doc = validate_emf(lines[0])
    assert set(_units(doc)) == {"Messages", "SlackPost"}


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_every_outcome_makes_a_valid_line(outcome: Any) -> None:
    metrics, lines = _sink()
    metrics.answer(outcome, total_ms=1)
    doc = validate_emf(lines[0])
    assert doc["Outcome"] == outcome


def test_outcomes_are_few_and_the_dimension_set_small() -> None:
    # cardinality: one dimension, a closed set of values
    assert len(OUTCOMES) <= 10
    assert len(set(OUTCOMES)) == len(OUTCOMES)
    assert len(ANSWER_METRICS) + 1 <= MAX_METRICS


def test_reconnect_line_has_no_dimension_and_counts_one() -> None:
    metrics, lines = _sink(namespace="Ark")
    metrics.reconnect("closed_by_server:1006")
    metrics.reconnect()
    first, second = (validate_emf(line) for line in lines)
    (directive,) = first["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [[]]
    assert directive["Metrics"] == [{"Name": "Reconnects", "Unit": "Count"}]
    assert first["Reconnects"] == 1
    assert first["reason"] == "closed_by_server:1006"
    assert first["event"] == "reconnect_metrics"
    assert "reason" not in second


def test_timestamp_is_now_in_milliseconds_by_default() -> None:
    metrics, lines = _sink()
    before = int(time.time() * 1000)
    metrics.reconnect()
    after = int(time.time() * 1000)
    assert before <= validate_emf(lines[0])["_aws"]["Timestamp"] <= after


def test_default_writer_prints_one_plain_line_per_call_to_stdout(capsys: Any) -> None:
    metrics = EmfMetrics("Ark")
    metrics.answer("answered", total_ms=5)
    metrics.reconnect("x")
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 2 and out.endswith("\n")
    for line in lines:
        doc = validate_emf(line)
        # a plain document, not wrapped in the logger's envelope
        assert "ts" not in doc and "level" not in doc


def test_a_broken_stdout_never_raises_and_is_logged_once() -> None:
    def broken(line: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    metrics = EmfMetrics("Ark", write=broken)
    with captured_messages("ark.metrics") as names:
        metrics.answer("answered", total_ms=1)
        metrics.reconnect()
    assert names.count("metrics_write_failed") == 1


def test_closed_stdout_is_survived(monkeypatch: Any) -> None:
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stdout", closed)
    EmfMetrics("Ark").answer("busy")  # ValueError: I/O operation on closed file, swallowed


def test_null_metrics_accept_the_same_calls_and_print_nothing(capsys: Any) -> None:
    null = NullMetrics()
    null.answer("answered", total_ms=1, queue_wait_ms=2, input_files=0)
    null.reconnect("x")
    assert capsys.readouterr() == ("", "")


def test_make_metrics_follows_the_log_format() -> None:
    assert isinstance(make_metrics("json", "Ns"), EmfMetrics)
    assert isinstance(make_metrics("text", "Ns"), NullMetrics)
    emf = make_metrics("json", "Custom/Ns")
    assert isinstance(emf, EmfMetrics) and emf.namespace == "Custom/Ns"


def test_namespace_bounds() -> None:
    with pytest.raises(ValueError):
        EmfMetrics("")
    with pytest.raises(ValueError):
        EmfMetrics("x" * 256)


def test_validator_rejects_what_the_specification_forbids() -> None:
    # the checker must be able to fail: a dangling metric reference, a numeric dimension,
    # a bad unit and a float timestamp
    good = {
        "_aws": {
            "Timestamp": 1,
            "CloudWatchMetrics": [
                {"Namespace": "N", "Dimensions": [["D"]], "Metrics": [{"Name": "M"}]}
            ],
        },
        "D": "x",
        "M": 1,
    }
    validate_emf(orjson.dumps(good).decode())
    bad_docs = []
    for mutate in (
        lambda d: d.pop("M"),
        lambda d: d.update(D=3),
        lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="ms"),
        lambda d: d["_aws"].update(Timestamp=1.5),
        lambda d: d.update(M="1"),
    ):
        doc = orjson.loads(orjson.dumps(good))
        mutate(doc)
        bad_docs.append(orjson.dumps(doc).decode())
    for line in bad_docs:
        with pytest.raises((AssertionError, KeyError)):
            validate_emf(line)


# ---- the running gateway ------------------------------------------------------------------


@asynccontextmanager
async def _emf_gateway(
    monkeypatch: Any, tmp_path: Any, **overrides: str
) -> AsyncIterator[tuple[FakeSlack, FakeBedrock, Running]]:
    """The real gateway on the loopback fakes, JSON logs (so EMF lines) unless overridden."""
    overrides.setdefault("LOG_FORMAT", "json")
    health = str(tmp_path / "hb.json")
    async with (
        FakeSlack() as slack,
        FakeBedrock() as bedrock,
        running_ark(slack, bedrock, monkeypatch, ARK_HEALTH_FILE=health, **overrides) as ark,
    ):
        yield slack, bedrock, ark


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_gateway_prints_a_reconnect_line_only_with_json_logs(
    monkeypatch: Any, tmp_path: Any, capsys: Any, log_format: str
) -> None:
    async with _emf_gateway(
        monkeypatch, tmp_path, LOG_FORMAT=log_format, ARK_METRICS_NAMESPACE="ArkE2E"
    ) as (slack, _bedrock, ark):
        capsys.readouterr()
        await slack.drop_connection()
        await slack.wait_for_connections(1)
        await ark.shutdown()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    if log_format == "text":
        assert lines == []
        return
    docs = [validate_emf(line) for line in lines]
    reconnects = [d for d in docs if d.get("event") == "reconnect_metrics"]
    assert len(reconnects) == 1
    (directive,) = reconnects[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ArkE2E"
    assert reconnects[0]["Reconnects"] == 1
    assert reconnects[0]["reason"]


async def test_gateway_prints_one_answer_line_per_message_with_its_stages(
    monkeypatch: Any, tmp_path: Any, capsys: Any
) -> None:
    async with _emf_gateway(monkeypatch, tmp_path) as (slack, bedrock, ark):
        slack.add_user("U1", real_name="Ada")
        bedrock.queue_script([Chunk("fine")])
        bedrock.queue_script([HttpError(403, "AccessDeniedException", "no")])
        await slack.send_event(slack.dm_event("first", user="U1"))
        await slack.wait_for_call("reactions.remove")
        await slack.send_event(slack.dm_event("second", user="U1"))
        await slack.wait_for_call("reactions.remove", count=2)
        await ark.shutdown()
    docs = [validate_emf(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    answers = [d for d in docs if d.get("event") == "answer_metrics"]
    assert [d["Outcome"] for d in answers] == ["answered", "error_agent"]
    answered, failed = answers
    for name in ("AnswerLatency", "QueueWait", "FirstByte", "AgentTotal", "SlackPost"):
        assert answered[name] >= 0, name
    assert answered["InputFiles"] == 0
    assert answered["Messages"] == 1
    assert "SlackPost" not in failed and failed["AgentTotal"] >= 0


def _answer_lines(out: str) -> list[dict[str, Any]]:
    docs = [validate_emf(line) for line in out.splitlines() if line.strip()]
    return [d for d in docs if d.get("event") == "answer_metrics"]


async def test_gateway_counts_a_message_refused_as_busy(
    monkeypatch: Any, tmp_path: Any, capsys: Any
) -> None:
    gate = asyncio.Event()
    async with _emf_gateway(
        monkeypatch, tmp_path, MAX_CONCURRENT_REQUESTS="1", ARK_MAX_QUEUED_REQUESTS="0"
    ) as (slack, bedrock, ark):
        bedrock.queue_script([Gate(gate), Chunk("done at last")])
        await slack.send_event(slack.dm_event("first", user="U1"))
        await bedrock.wait_for_invocations(1)
        await slack.send_event(slack.dm_event("second", user="U2"))
        await slack.wait_for_call("chat.postMessage")  # the busy reply
        gate.set()
        await slack.wait_for_call("chat.postMessage", count=2)
        await slack.wait_for_call("reactions.remove")
        await ark.shutdown()
    answers = _answer_lines(capsys.readouterr().out)
    assert [d["Outcome"] for d in answers] == ["busy", "answered"]
    busy = answers[0]
    assert busy["Messages"] == 1
    # nothing was timed for a refused message
    for name in ("AnswerLatency", "QueueWait", "FirstByte", "AgentTotal", "SlackPost"):
        assert name not in busy, name
    assert len(bedrock.invocations) == 1


async def test_gateway_counts_an_empty_agent_answer(
    monkeypatch: Any, tmp_path: Any, capsys: Any
) -> None:
    async with _emf_gateway(monkeypatch, tmp_path) as (slack, bedrock, ark):
        bedrock.queue_script([Chunk("   ")])
        await slack.send_event(slack.dm_event("say nothing", user="U1"))
        await slack.wait_for_call("reactions.remove")
        await ark.shutdown()
    (empty,) = _answer_lines(capsys.readouterr().out)
    assert empty["Outcome"] == "error_empty"
    assert empty["Messages"] == 1
    assert empty["AgentTotal"] >= 0
    assert empty["InputFiles"] == 0
    assert "SlackPost" not in empty


async def test_gateway_counts_an_internal_error_of_the_poster(
    monkeypatch: Any, tmp_path: Any, capsys: Any
) -> None:
    async def broken_post_answer(self: Any, target: Any, response: Any) -> int:
        raise RuntimeError("a bug in the poster")

    monkeypatch.setattr(SlackPoster, "post_answer", broken_post_answer)
    async with _emf_gateway(monkeypatch, tmp_path) as (slack, bedrock, ark):
        bedrock.queue_script([Chunk("an answer that never gets posted")])
        await slack.send_event(slack.dm_event("hello", user="U1"))
        await slack.wait_for_call("reactions.remove")
        await ark.shutdown()
        posts = [c.params.get("text", "") for c in slack.calls_to("chat.postMessage")]
    (failed,) = _answer_lines(capsys.readouterr().out)
    assert failed["Outcome"] == "error_internal"
    assert failed["Messages"] == 1
    assert failed["AnswerLatency"] >= 0
    # the user still heard back (the generic error reply), not the answer
    assert len(posts) == 1
    assert "never gets posted" not in posts[0]


async def test_gateway_counts_the_input_files_of_an_answer(
    monkeypatch: Any, tmp_path: Any, capsys: Any
) -> None:
    async with _emf_gateway(monkeypatch, tmp_path) as (slack, bedrock, ark):
        bedrock.queue_script([Chunk("3 and 7")])
        files = [
            slack.file_object("one.csv", b"a,b\n1,2\n", mimetype="text/csv"),
            slack.file_object("two.csv", b"a,b\n3,4\n", mimetype="text/csv"),
        ]
        await slack.send_event(slack.dm_event("sum them", user="U1", files=files))
        await slack.wait_for_call("reactions.remove")
        await ark.shutdown()
    (answered,) = _answer_lines(capsys.readouterr().out)
    assert answered["Outcome"] == "answered"
    assert answered["InputFiles"] == 2
    assert len(bedrock.invocations[0].body["sessionState"]["files"]) == 2
