"""Health without a port: the gateway's heartbeat file, and `ark health` that reads it.

The running gateway (`ark.app.serve`) keeps a small JSON file up to date at ARK_HEALTH_FILE
(default `<tempdir>/ark-health.json`): rewritten every HEARTBEAT_INTERVAL_S and at once on
every connection state change, atomically (a temporary file, then os.replace), and removed
when the gateway exits:

    {"pid": 7, "connected": true, "state": "connected", "last_inbound_age_s": 2.1,
     "written_at": 1767225600.5, "interval_s": 10.0, "version": "0.1.0"}

`ark health` exits 0 when that file says the gateway is healthy, 1 otherwise, printing one
line either way. Healthy means all of:

- the file exists and was written within `--max-age` seconds (default 60);
- the process that wrote it is alive;
- a Socket Mode connection is open (`hello` received, not closed);
- something (an event, a ping, a pong) arrived from Slack within `--max-inbound-age`
  seconds (default 120; Ark pings every 10 s, so a live link is never that quiet).

This module runs on every container health check, so it imports only light standard modules
and ark.config / ark.log: no websockets, httpx or botocore, and asyncio only in
`Heartbeat.run` (the gateway side).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ark import __version__
from ark.log import get_logger

if TYPE_CHECKING:
    import asyncio

log = get_logger("ark.health")

HEARTBEAT_INTERVAL_S = 10.0
DEFAULT_MAX_AGE_S = 60.0
DEFAULT_MAX_INBOUND_AGE_S = 120.0
EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The connection as the heartbeat and the systemd watchdog see it."""

    connected: bool
    state: str
    last_inbound_age_s: float | None  # None until the first frame arrives

    @classmethod
    def capture(
        cls, *, connected: bool, state: str, last_activity: float, now: float | None = None
    ) -> Snapshot:
        """From SocketModeClient's `connected`, `state.value` and `last_activity`
        (time.monotonic(), 0.0 when nothing has arrived yet)."""
        if last_activity <= 0.0:
            age = None
        else:
            now = time.monotonic() if now is None else now
            age = max(0.0, now - last_activity)
        return cls(connected=connected, state=state, last_inbound_age_s=age)

    def problem(self, max_inbound_age_s: float = DEFAULT_MAX_INBOUND_AGE_S) -> str | None:
        """Why this connection is not healthy, or None when it is."""
        return connection_problem(
            self.connected, self.state, self.last_inbound_age_s, max_inbound_age_s
        )


def connection_problem(
    connected: bool, state: str, inbound_age_s: float | None, max_inbound_age_s: float
) -> str | None:
    """The one health rule shared by `ark health` and the systemd watchdog."""
    if not connected:
        return f"not connected to Slack (state: {state})"
    if inbound_age_s is None:
        return "nothing received from Slack yet"
    if inbound_age_s > max_inbound_age_s:
        return (
            f"nothing received from Slack for {inbound_age_s:.0f} s "
            f"(limit {max_inbound_age_s:.0f} s)"
        )
    return None


class Heartbeat:
    """Keeps the health file current while `run()` runs; removes it when `run()` ends.

    `probe` is called for every write; `poke()` asks for a write now (on a state change).
    Write failures are logged (once per streak) and never raised."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        probe: Callable[[], Snapshot],
        *,
        interval_s: float = HEARTBEAT_INTERVAL_S,
        pid: int | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = Path(path)
        self._probe = probe
        self._interval_s = interval_s
        self._pid = os.getpid() if pid is None else pid
        self._wall_clock = wall_clock
        self._wake: asyncio.Event | None = None  # made by run(): asyncio stays off the CLI path
        self._failing = False
        self.writes = 0

    @property
    def path(self) -> Path:
        return self._path

    def poke(self) -> None:
        """Write again soon (from the running loop), without waiting for the interval."""
        if self._wake is not None:
            self._wake.set()

    def document(self) -> dict[str, Any]:
        snap = self._probe()
        age = snap.last_inbound_age_s
        return {
            "pid": self._pid,
            "connected": snap.connected,
            "state": snap.state,
            "last_inbound_age_s": None if age is None else round(age, 3),
            "written_at": round(self._wall_clock(), 3),
            "interval_s": self._interval_s,
            "version": __version__,
        }

    def write(self) -> bool:
        """Write the file once, atomically. False (and a log line) when it failed."""
        tmp = self._path.with_name(f".{self._path.name}.{self._pid}.tmp")
        try:
            data = json.dumps(self.document(), separators=(",", ":")) + "\n"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(data)
            os.replace(tmp, self._path)
        except Exception as exc:  # a full disk or a missing dir must not stop the gateway
            with suppress(OSError):
                tmp.unlink()
            if not self._failing:
                log.warning(
                    "heartbeat_write_failed",
                    path=str(self._path),
                    exc_type=type(exc).__name__,
                    error=str(exc),
                )
            self._failing = True
            return False
        if self._failing:
            log.info("heartbeat_write_recovered", path=str(self._path))
        self._failing = False
        self.writes += 1
        return True

    def remove(self) -> None:
        with suppress(OSError):
            self._path.unlink()

    async def run(self) -> None:
        """Write now, then on every poke() or every interval; until cancelled.
        The file is removed on the way out."""
        import asyncio

        wake = self._wake = asyncio.Event()
        try:
            while True:
                wake.clear()
                self.write()
                with suppress(TimeoutError):
                    async with asyncio.timeout(self._interval_s):
                        await wake.wait()
        finally:
            self.remove()


# ---- `ark health` -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    message: str


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user (e.g. a root shell checking a service)
    except OSError:
        return False
    return True


def _number(doc: Mapping[str, Any], key: str) -> float | None:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def evaluate(
    doc: Any,
    *,
    now: float,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    max_inbound_age_s: float = DEFAULT_MAX_INBOUND_AGE_S,
    pid_alive: Callable[[int], bool] = _pid_alive,
) -> Verdict:
    """Judge a parsed heartbeat document at wall-clock time `now`."""
    if not isinstance(doc, dict):
        return Verdict(False, "the heartbeat file is malformed (not a JSON object)")
    pid = doc.get("pid")
    written_at = _number(doc, "written_at")
    connected = doc.get("connected")
    if (
        not isinstance(pid, int)
        or isinstance(pid, bool)
        or pid <= 0
        or written_at is None
        or not isinstance(connected, bool)
    ):
        return Verdict(False, "the heartbeat file is malformed (pid, written_at, connected)")
    if not pid_alive(pid):
        return Verdict(False, f"the process that wrote the heartbeat (pid {pid}) is gone")
    age = max(0.0, now - written_at)
    if age > max_age_s:
        return Verdict(
            False,
            f"the heartbeat is {age:.0f} s old (limit {max_age_s:.0f} s): "
            "the gateway is stuck or stopped",
        )
    state = doc.get("state")
    state_text = state if isinstance(state, str) else "unknown"
    written_inbound_age = _number(doc, "last_inbound_age_s")
    # the inbound age grows while the file ages
    inbound_age = None if written_inbound_age is None else written_inbound_age + age
    problem = connection_problem(connected, state_text, inbound_age, max_inbound_age_s)
    if problem is not None:
        return Verdict(False, problem)
    assert inbound_age is not None
    return Verdict(
        True,
        f"connected to Slack, last frame {inbound_age:.1f} s ago, "
        f"heartbeat {age:.1f} s old (pid {pid})",
    )


def check_file(
    path: Path,
    *,
    now: float | None = None,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    max_inbound_age_s: float = DEFAULT_MAX_INBOUND_AGE_S,
    pid_alive: Callable[[int], bool] = _pid_alive,
) -> Verdict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Verdict(
            False,
            f"no heartbeat at {path}: Ark is not running, has not connected yet, "
            "or runs with another ARK_HEALTH_FILE",
        )
    except (OSError, UnicodeDecodeError) as exc:
        return Verdict(False, f"cannot read the heartbeat at {path}: {exc}")
    try:
        doc = json.loads(text)
    except ValueError:
        return Verdict(False, f"the heartbeat at {path} is not valid JSON")
    return evaluate(
        doc,
        now=time.time() if now is None else now,
        max_age_s=max_age_s,
        max_inbound_age_s=max_inbound_age_s,
        pid_alive=pid_alive,
    )


def resolve_path(env_file: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """ARK_HEALTH_FILE from the environment or the dotenv file, as the gateway reads it;
    no other setting is needed (nor validated) here."""
    from ark.config import ConfigError, default_health_file, load_environment

    try:
        env = load_environment(environ, dotenv_path=env_file)
    except (ConfigError, OSError, UnicodeDecodeError):
        env = dict(os.environ if environ is None else environ)
    return Path(env.get("ARK_HEALTH_FILE", "").strip() or default_health_file(env))


def positive_number(raw: str) -> float:
    """An argparse `type`: a finite number greater than 0."""
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {raw!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ark health",
        description="Exit 0 when the running Ark gateway is healthy (connected to Slack, "
        "heard from it recently, heartbeat fresh), 1 otherwise. Reads the heartbeat file "
        "the gateway writes (ARK_HEALTH_FILE).",
    )
    parser.add_argument(
        "--file", help="heartbeat file (default: ARK_HEALTH_FILE, else <tempdir>/ark-health.json)"
    )
    parser.add_argument(
        "--max-age",
        type=positive_number,
        default=DEFAULT_MAX_AGE_S,
        metavar="S",
        help=f"oldest acceptable heartbeat, seconds (default {DEFAULT_MAX_AGE_S:.0f})",
    )
    parser.add_argument(
        "--max-inbound-age",
        type=positive_number,
        default=DEFAULT_MAX_INBOUND_AGE_S,
        metavar="S",
        help="longest acceptable silence from Slack, seconds "
        f"(default {DEFAULT_MAX_INBOUND_AGE_S:.0f})",
    )
    parser.add_argument(
        "--env-file", default=".env", help="dotenv file to read (default: ./.env if present)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    path = Path(args.file) if args.file else resolve_path(args.env_file)
    verdict = check_file(path, max_age_s=args.max_age, max_inbound_age_s=args.max_inbound_age)
    if verdict.healthy:
        print(f"healthy: {verdict.message}", flush=True)
        return EXIT_HEALTHY
    print(f"unhealthy: {verdict.message}", file=sys.stderr, flush=True)
    return EXIT_UNHEALTHY


if __name__ == "__main__":
    sys.exit(main())
