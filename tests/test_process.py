"""The real `ark` process: signals, exit codes and logs, against the loopback fakes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.e2e_harness import gateway_env
from tests.fakes.bedrock import Chunk, Delay, FakeBedrock
from tests.fakes.slack import FakeSlack

PROCESS_TIMEOUT_S = 20.0


@asynccontextmanager
async def _ark(
    env: dict[str, str], cwd: str, *, inherit: tuple[str, ...] = ("AWS_", "PATH", "HOME", "NO_")
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m ark` with `env` over the variables of this process named by `inherit`
    (prefixes); killed on the way out if a test failed before stopping it."""
    base = {k: v for k, v in os.environ.items() if k.startswith(inherit)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ark",
        env={**base, **env},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _stop(proc: asyncio.subprocess.Process, sig: int) -> str:
    """Send `sig`, wait (bounded) for the process to end; its standard error."""
    proc.send_signal(sig)
    async with asyncio.timeout(PROCESS_TIMEOUT_S):
        _, stderr = await proc.communicate()
    return stderr.decode()


async def test_sigterm_drains_the_answer_in_flight_and_exits_0(tmp_path):
    async with FakeSlack() as slack, FakeBedrock() as bedrock:
        bedrock.script = lambda inv: [Delay(1.0), Chunk("drained answer")]
        env = gateway_env(slack, bedrock, LOG_LEVEL="info")
        async with _ark(env, str(tmp_path)) as proc:
            await slack.wait_for_connections(1, timeout_s=PROCESS_TIMEOUT_S)
            await slack.send_event(slack.dm_event("slow question"))
            await bedrock.wait_for_invocations(1)
            log = await _stop(proc, signal.SIGTERM)
        assert proc.returncode == 0
        assert [p.params["text"] for p in slack.posts] == ["drained answer"]
        assert "event=answered" in log
        assert "event=stopped" in log
        # the tokens never reach a log line, at any level
        assert slack.bot_token not in log and slack.app_token not in log


async def test_debug_logs_never_contain_tokens(tmp_path):
    async with FakeSlack() as slack, FakeBedrock() as bedrock:
        env = gateway_env(slack, bedrock, LOG_LEVEL="debug", LOG_FORMAT="json")
        async with _ark(env, str(tmp_path)) as proc:
            await slack.wait_for_connections(1, timeout_s=PROCESS_TIMEOUT_S)
            await slack.send_event(slack.dm_event("hello"))
            await slack.wait_for_call("chat.postMessage", timeout_s=PROCESS_TIMEOUT_S)
            log = await _stop(proc, signal.SIGINT)
        assert proc.returncode == 0
        assert '"event":"answered"' in log
        assert slack.bot_token not in log and slack.app_token not in log
        assert "xoxb-" not in log and "xapp-" not in log


async def test_configuration_and_aws_keys_from_dotenv_reach_botocore(tmp_path):
    # Everything in ./.env, nothing in the environment but the basics: the AWS keys there
    # must sign the InvokeAgent request (botocore reads them from the process environment)
    async with FakeSlack() as slack, FakeBedrock() as bedrock:
        env = gateway_env(
            slack,
            bedrock,
            LOG_LEVEL="info",
            AWS_ACCESS_KEY_ID="AKIADOTENVDOTENV0000",
            AWS_SECRET_ACCESS_KEY="dotenv-secret-not-real",
        )
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        # no AWS keys from this process (they would win over .env): only the isolation
        basics = ("PATH", "HOME", "NO_PROXY", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
        inherit = (*basics, "AWS_EC2_METADATA_DISABLED")
        async with _ark({}, str(tmp_path), inherit=inherit) as proc:
            await slack.wait_for_connections(1, timeout_s=PROCESS_TIMEOUT_S)
            await slack.send_event(slack.dm_event("signed?"))
            await slack.wait_for_call("chat.postMessage", timeout_s=PROCESS_TIMEOUT_S)
            log = await _stop(proc, signal.SIGTERM)
        assert proc.returncode == 0, log[-2000:]
        (inv,) = bedrock.invocations
        authorization = {k.lower(): v for k, v in inv.headers.items()}["authorization"]
        assert "Credential=AKIADOTENVDOTENV0000/" in authorization
        assert "dotenv-secret-not-real" not in log
