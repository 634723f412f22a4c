"""Drives a real bot process (Ark or the Bolt bot) against the loopback fakes of tests/fakes.

The fakes run in this process; the bot runs as a subprocess (`python -m ark`, or
`python -m benchmarks.bolt_bot`) with the environment an operator would set, pointed at the
fakes exactly as `tests.e2e_harness.gateway_env` does. Memory and CPU come from
/proc/<pid>/status (VmRSS, VmHWM) and /proc/<pid>/stat (utime + stime).

Every wait is bounded; a bot that does not answer in time makes the row report what it did
(`answered 17/20`) rather than hang the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e_harness import gateway_env
from tests.fakes.bedrock import Chunk, Delay, FakeBedrock, Invocation, Step
from tests.fakes.slack import Call, FakeSlack

REPO_ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
CONNECT_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
MARKER_RE = re.compile(r"msg(\d{6})")
POST_METHODS = frozenset(
    {"chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream"}
)
# Fake, obviously-not-real AWS credentials and no shared config: nothing reaches AWS.
AWS_ISOLATION = {
    "AWS_ACCESS_KEY_ID": "AKIABENCHBENCHBENCH0",
    "AWS_SECRET_ACCESS_KEY": "bench-secret-key-not-real",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
}
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "MALLOC_ARENA_MAX")


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct * len(ordered) / 100)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if v == v]  # drop NaN
    return statistics.median(clean) if clean else float("nan")


# --------------------------------------------------------------------------- /proc


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def rss_mb(pid: int) -> float:
    """Resident set size now (VmRSS), MiB."""
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size over the process's life (VmHWM), MiB."""
    return _status_kb(pid, "VmHWM") / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (utime + stime), seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        stat = fh.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --------------------------------------------------------------------------- the bot process


@dataclass(frozen=True)
class Target:
    """A bot to measure: its name in the table, the module that runs it, the interpreter."""

    name: str
    module: str
    python: str = sys.executable


ARK = Target("Ark", "ark")
BOLT = Target("Bolt", "benchmarks.bolt_bot")


def bot_env(
    slack: FakeSlack, bedrock: FakeBedrock, workdir: str, **overrides: str
) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k in _PASSED_THROUGH}
    env = {
        **base,
        **AWS_ISOLATION,
        **gateway_env(slack, bedrock, LOG_LEVEL="info"),
        "ARK_HEALTH_FILE": str(Path(workdir) / "ark-health.json"),
        "PYTHONPATH": str(REPO_ROOT),
    }
    env.update(overrides)
    return env


@dataclass
class BotProcess:
    target: Target
    process: asyncio.subprocess.Process
    started_at: float
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.returncode is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, *, graceful: bool = True) -> None:
        if self.process.returncode is not None:
            return
        if graceful:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await self.process.wait()
                return
            except TimeoutError:
                pass
        self.process.kill()
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await self.process.wait()


async def start_bot(
    target: Target, slack: FakeSlack, bedrock: FakeBedrock, workdir: str, **overrides: str
) -> BotProcess:
    log_path = Path(workdir) / f"{target.name.lower()}-{time.monotonic_ns()}.log"
    env = bot_env(slack, bedrock, workdir, **overrides)
    with open(log_path, "wb") as log_file:  # noqa: ASYNC230 (a local file, opened once)
        started_at = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            target.python,
            "-m",
            target.module,
            env=env,
            cwd=workdir,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    return BotProcess(target, process, started_at, log_path)


# --------------------------------------------------------------------------- the floor

# What a bare interpreter holds once it has imported what Ark cannot run without and built
# the one Bedrock client: the part of idle RSS that Ark's own code does not decide.
FLOOR_CODE = """
import asyncio, os, ssl
import aiohttp, httpx, websockets.asyncio.client, orjson, certifi
from aiobotocore.session import AioSession

def rss():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:")) / 1024

async def main():
    bare = rss()
    async with AioSession().create_client("bedrock-agent-runtime", region_name="us-east-1"):
        ssl.create_default_context(cafile=certifi.where())
        print(f"{bare:.1f} {rss():.1f}")

asyncio.run(main())
"""


async def dependency_floor_mb(python: str) -> tuple[float, float]:
    """(RSS after the imports, RSS once the Bedrock client exists) of a bare interpreter, MiB;
    NaN when it cannot be measured."""
    env = {k: v for k, v in os.environ.items() if k in _PASSED_THROUGH} | AWS_ISOLATION
    try:
        process = await asyncio.create_subprocess_exec(
            python,
            "-c",
            FLOOR_CODE,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            out, _ = await process.communicate()
        bare, with_client = (float(x) for x in out.split())
    except (OSError, ValueError, TimeoutError):
        return float("nan"), float("nan")
    return bare, with_client


# --------------------------------------------------------------------------- the driver


def echo_after(delay_s: float) -> Callable[[Invocation], Sequence[Step]]:
    """An agent that answers `You said: <input>` after `delay_s` (0: at once)."""

    def script(invocation: Invocation) -> Sequence[Step]:
        answer = Chunk(f"You said: {invocation.body.get('inputText', '')}")
        return [Delay(delay_s), answer] if delay_s > 0 else [answer]

    return script


@dataclass
class Driver:
    """Sends marked DMs (`msg000001`, each its own thread) and finds their answers."""

    slack: FakeSlack
    bedrock: FakeBedrock
    envelope_of: dict[int, str] = field(default_factory=dict)
    answered_at: dict[int, float] = field(default_factory=dict)
    posts_seen: int = 0
    _next: int = 0
    _calls_scanned: int = 0
    _invocations_scanned: int = 0
    invocation_of: dict[int, Invocation] = field(default_factory=dict)

    async def send(self, *, files: list[dict[str, Any]] | None = None) -> int:
        self._next += 1
        n = self._next
        event = self.slack.dm_event(f"msg{n:06d}", files=files)
        self.envelope_of[n] = await self.slack.send_event(event)
        return n

    def scan(self) -> int:
        """Index new posts and invocations; return how many messages are answered."""
        calls: list[Call] = self.slack.calls
        for call in calls[self._calls_scanned :]:
            if call.method not in POST_METHODS:
                continue
            self.posts_seen += 1
            text = call.params.get("text") or call.params.get("markdown_text") or ""
            for match in MARKER_RE.finditer(str(text)):
                self.answered_at.setdefault(int(match.group(1)), call.at)
        self._calls_scanned = len(calls)
        invocations = self.bedrock.invocations
        for inv in invocations[self._invocations_scanned :]:
            match = MARKER_RE.search(str(inv.body.get("inputText", "")))
            if match:
                self.invocation_of.setdefault(int(match.group(1)), inv)
        self._invocations_scanned = len(invocations)
        return len(self.answered_at)

    def answered(self, ids: Sequence[int]) -> int:
        self.scan()
        return sum(1 for n in ids if n in self.answered_at)

    async def wait_answered(self, ids: Sequence[int], timeout_s: float) -> int:
        """Wait until every message of `ids` is answered (or the time is up); return how many."""
        with contextlib.suppress(TimeoutError):
            await self.slack.wait_until(lambda: self.answered(ids) >= len(ids), timeout_s=timeout_s)
        return self.answered(ids)

    def ack_latencies_ms(self, ids: Sequence[int]) -> tuple[list[float], int]:
        """Send-to-ack latency of each acked envelope, and how many were not acked."""
        out: list[float] = []
        missing = 0
        for n in ids:
            envelope_id = self.envelope_of[n]
            acked = self.slack.ack_times.get(envelope_id)
            if acked is None:
                missing += 1
            else:
                out.append((acked - self.slack.sent_times[envelope_id]) * 1000)
        return out, missing

    async def wait_acked(self, ids: Sequence[int], timeout_s: float) -> None:
        def all_acked() -> bool:
            return all(self.envelope_of[n] in self.slack.ack_times for n in ids)

        with contextlib.suppress(TimeoutError):
            await self.slack.wait_until(all_acked, timeout_s=timeout_s)

    def overheads_ms(self, ids: Sequence[int]) -> tuple[list[float], list[float]]:
        """(envelope sent -> InvokeAgent received, last chunk sent -> answer post received)."""
        self.scan()
        inbound: list[float] = []
        outbound: list[float] = []
        for n in ids:
            inv = self.invocation_of.get(n)
            if inv is None:
                continue
            sent = self.slack.sent_times[self.envelope_of[n]]
            inbound.append((inv.received_at - sent) * 1000)
            posted = self.answered_at.get(n)
            if posted is not None and inv.last_chunk_at:
                outbound.append((posted - inv.last_chunk_at) * 1000)
        return inbound, outbound


# --------------------------------------------------------------------------- results


@dataclass
class Measurements:
    """Everything measured for one bot; NaN where a row was not measured."""

    start_s: list[float] = field(default_factory=list)
    idle_rss_mb: float = float("nan")
    idle_cpu_pct: float = float("nan")
    steady_p50_ms: list[float] = field(default_factory=list)
    steady_p99_ms: list[float] = field(default_factory=list)
    steady_unacked: int = 0
    burst_p50_ms: float = float("nan")
    burst_p99_ms: float = float("nan")
    burst_max_ms: float = float("nan")
    burst_unacked: int = 0
    inbound_p50_ms: list[float] = field(default_factory=list)
    inbound_p99_ms: list[float] = field(default_factory=list)
    outbound_p50_ms: list[float] = field(default_factory=list)
    outbound_p99_ms: list[float] = field(default_factory=list)
    answers_per_s: list[float] = field(default_factory=list)
    files_peak_rss_mb: float = float("nan")
    files_answered: int = 0
    files_sent: int = 0
    files_queued_notices: int = 0
    floor_imports_mb: float = float("nan")
    floor_client_mb: float = float("nan")
    notes: list[str] = field(default_factory=list)
    # one value per fresh process; the scalar rows above are their medians (worst for counts)
    burst_runs: list[tuple[float, float, float, int]] = field(default_factory=list)
    files_runs: list[tuple[float, int, int, int]] = field(default_factory=list)

    def summarise(self) -> None:
        """Set the burst and file-load rows from their runs: medians; for what went
        unacked or unanswered, the worst run."""
        if self.burst_runs:
            p50, p99, top, missing = zip(*self.burst_runs, strict=True)
            self.burst_p50_ms, self.burst_p99_ms = median(p50), median(p99)
            self.burst_max_ms, self.burst_unacked = median(top), max(missing)
        if self.files_runs:
            peak, sent, answered, queued = zip(*self.files_runs, strict=True)
            self.files_peak_rss_mb = median(peak)
            worst = min(range(len(sent)), key=lambda i: answered[i] - sent[i])
            self.files_sent, self.files_answered = sent[worst], answered[worst]
            self.files_queued_notices = round(median(queued))


@dataclass(frozen=True)
class Sizes:
    """How much of everything a run does (the full run, or --quick)."""

    starts: int  # extra process starts, only to time start -> connected
    idle_s: float
    steady_rate: float
    steady_s: float
    steady_repeats: int
    steady_agent_s: float
    burst: int
    burst_agent_s: float
    overhead_messages: int
    overhead_repeats: int
    throughput_messages: int
    throughput_repeats: int
    throughput_window: int
    file_messages: int
    files_per_message: int
    file_bytes: int
    file_agent_s: float
    heavy_repeats: int = 1  # fresh processes for the burst and for the file load (medians)


FULL = Sizes(
    starts=2,
    idle_s=60.0,
    steady_rate=50.0,
    steady_s=10.0,
    steady_repeats=3,
    steady_agent_s=0.2,
    burst=500,
    burst_agent_s=2.0,
    overhead_messages=50,
    overhead_repeats=3,
    throughput_messages=300,
    throughput_repeats=3,
    throughput_window=20,
    file_messages=20,
    files_per_message=5,
    file_bytes=2 * 1024 * 1024,
    file_agent_s=1.0,
    heavy_repeats=3,
)
QUICK = Sizes(
    starts=0,
    idle_s=1.0,
    steady_rate=50.0,
    steady_s=1.0,
    steady_repeats=1,
    steady_agent_s=0.1,
    burst=40,
    burst_agent_s=0.5,
    overhead_messages=5,
    overhead_repeats=1,
    throughput_messages=20,
    throughput_repeats=1,
    throughput_window=10,
    file_messages=3,
    files_per_message=5,
    file_bytes=64 * 1024,
    file_agent_s=0.2,
)


# --------------------------------------------------------------------------- workloads


async def _connect(
    target: Target, slack: FakeSlack, bedrock: FakeBedrock, workdir: str, m: Measurements
) -> tuple[BotProcess, Driver]:
    """Start the bot; time process start -> its first envelope acked; wait for the answer."""
    bedrock.script = echo_after(0)
    proc = await start_bot(target, slack, bedrock, workdir)
    driver = Driver(slack, bedrock)
    try:
        await slack.wait_for_connections(1, timeout_s=CONNECT_TIMEOUT_S)
        probe = await driver.send()
        await slack.wait_for_ack(driver.envelope_of[probe], timeout_s=CONNECT_TIMEOUT_S)
    except TimeoutError:
        await proc.stop(graceful=False)
        raise RuntimeError(f"{target.name} never connected:\n{proc.log_tail()}") from None
    m.start_s.append(slack.ack_times[driver.envelope_of[probe]] - proc.started_at)
    if await driver.wait_answered([probe], CONNECT_TIMEOUT_S) != 1:
        await proc.stop(graceful=False)
        raise RuntimeError(f"{target.name} never answered:\n{proc.log_tail()}")
    return proc, driver


async def _settle(slack: FakeSlack, seconds: float = 0.5) -> None:
    """Let the bot finish its after-answer calls (reaction removal) before measuring."""
    await asyncio.sleep(seconds)


async def measure_idle(proc: BotProcess, sizes: Sizes, m: Measurements) -> None:
    cpu_before = cpu_seconds(proc.pid)
    wall_before = time.monotonic()
    peak = rss_mb(proc.pid)
    deadline = wall_before + sizes.idle_s
    while (now := time.monotonic()) < deadline:
        await asyncio.sleep(min(1.0, deadline - now))
        peak = max(peak, rss_mb(proc.pid))
    wall = time.monotonic() - wall_before
    m.idle_cpu_pct = (cpu_seconds(proc.pid) - cpu_before) / wall * 100
    m.idle_rss_mb = peak


async def measure_steady(
    driver: Driver, bedrock: FakeBedrock, sizes: Sizes, m: Measurements
) -> None:
    """Envelopes at a steady rate while answers are in flight; ack latency per repeat."""
    bedrock.script = echo_after(sizes.steady_agent_s)
    count = max(1, round(sizes.steady_rate * sizes.steady_s))
    for _ in range(sizes.steady_repeats):
        ids: list[int] = []
        t0 = time.monotonic()
        for i in range(count):
            pause = t0 + i / sizes.steady_rate - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            ids.append(await driver.send())
        await driver.wait_acked(ids, timeout_s=10.0)
        latencies, missing = driver.ack_latencies_ms(ids)
        m.steady_p50_ms.append(percentile(latencies, 50))
        m.steady_p99_ms.append(percentile(latencies, 99))
        m.steady_unacked += missing
        answered = await driver.wait_answered(ids, timeout_s=60.0)
        if answered < len(ids):
            m.notes.append(f"steady rate: {answered}/{len(ids)} answered")
        await _settle(driver.slack)


async def measure_overhead(
    driver: Driver, bedrock: FakeBedrock, sizes: Sizes, m: Measurements
) -> None:
    """One message at a time with an instant agent: the gateway's own latency each way."""
    bedrock.script = echo_after(0)
    for _ in range(sizes.overhead_repeats):
        ids: list[int] = []
        for _ in range(sizes.overhead_messages):
            n = await driver.send()
            ids.append(n)
            await driver.wait_answered([n], timeout_s=30.0)
            await _settle(driver.slack, 0.02)
        inbound, outbound = driver.overheads_ms(ids)
        m.inbound_p50_ms.append(percentile(inbound, 50))
        m.inbound_p99_ms.append(percentile(inbound, 99))
        m.outbound_p50_ms.append(percentile(outbound, 50))
        m.outbound_p99_ms.append(percentile(outbound, 99))


async def measure_throughput(
    driver: Driver, bedrock: FakeBedrock, sizes: Sizes, m: Measurements
) -> None:
    """Answers per second with an instant agent, `throughput_window` messages outstanding."""
    bedrock.script = echo_after(0)
    for _ in range(sizes.throughput_repeats):
        ids: list[int] = []
        t0 = time.monotonic()
        deadline = t0 + 120.0
        while time.monotonic() < deadline:
            done = driver.answered(ids)
            if done >= sizes.throughput_messages:
                break
            while (
                len(ids) < sizes.throughput_messages and len(ids) - done < sizes.throughput_window
            ):
                ids.append(await driver.send())
            sent = list(ids)
            try:
                await driver.slack.wait_until(
                    lambda d=done, s=sent: driver.answered(s) > d, timeout_s=30.0
                )
            except TimeoutError:
                break
        done = driver.answered(ids)
        last = max((driver.answered_at[n] for n in ids if n in driver.answered_at), default=t0)
        m.answers_per_s.append(done / (last - t0) if last > t0 else float("nan"))
        if done < sizes.throughput_messages:
            m.notes.append(f"throughput: {done}/{sizes.throughput_messages} answered")
        await _settle(driver.slack)


async def measure_burst(
    driver: Driver, bedrock: FakeBedrock, sizes: Sizes, m: Measurements
) -> None:
    """`burst` envelopes sent at once, the agent slow: how fast is each acked?"""
    bedrock.script = echo_after(sizes.burst_agent_s)
    ids: list[int] = []
    for _ in range(sizes.burst):
        ids.append(await driver.send())
        # back to back, but the fake reads each ack as it arrives (not after the last send)
        await asyncio.sleep(0)
    await driver.wait_acked(ids, timeout_s=30.0)
    latencies, missing = driver.ack_latencies_ms(ids)
    m.burst_runs.append(
        (
            percentile(latencies, 50),
            percentile(latencies, 99),
            max(latencies, default=float("nan")),
            missing,
        )
    )


async def measure_files(
    driver: Driver, slack: FakeSlack, proc: BotProcess, sizes: Sizes, m: Measurements
) -> None:
    """Messages with files arriving together, the agent slow: peak RSS, all answered."""
    driver.bedrock.script = echo_after(sizes.file_agent_s)
    data = os.urandom(sizes.file_bytes)  # one buffer, hosted many times (the fake copies none)
    events = []
    for i in range(sizes.file_messages):
        files = [
            slack.file_object(f"part{i}-{j}.csv", data, mimetype="text/csv")
            for j in range(sizes.files_per_message)
        ]
        events.append(files)
    posts_before = len(slack.posts)
    ids = [await driver.send(files=files) for files in events]
    answered = await driver.wait_answered(ids, timeout_s=180.0)
    peak_mb = peak_rss_mb(proc.pid)
    expected_bytes = sizes.files_per_message * sizes.file_bytes
    short = [
        inv for n in ids if (inv := driver.invocation_of.get(n)) and inv.file_bytes < expected_bytes
    ]
    if short:
        m.notes.append(f"files: {len(short)} invocation(s) carried fewer bytes than sent")
    queued = [c for c in slack.posts[posts_before:] if "queued" in str(c.params.get("text", ""))]
    m.files_runs.append((peak_mb, len(ids), answered, len(queued)))


async def run_target(target: Target, sizes: Sizes, log: Callable[[str], None]) -> Measurements:
    """Every row for one bot, each group of rows in a fresh process."""
    m = Measurements()
    if target is ARK or target.module == ARK.module:
        m.floor_imports_mb, m.floor_client_mb = await dependency_floor_mb(target.python)
    with tempfile.TemporaryDirectory(prefix="ark-bench-") as workdir:
        # 1. start, idle, steady rate, overhead, throughput
        async with FakeSlack() as slack, FakeBedrock(keep_file_bytes=False) as bedrock:
            slack.add_user("U1", real_name="Bench User", tz="UTC")
            proc, driver = await _connect(target, slack, bedrock, workdir, m)
            try:
                await _settle(slack)
                log(f"{target.name}: connected in {m.start_s[-1]:.2f} s; idle {sizes.idle_s:.0f} s")
                await measure_idle(proc, sizes, m)
                log(f"{target.name}: steady {sizes.steady_rate:.0f}/s")
                await measure_steady(driver, bedrock, sizes, m)
                log(f"{target.name}: gateway overhead")
                await measure_overhead(driver, bedrock, sizes, m)
                log(f"{target.name}: throughput")
                await measure_throughput(driver, bedrock, sizes, m)
            finally:
                await proc.stop()
        for run in range(1, sizes.heavy_repeats + 1):
            # 2. the burst, in its own process (it leaves hundreds of answers in flight)
            async with FakeSlack() as slack, FakeBedrock(keep_file_bytes=False) as bedrock:
                slack.add_user("U1", real_name="Bench User", tz="UTC")
                proc, driver = await _connect(target, slack, bedrock, workdir, m)
                try:
                    await _settle(slack)
                    log(f"{target.name}: burst of {sizes.burst} (run {run})")
                    await measure_burst(driver, bedrock, sizes, m)
                finally:
                    await proc.stop(graceful=False)
            # 3. files, in its own process (VmHWM is the peak over the process's life)
            async with FakeSlack() as slack, FakeBedrock(keep_file_bytes=False) as bedrock:
                slack.add_user("U1", real_name="Bench User", tz="UTC")
                proc, driver = await _connect(target, slack, bedrock, workdir, m)
                try:
                    await _settle(slack)
                    total = sizes.file_messages * sizes.files_per_message * sizes.file_bytes
                    mb = total / 2**20
                    log(
                        f"{target.name}: files ({mb:.0f} MB in {sizes.file_messages} messages, "
                        f"run {run})"
                    )
                    await measure_files(driver, slack, proc, sizes, m)
                finally:
                    await proc.stop()
        m.summarise()
        # 4. more starts, for a median
        for _ in range(sizes.starts):
            async with FakeSlack() as slack, FakeBedrock() as bedrock:
                proc, _ = await _connect(target, slack, bedrock, workdir, m)
                await proc.stop()
    return m
