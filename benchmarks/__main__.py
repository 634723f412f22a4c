"""`make bench`: Ark against a minimal Bolt bot, on loopback fakes, one table.

    python -m benchmarks            # the full run (minutes); writes docs/performance.md
    python -m benchmarks --quick    # tiny sizes, seconds; writes only with --output
    python -m benchmarks --no-bolt  # Ark alone

The Bolt bot needs the benchmark extra (`pip install -e '.[bench]'`); without slack_bolt the
Bolt column is skipped and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import logging
import sys
import time
from pathlib import Path

from benchmarks.harness import (
    ARK,
    BOLT,
    FULL,
    QUICK,
    REPO_ROOT,
    Measurements,
    Sizes,
    median,
    run_target,
)
from benchmarks.report import (
    machine,
    render_markdown,
    render_text,
    render_verdicts,
    table,
    verdicts,
)

DEFAULT_OUTPUT = REPO_ROOT / "docs" / "performance.md"

METHOD = """\
## How it is measured

`make bench` (or `python -m benchmarks`) starts the real bot as its own process,
`python -m ark` with the environment an operator would set, pointed at the loopback fakes of
`tests/fakes` (a Slack Web API + Socket Mode server and a Bedrock InvokeAgent server speaking
the binary event stream) exactly as the end-to-end tests do. Nothing leaves the machine. The
fakes run in the benchmark's own process and timestamp everything with one monotonic clock.
Then the same workload runs against `benchmarks/bolt_bot.py`, a minimal bot written the way
Bolt's documentation shows (slack_bolt `AsyncApp`, `AsyncSocketModeHandler` on aiohttp,
aiobotocore `invoke_agent`, the answer posted with `say()`), in its own process. The Bolt bot
does less per message than Ark (no :eyes: reaction, no user lookup, no budget, no busy
replies), so the comparison flatters Bolt on latency.

- **start → connected**: from spawning the process until the fake Slack receives the ack of
  the first envelope sent right after `hello` (median of every start in the run).
- **idle RSS / CPU**: after one answered message, VmRSS (the highest 1 s sample) and
  utime + stime from /proc over the idle window.
- **ack p50 / p99 at a steady rate**: envelopes (each a DM in its own thread) sent at a fixed
  rate while the agent takes {steady_agent}s per answer; the fake stamps each envelope as it
  sends it and its ack as it reads it. Median over {steady_repeats} runs of {steady_s}s.
- **burst**: {burst} envelopes sent back to back, the agent taking {burst_agent}s; only the
  acks are measured (Ark answers {accepted} and tells the rest it is busy; Bolt starts all).
  Median of {heavy} fresh processes (envelopes never acked: the worst of them).
- **overhead**: one message at a time with an instant agent: envelope sent → InvokeAgent
  request received by the fake agent, and last chunk sent by the fake agent → the answer's
  chat.postMessage received by the fake Slack. Median over {overhead_repeats} runs of
  {overhead_messages} messages.
- **answers per second**: an instant agent, {window} messages kept outstanding (a closed
  loop, inside Ark's queue so nothing is refused), {throughput} messages, median of
  {throughput_repeats} runs.
- **peak RSS**: a fresh process gets {file_messages} messages at once, each with
  {files_per_message} attachments, the agent taking {file_agent}s; VmHWM once every message
  is answered. Ark runs with its default ARK_MAX_INFLIGHT_FILE_MB=64. Median of {heavy}
  fresh processes (messages answered: the worst of them).
- **idle** is one {idle_s}window per bot (a median over repeated minutes would triple the
  run); idle RSS moves by tenths of a megabyte between runs.
"""


def _method(sizes: Sizes) -> str:
    return METHOD.format(
        steady_agent=f"{sizes.steady_agent_s:g} ",
        steady_repeats=sizes.steady_repeats,
        steady_s=f"{sizes.steady_s:g} ",
        burst=sizes.burst,
        burst_agent=f"{sizes.burst_agent_s:g} ",
        accepted="up to 30 (10 running + 20 queued)",
        overhead_repeats=sizes.overhead_repeats,
        overhead_messages=sizes.overhead_messages,
        window=sizes.throughput_window,
        throughput=sizes.throughput_messages,
        throughput_repeats=sizes.throughput_repeats,
        file_messages=sizes.file_messages,
        files_per_message=sizes.files_per_message,
        file_agent=f"{sizes.file_agent_s:g} ",
        heavy=sizes.heavy_repeats,
        idle_s=f"{sizes.idle_s:g} s ",
    )


def _notes(name: str, m: Measurements | None) -> list[str]:
    if m is None:
        return []
    notes = [f"{name}: {note}" for note in m.notes]
    if m.floor_client_mb == m.floor_client_mb:  # measured (not NaN)
        notes.append(
            f"{name}: dependency floor (a bare interpreter importing aiohttp, botocore, httpx, "
            f"websockets, orjson): {m.floor_imports_mb:.1f} MB, "
            f"{m.floor_client_mb:.1f} MB with the bedrock-agent-runtime client built"
        )
    if m.steady_unacked or m.burst_unacked:
        notes.append(
            f"{name}: envelopes never acked: {m.steady_unacked} at the steady rate, "
            f"{m.burst_unacked} in the burst"
        )
    notes.append(
        f"{name}: file load answered {m.files_answered}/{m.files_sent}"
        + (f", {m.files_queued_notices} told they were queued" if m.files_queued_notices else "")
    )
    return notes


def _standing(ark: Measurements, bolt: Measurements | None) -> list[str]:
    """What the numbers mean, computed from this run (so a rerun keeps it true)."""
    lines = ["## Where Ark stands", ""]
    floor = ark.floor_client_mb
    if floor == floor and ark.idle_rss_mb == ark.idle_rss_mb:
        lines.append(
            f"- Idle memory: a bare interpreter that only imports the libraries Ark cannot do "
            f"without and builds the bedrock-agent-runtime client holds {floor:.1f} MB "
            f"(botocore's client alone is {floor - ark.floor_imports_mb:.1f} MB of it, mostly "
            f"its endpoints.json, which it keeps decoded). Ark idles at "
            f"{ark.idle_rss_mb:.1f} MB: its own code, connections and caches are the "
            f"{ark.idle_rss_mb - floor:.1f} MB above that floor "
            + (
                f"(a 60 MB target leaves {60 - floor:.1f} MB for them: the markdown parser "
                "alone takes about 2 MB, each TLS context with the CA bundle about 2.6 MB)."
                if floor < 60
                else "(a 60 MB target is below the floor of this stack on this interpreter)."
            )
        )
    tput = median(ark.answers_per_s)
    bolt_tput = median(bolt.answers_per_s) if bolt is not None else float("nan")
    if tput == tput and bolt_tput == bolt_tput:
        lines.append(
            f"- Throughput: {tput:.0f} answers/s against the Bolt bot's {bolt_tput:.0f}. Per "
            "answer Ark makes three Slack calls (reactions.add, chat.postMessage, "
            "reactions.remove) where the Bolt bot makes one, and renders the answer; each "
            "call goes through httpx, whose connection pool scans every pooled connection "
            "on each request. Both are far above what one Slack workspace sends (Slack "
            "allows about one message per second per channel)."
        )
    lines.append("")
    return lines


def document(
    sizes: Sizes,
    quick: bool,
    ark: Measurements,
    bolt: Measurements | None,
    bolt_note: str,
    python: str = sys.executable,
) -> str:
    info = machine(python)
    cells = table(sizes, ark, bolt)
    parts = [
        "# Performance",
        "",
        "Ark against a minimal Bolt bot doing the same job, measured by `make bench` "
        + ("(quick mode: tiny sizes, not for comparison)." if quick else "(full run)."),
        "Every number comes from the run recorded here; rerun `make bench` to reproduce it on "
        "your machine (it rewrites this file).",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
        "## Results",
        "",
        render_markdown(cells),
        "",
    ]
    if bolt_note:
        parts += [bolt_note, ""]
    notes = _notes("Ark", ark) + _notes("Bolt", bolt)
    if notes:
        parts += ["Run notes:", "", *[f"- {n}" for n in notes], ""]
    parts += _standing(ark, bolt)
    parts += [
        "## Targets (issue 4)",
        "",
        render_verdicts(verdicts(ark, bolt)),
        "",
        _method(sizes),
    ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--no-bolt", action="store_true", help="measure Ark alone")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter that runs both bots (default: this one); it needs ark and, for "
        "Bolt, the bench extra installed",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"write the Markdown report here (default for the full run: {DEFAULT_OUTPUT})",
    )
    args = parser.parse_args(argv)
    # a bot killed mid-burst leaves the fakes' servers with reset connections: not news
    for name in ("aiohttp", "websockets"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    sizes = QUICK if args.quick else FULL
    output = args.output if args.output is not None else (None if args.quick else DEFAULT_OUTPUT)

    def log(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    bolt_note = ""
    run_bolt = not args.no_bolt
    if run_bolt and importlib.util.find_spec("slack_bolt") is None:
        run_bolt = False
        bolt_note = (
            "The Bolt bot was skipped: slack_bolt is not installed "
            "(`pip install -e '.[bench]'`, which `make bench` does)."
        )
    elif not run_bolt:
        bolt_note = "The Bolt bot was skipped (--no-bolt)."
    if bolt_note:
        log(bolt_note)

    ark_target = dataclasses.replace(ARK, python=args.python)
    bolt_target = dataclasses.replace(BOLT, python=args.python)
    ark = asyncio.run(run_target(ark_target, sizes, log))
    bolt = asyncio.run(run_target(bolt_target, sizes, log)) if run_bolt else None

    print(render_text(table(sizes, ark, bolt)))
    if bolt_note:
        print(bolt_note)
    for verdict in verdicts(ark, bolt):
        met = "not measured" if verdict.met is None else ("met" if verdict.met else "MISSED")
        print(f"{met:>12}  {verdict.target}: {verdict.measured}")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        text = document(sizes, args.quick, ark, bolt, bolt_note, args.python)
        output.write_text(text, encoding="utf-8")
        log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
