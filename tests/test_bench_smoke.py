"""`make bench` cannot rot: its quick mode runs the real `ark` process through every row.

No timing is asserted (the numbers are the benchmark's business, not the suite's); the run
must finish, produce a number for every Ark row, answer every message and write its report.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from benchmarks.harness import QUICK, Measurements, percentile
from benchmarks.report import rows, table, verdicts

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 150.0


async def test_quick_benchmark_runs_every_row_against_both_real_processes(tmp_path):
    output = tmp_path / "performance.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks",
        "--quick",
        "--output",
        str(output),
        cwd=REPO_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()[-3000:]
    printed = stdout.decode()
    assert "skipped" not in printed  # the Bolt bot ran too (slack_bolt is a dev dependency)
    for row in rows(QUICK):
        line = next(line for line in printed.splitlines() if line.startswith(row.label))
        ark_cell, bolt_cell, ratio = line[len(row.label) :].split()[-3:]
        float(ark_cell)  # a number, never n/a: every row was measured, for both bots
        if float(bolt_cell) != 0:  # 0 / 0 (idle CPU in a 1 s window) has no ratio
            float(ratio)
    report = output.read_text(encoding="utf-8")
    assert report.startswith("# Performance")
    assert "## Targets (issue 4)" in report and "## Machine" in report
    n = QUICK.file_messages
    assert f"Ark: file load answered {n}/{n}" in report  # nothing dropped
    assert f"Bolt: file load answered {n}/{n}" in report


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) != percentile([], 50)  # NaN


def test_table_and_verdicts_without_bolt_say_so():
    m = Measurements(start_s=[0.5], idle_rss_mb=50.0, files_sent=2, files_answered=2)
    cells = table(QUICK, m, None)
    assert cells[0] == ["measure", "unit", "Ark", "Bolt", "Ark / Bolt"]
    assert all(row[3] == "skipped" for row in cells[1:])
    by_target = {v.target: v for v in verdicts(m, None)}
    assert by_target["start → connected ≤ 1.5 s"].met is True
    assert by_target["burst: ack p99 ≤ 0.5 × the Bolt bot's"].met is None


def test_heavy_rows_are_medians_of_their_runs_and_losses_the_worst_run():
    m = Measurements()
    m.burst_runs = [(10.0, 50.0, 60.0, 0), (12.0, 40.0, 45.0, 2), (11.0, 90.0, 95.0, 0)]
    m.files_runs = [(140.0, 20, 20, 3), (150.0, 20, 19, 5), (120.0, 20, 20, 4)]
    m.summarise()
    assert (m.burst_p50_ms, m.burst_p99_ms, m.burst_max_ms) == (11.0, 50.0, 60.0)
    assert m.burst_unacked == 2  # one run lost two acks: the row says so
    assert m.files_peak_rss_mb == 140.0
    assert (m.files_answered, m.files_sent) == (19, 20)
    assert m.files_queued_notices == 4
