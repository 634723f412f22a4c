"""The heartbeat file and `ark health`: unit level, the real CLI, and the running gateway."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ark import health
from ark.health import (
    DEFAULT_MAX_AGE_S,
    DEFAULT_MAX_INBOUND_AGE_S,
    Heartbeat,
    Snapshot,
    check_file,
    evaluate,
    resolve_path,
)
from tests.e2e_harness import running_ark
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.slack import FakeSlack
from tests.logcapture import captured_messages

WAIT_S = 10.0
REPO = Path(__file__).resolve().parent.parent
NOW = 1_767_225_600.0


def healthy_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "pid": os.getpid(),
        "connected": True,
        "state": "connected",
        "last_inbound_age_s": 2.0,
        "written_at": NOW - 5.0,
        "interval_s": 10.0,
        "version": "0.1.0",
    }
    doc.update(overrides)
    return doc


def write_doc(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


async def wait_for(predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    """Poll (bounded) for something only visible on disk: no event to wait on."""
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


# ---- the health rule ----------------------------------------------------------------------


def test_snapshot_capture_turns_monotonic_activity_into_an_age() -> None:
    snap = Snapshot.capture(connected=True, state="connected", last_activity=100.0, now=103.5)
    assert snap.last_inbound_age_s == 3.5
    assert snap.problem() is None
    never = Snapshot.capture(connected=True, state="connected", last_activity=0.0, now=5.0)
    assert never.last_inbound_age_s is None
    assert never.problem() == "nothing received from Slack yet"


def test_snapshot_problems() -> None:
    down = Snapshot(connected=False, state="reconnecting", last_inbound_age_s=1.0)
    assert down.problem() == "not connected to Slack (state: reconnecting)"
    quiet = Snapshot(connected=True, state="connected", last_inbound_age_s=121.0)
    assert quiet.problem() == "nothing received from Slack for 121 s (limit 120 s)"
    assert quiet.problem(max_inbound_age_s=200.0) is None


def test_evaluate_healthy() -> None:
    verdict = evaluate(healthy_doc(), now=NOW)
    assert verdict.healthy
    # the inbound age includes the time since the file was written (2 + 5)
    assert "last frame 7.0 s ago" in verdict.message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"written_at": NOW - DEFAULT_MAX_AGE_S - 1}, "the heartbeat is 61 s old (limit 60 s)"),
        ({"connected": False, "state": "reconnecting"}, "not connected to Slack"),
        ({"last_inbound_age_s": None}, "nothing received from Slack yet"),
        # 117 s when written + 5 s since = 122 s > 120 s
        ({"last_inbound_age_s": 117.0}, "nothing received from Slack for 122 s"),
        ({"pid": "7"}, "malformed"),
        ({"written_at": None}, "malformed"),
        ({"connected": "yes"}, "malformed"),
    ],
)
def test_evaluate_unhealthy(overrides: dict[str, Any], expected: str) -> None:
    verdict = evaluate(healthy_doc(**overrides), now=NOW)
    assert not verdict.healthy
    assert expected in verdict.message


def test_evaluate_limits_are_configurable() -> None:
    doc = healthy_doc(written_at=NOW - 90.0, last_inbound_age_s=100.0)
    assert not evaluate(doc, now=NOW).healthy
    assert evaluate(doc, now=NOW, max_age_s=120.0, max_inbound_age_s=300.0).healthy
    assert DEFAULT_MAX_INBOUND_AGE_S == 120.0


def test_evaluate_a_dead_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid = int(proc.stdout)
    verdict = evaluate(healthy_doc(pid=dead_pid), now=NOW)
    assert not verdict.healthy
    assert f"pid {dead_pid}) is gone" in verdict.message


def test_a_process_of_another_user_counts_as_alive(monkeypatch: Any) -> None:
    def kill(pid: int, sig: int) -> None:
        assert sig == 0
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(health.os, "kill", kill)
    assert evaluate(healthy_doc(pid=1), now=NOW).healthy


def test_check_file_missing_and_garbage(tmp_path: Path) -> None:
    missing = check_file(tmp_path / "nope.json", now=NOW)
    assert not missing.healthy and "no heartbeat at" in missing.message
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json", encoding="utf-8")
    assert "not valid JSON" in check_file(garbage, now=NOW).message
    write_doc(garbage, [1, 2])
    assert "malformed" in check_file(garbage, now=NOW).message


# ---- the heartbeat writer -----------------------------------------------------------------


def _fixed(snapshot: Snapshot) -> Callable[[], Snapshot]:
    return lambda: snapshot


def test_heartbeat_writes_the_document_atomically(tmp_path: Path) -> None:
    path = tmp_path / "ark-health.json"
    beat = Heartbeat(
        path,
        _fixed(Snapshot(connected=True, state="connected", last_inbound_age_s=1.23456)),
        pid=4242,
        wall_clock=lambda: NOW,
    )
    assert beat.write()
    doc = read(path)
    assert doc == {
        "pid": 4242,
        "connected": True,
        "state": "connected",
        "last_inbound_age_s": 1.235,
        "written_at": NOW,
        "interval_s": 10.0,
        "version": health.__version__,
    }
    assert [p.name for p in tmp_path.iterdir()] == ["ark-health.json"]  # no temp file left
    beat.remove()
    assert not path.exists()
    beat.remove()  # idempotent


def test_heartbeat_file_is_what_ark_health_accepts(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    Heartbeat(path, _fixed(Snapshot(True, "connected", 0.5))).write()
    assert check_file(path).healthy
    Heartbeat(path, _fixed(Snapshot(False, "reconnecting", 0.5))).write()
    verdict = check_file(path)
    assert not verdict.healthy and "reconnecting" in verdict.message


def test_heartbeat_write_failure_is_logged_once_and_never_raised(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "hb.json"
    beat = Heartbeat(path, _fixed(Snapshot(True, "connected", 1.0)))
    with captured_messages("ark.health") as names:
        assert not beat.write()
        assert not beat.write()
        path.parent.mkdir()
        assert beat.write()
    assert names == ["heartbeat_write_failed", "heartbeat_write_recovered"]
    assert read(path) is not None


async def test_heartbeat_run_writes_at_once_on_poke_and_removes_on_cancel(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    current = {"snap": Snapshot(False, "connecting", None)}
    # an interval far longer than the test: every write after the first is a poke's
    beat = Heartbeat(path, lambda: current["snap"], interval_s=3600.0)
    task = asyncio.create_task(beat.run())
    try:
        await wait_for(lambda: (read(path) or {}).get("state") == "connecting")
        current["snap"] = Snapshot(True, "connected", 0.1)
        beat.poke()
        await wait_for(lambda: (read(path) or {}).get("state") == "connected")
        assert beat.writes == 2
    finally:
        task.cancel()
        await asyncio.wait({task})
    assert not path.exists()


async def test_heartbeat_run_rewrites_every_interval(tmp_path: Path) -> None:
    path = tmp_path / "hb.json"
    beat = Heartbeat(path, _fixed(Snapshot(True, "connected", 0.1)), interval_s=0.02)
    task = asyncio.create_task(beat.run())
    try:
        await wait_for(lambda: beat.writes >= 3)
    finally:
        task.cancel()
        await asyncio.wait({task})


# ---- `ark health` -------------------------------------------------------------------------


def test_main_healthy_and_unhealthy(tmp_path: Path, capsys: Any) -> None:
    path = write_doc(tmp_path / "hb.json", healthy_doc(written_at=time.time()))
    assert health.main(["--file", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("healthy: connected to Slack") and out.count("\n") == 1
    assert err == ""

    write_doc(path, healthy_doc(written_at=time.time(), connected=False, state="reconnecting"))
    assert health.main(["--file", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "unhealthy: not connected to Slack (state: reconnecting)\n"


def test_main_max_age_flag(tmp_path: Path, capsys: Any) -> None:
    path = write_doc(tmp_path / "hb.json", healthy_doc(written_at=time.time() - 30))
    assert health.main(["--file", str(path)]) == 0
    assert health.main(["--file", str(path), "--max-age", "10"]) == 1
    assert "heartbeat is 30 s old (limit 10 s)" in capsys.readouterr().err
    assert health.main(["--file", str(path), "--max-inbound-age", "5"]) == 1
    assert "nothing received from Slack for 32 s (limit 5 s)" in capsys.readouterr().err


def test_main_rejects_a_bad_limit(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        health.main(["--file", str(tmp_path / "x"), "--max-age", "0"])
    assert exc.value.code == 2


def test_path_comes_from_env_or_dotenv_without_any_other_setting(tmp_path: Path) -> None:
    # no Slack tokens, no agent ids: `ark health` needs none of them
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"ARK_HEALTH_FILE={tmp_path / 'from-dotenv.json'}\n", encoding="utf-8")
    assert resolve_path(str(dotenv), environ={}) == tmp_path / "from-dotenv.json"
    env = {"ARK_HEALTH_FILE": str(tmp_path / "from-env.json")}
    assert resolve_path(str(dotenv), environ=env) == tmp_path / "from-env.json"
    default = resolve_path(str(tmp_path / "absent.env"), environ={})
    assert default.name == "ark-health.json"


def _run_cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "SYSTEMROOT")}
    base["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "ark", "health", *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_real_cli_reads_dotenv_in_the_working_directory(tmp_path: Path) -> None:
    path = write_doc(tmp_path / "hb.json", healthy_doc(written_at=time.time()))
    (tmp_path / ".env").write_text(f"ARK_HEALTH_FILE={path}\nLOG_LEVEL=nonsense\n")
    ok = _run_cli([], tmp_path, {})
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("healthy: ")
    path.unlink()
    gone = _run_cli([], tmp_path, {})
    assert gone.returncode == 1
    assert gone.stderr.startswith("unhealthy: no heartbeat at ")
    assert gone.stderr.count("\n") == 1


def test_the_cli_path_imports_nothing_heavy(tmp_path: Path) -> None:
    path = write_doc(tmp_path / "hb.json", healthy_doc(written_at=time.time()))
    probe = (
        "import sys\n"
        "from ark.__main__ import main\n"
        f"code = main(['health', '--file', {str(path)!r}])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'websockets', 'httpx', 'httpcore', 'aiobotocore', 'botocore', 'aiohttp', "
        "'markdown_it', 'certifi', 'multidict', 'yarl'})\n"
        "print(code, heavy)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 []"
    # the module itself leaves even asyncio alone (only the gateway's Heartbeat.run needs it)
    alone = subprocess.run(
        [sys.executable, "-c", "import sys, ark.health; print('asyncio' in sys.modules)"],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert alone.stdout.strip() == "False", alone.stderr


# ---- the running gateway ------------------------------------------------------------------


async def test_gateway_keeps_the_heartbeat_and_removes_it_on_exit(
    monkeypatch: Any, tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / "ark-health.json"
    async with FakeSlack() as slack, FakeBedrock() as bedrock:
        async with running_ark(slack, bedrock, monkeypatch, ARK_HEALTH_FILE=str(path)) as ark:
            await wait_for(lambda: (read(path) or {}).get("connected") is True)
            doc = read(path)
            assert doc is not None
            assert doc["pid"] == os.getpid()
            assert doc["state"] == "connected"
            assert isinstance(doc["last_inbound_age_s"], float)
            assert doc["last_inbound_age_s"] < DEFAULT_MAX_INBOUND_AGE_S
            assert health.main(["--file", str(path)]) == 0
            assert capsys.readouterr().out.startswith("healthy: ")

            # Slack goes away and stays away: the state change is written at once
            slack.reject_ws_next(503, times=1000)
            await slack.drop_connection()
            await wait_for(lambda: (read(path) or {}).get("connected") is False)
            assert health.main(["--file", str(path)]) == 1
            assert "not connected to Slack" in capsys.readouterr().err

            await ark.shutdown()
        assert not path.exists()
        assert health.main(["--file", str(path)]) == 1
        assert "no heartbeat at" in capsys.readouterr().err


def test_resolve_path_survives_a_dotenv_that_is_not_utf8(tmp_path: Path) -> None:
    """A broken .env is the gateway's to report (exit 2); the health check still finds the
    heartbeat from the environment."""
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(b"ARK_HEALTH_FILE=/x\xff\n")
    env = {"ARK_HEALTH_FILE": str(tmp_path / "hb.json")}
    assert resolve_path(str(dotenv), environ=env) == tmp_path / "hb.json"
    assert resolve_path(str(dotenv), environ={"TMPDIR": str(tmp_path)}) == (
        tmp_path / "ark-health.json"
    )
