"""`ark doctor` against the loopback fakes: Slack (FakeSlack), STS / bedrock-agent / Firehose
(FakeAwsControl) and InvokeAgent (FakeBedrock), with the real SlackWeb, websockets and
aiobotocore clients on the wire."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from websockets.asyncio.client import connect

from ark import doctor
from ark.doctor import (
    OPTIONAL_SCOPES,
    REQUIRED_SCOPES,
    TITLES,
    Check,
    exit_code,
    render_json,
    render_text,
    run_doctor,
)
from tests.fakes.aws_control import (
    DESCRIBE_DELIVERY_STREAM,
    GET_AGENT_ALIAS,
    GET_CALLER_IDENTITY,
    FakeAwsControl,
)
from tests.fakes.bedrock import Chunk, FakeBedrock, HttpError
from tests.fakes.slack import FakeSlack

AGENT_ID = "AGENT12345"
ALIAS_ID = "ALIAS12345"
STREAM = "ark-analytics"
ALL_SCOPES = ",".join(REQUIRED_SCOPES + OPTIONAL_SCOPES)
TIMEOUT_S = 5.0
SHORT_TIMEOUT_S = 1.0
ANSI_RE = re.compile(r"\x1b\[")
# Every variable the doctor or botocore could read, cleared before each test sets its own.
_CLEARED = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "FIREHOSE_STREAM_NAME",
    "ARK_METRICS_NAMESPACE",
    "NO_COLOR",
)


@dataclass
class Fakes:
    slack: FakeSlack
    aws: FakeAwsControl
    bedrock: FakeBedrock
    monkeypatch: pytest.MonkeyPatch

    def env(self, *, keys: bool = True, **overrides: str) -> dict[str, str]:
        """The operator's variables pointed at the fakes, also put in os.environ (botocore
        reads credentials and endpoints from there). An override of "" removes a variable."""
        env = {
            "SLACK_BOT_TOKEN": self.slack.bot_token,
            "SLACK_APP_TOKEN": self.slack.app_token,
            "SLACK_API_URL": self.slack.api_url,
            "BEDROCK_AGENT_ID": AGENT_ID,
            "BEDROCK_AGENT_ALIAS_ID": ALIAS_ID,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_STS": self.aws.endpoint_url,
            "AWS_ENDPOINT_URL_BEDROCK_AGENT": self.aws.endpoint_url,
            "AWS_ENDPOINT_URL_FIREHOSE": self.aws.endpoint_url,
            "AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME": self.bedrock.endpoint_url,
        }
        if keys:
            env["AWS_ACCESS_KEY_ID"] = "AKIATESTTESTTESTTEST"
            env["AWS_SECRET_ACCESS_KEY"] = "test-secret-key-not-real"
        env.update(overrides)
        env = {k: v for k, v in env.items() if v != ""}
        for key in _CLEARED:
            self.monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)
        return env

    async def run(self, *, invoke: bool = False, timeout_s: float = TIMEOUT_S, **env: str) -> Any:
        checks = await run_doctor(self.env(**env), invoke=invoke, timeout_s=timeout_s)
        return checks, {c.name: c for c in checks}


@pytest.fixture
async def fakes(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fakes]:
    async with (
        FakeSlack(scopes=ALL_SCOPES) as slack,
        FakeAwsControl() as aws,
        FakeBedrock() as bedrock,
    ):
        aws.add_alias(AGENT_ID, ALIAS_ID, name="live")
        aws.add_stream(STREAM)
        yield Fakes(slack, aws, bedrock, monkeypatch)


def statuses(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.status for c in checks}


# --------------------------------------------------------------------------- all good


async def test_all_checks_pass_and_exit_0(fakes: Fakes) -> None:
    checks, by = await fakes.run(FIREHOSE_STREAM_NAME=STREAM)
    assert [c.name for c in checks] == list(TITLES)
    assert statuses(checks) == {name: "ok" for name in TITLES} | {"agent_invoke": "skip"}
    assert exit_code(checks) == 0
    assert "team Fake Team (T1)" in by["slack_auth"].detail
    assert "@ark (UBOT)" in by["slack_auth"].detail
    assert "no other connection" in by["socket_mode"].detail
    assert by["aws_region"].detail == "us-east-1 (from AWS_REGION)"
    assert "environment" in by["aws_credentials"].detail
    assert "account 123456789012" in by["aws_identity"].detail
    assert "assumed-role/ark-task/fake-session" in by["aws_identity"].detail
    assert by["agent_alias"].detail.startswith("live (ALIAS12345): PREPARED")
    assert by["firehose"].detail == f"{STREAM}: ACTIVE (DirectPut)"
    # every AWS call went to the fake, signed for the configured region
    assert {c.operation for c in fakes.aws.calls} == {
        GET_CALLER_IDENTITY,
        GET_AGENT_ALIAS,
        DESCRIBE_DELIVERY_STREAM,
    }
    assert {c.region for c in fakes.aws.calls} == {"us-east-1"}
    text = render_text(checks)
    assert "OK: 10 ok, 0 warnings, 0 failed, 1 skipped" in text
    assert "✗" not in text


async def test_firehose_not_configured_is_a_skip(fakes: Fakes) -> None:
    checks, by = await fakes.run()
    assert by["firehose"].status == "skip"
    assert "FIREHOSE_STREAM_NAME" in by["firehose"].detail
    assert exit_code(checks) == 0
    assert not fakes.aws.calls_to(DESCRIBE_DELIVERY_STREAM)


# --------------------------------------------------------------------------- Slack


async def test_missing_scopes_are_named_with_the_reinstall_reminder(fakes: Fakes) -> None:
    fakes.slack.scopes = "chat:write,users:read,files:read"
    checks, by = await fakes.run()
    scopes = by["slack_scopes"]
    assert scopes.status == "fail"
    missing = [s for s in REQUIRED_SCOPES if s not in ("chat:write", "users:read", "files:read")]
    for scope in missing:
        assert scope in scopes.detail
    assert "chat:write" not in scopes.detail
    assert "reinstall" in scopes.fix
    assert exit_code(checks) == 1
    text = render_text(checks)
    assert "✗ Slack bot scopes" in text
    assert "fix: " in text and "reinstall the app" in text


async def test_missing_optional_scopes_only_warn(fakes: Fakes) -> None:
    fakes.slack.scopes = ",".join(REQUIRED_SCOPES)
    checks, by = await fakes.run()
    assert by["slack_scopes"].status == "warn"
    assert "groups:history" in by["slack_scopes"].detail
    assert "reinstall" in by["slack_scopes"].fix
    assert exit_code(checks) == 0


async def test_invalid_bot_token_fails_and_skips_the_scopes(fakes: Fakes) -> None:
    checks, by = await fakes.run(SLACK_BOT_TOKEN="xoxb-not-the-right-one")
    assert by["slack_auth"].status == "fail"
    assert "SLACK_BOT_TOKEN" in by["slack_auth"].detail
    assert "invalid_auth" in by["slack_auth"].detail
    assert "OAuth & Permissions" in by["slack_auth"].fix
    assert by["slack_scopes"].status == "skip"
    assert by["slack_app_token"].status == "ok"
    assert exit_code(checks) == 1
    # the token itself never appears
    assert "xoxb-not-the-right-one" not in render_text(checks) + render_json(checks)


async def test_app_token_failure_fails_and_skips_socket_mode(fakes: Fakes) -> None:
    checks, by = await fakes.run(SLACK_APP_TOKEN="xapp-1-not-the-right-one")
    assert by["slack_auth"].status == "ok"
    assert by["slack_app_token"].status == "fail"
    assert "SLACK_APP_TOKEN" in by["slack_app_token"].detail
    assert "connections:write" in by["slack_app_token"].fix
    assert by["socket_mode"].status == "skip"
    assert exit_code(checks) == 1
    assert not fakes.slack.connections


async def test_another_connection_in_the_hello_warns(fakes: Fakes) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as http:
        answer = await http.post(
            fakes.slack.api_url + "apps.connections.open",
            headers={"Authorization": f"Bearer {fakes.slack.app_token}"},
        )
    url = answer.json()["url"]
    async with connect(url, open_timeout=TIMEOUT_S, close_timeout=TIMEOUT_S) as other:
        async with asyncio.timeout(TIMEOUT_S):
            assert json.loads(await other.recv())["type"] == "hello"
        checks, by = await fakes.run()
    socket = by["socket_mode"]
    assert socket.status == "warn"
    assert "2 connections are open" in socket.detail
    assert "1 other process receives a share" in socket.detail
    assert "stop the other consumers" in socket.fix
    assert exit_code(checks) == 0


async def test_no_hello_times_out_as_a_failure(fakes: Fakes) -> None:
    fakes.slack.hello_enabled = False
    checks, by = await fakes.run(timeout_s=SHORT_TIMEOUT_S)
    assert by["socket_mode"].status == "fail"
    assert by["socket_mode"].detail == f"no hello from Slack within {SHORT_TIMEOUT_S:g} s"
    assert "Socket Mode is on" in by["socket_mode"].fix
    assert exit_code(checks) == 1


# --------------------------------------------------------------------------- AWS


async def test_credentials_from_a_container_role(fakes: Fakes) -> None:
    """AWS_CONTAINER_CREDENTIALS_FULL_URI pointing at a loopback credentials endpoint, as the
    ECS agent provides one."""
    served: list[str] = []

    async def credentials(request: web.Request) -> web.Response:
        served.append(request.path)
        return web.json_response(
            {
                "AccessKeyId": "ASIATESTTESTTESTTEST",
                "SecretAccessKey": "test-role-secret-not-real",
                "Token": "test-role-token-not-real",
                "Expiration": "2099-01-01T00:00:00Z",
            }
        )

    app = web.Application()
    app.router.add_get("/v2/credentials/task", credentials)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        uri = f"http://127.0.0.1:{port}/v2/credentials/task"
        checks, by = await fakes.run(keys=False, AWS_CONTAINER_CREDENTIALS_FULL_URI=uri)
    finally:
        await runner.cleanup()
    assert by["aws_credentials"].status == "ok"
    assert "container role" in by["aws_credentials"].detail
    assert served
    assert by["aws_identity"].status == "ok"
    assert {c.access_key_id for c in fakes.aws.calls} == {"ASIATESTTESTTESTTEST"}
    assert exit_code(checks) == 0


async def test_no_credentials_fail_and_skip_the_aws_checks(fakes: Fakes) -> None:
    checks, by = await fakes.run(keys=False)
    assert by["aws_credentials"].status == "fail"
    assert "no AWS credentials found" in by["aws_credentials"].detail
    assert by["aws_identity"].status == "skip"
    assert by["agent_alias"].status == "skip"
    assert not fakes.aws.calls
    assert exit_code(checks) == 1


async def test_rejected_credentials_fail_the_identity(fakes: Fakes) -> None:
    fakes.aws.set_outcome(GET_CALLER_IDENTITY, "denied")
    checks, by = await fakes.run()
    assert by["aws_identity"].status == "fail"
    assert "AWS rejected the credentials" in by["aws_identity"].detail
    assert exit_code(checks) == 1


async def test_agent_alias_denied_is_a_warning_naming_the_permission(fakes: Fakes) -> None:
    fakes.aws.set_outcome(GET_AGENT_ALIAS, "denied")
    checks, by = await fakes.run()
    alias = by["agent_alias"]
    assert alias.status == "warn"
    assert "bedrock:GetAgentAlias" in alias.detail
    assert "bedrock:GetAgentAlias" in alias.fix
    assert f"agent-alias/{AGENT_ID}/{ALIAS_ID}" in alias.fix
    assert exit_code(checks) == 0


async def test_agent_alias_not_found_fails(fakes: Fakes) -> None:
    fakes.aws.aliases.clear()
    checks, by = await fakes.run(invoke=True)
    alias = by["agent_alias"]
    assert alias.status == "fail"
    assert alias.detail == f"not found: agent {AGENT_ID}, alias {ALIAS_ID} in us-east-1"
    assert "BEDROCK_AGENT_ALIAS_ID" in alias.fix
    # no question is sent to an alias that does not exist
    assert by["agent_invoke"].status == "skip"
    assert not fakes.bedrock.invocations
    assert exit_code(checks) == 1


async def test_agent_alias_that_rejects_invocations_fails(fakes: Fakes) -> None:
    fakes.aws.add_alias(AGENT_ID, ALIAS_ID, invocation_state="REJECT_INVOCATIONS")
    checks, by = await fakes.run()
    assert by["agent_alias"].status == "fail"
    assert "REJECT_INVOCATIONS" in by["agent_alias"].detail
    assert exit_code(checks) == 1


async def test_a_hanging_control_plane_call_is_bounded(fakes: Fakes) -> None:
    fakes.aws.set_outcome(GET_AGENT_ALIAS, "hang")
    fakes.aws.set_outcome(DESCRIBE_DELIVERY_STREAM, "hang")
    checks, by = await fakes.run(timeout_s=SHORT_TIMEOUT_S, FIREHOSE_STREAM_NAME=STREAM)
    # the alias check is informative only (Ark needs bedrock-agent-runtime): a warning
    assert by["agent_alias"].status == "warn"
    assert "bedrock-agent" in by["agent_alias"].detail
    assert by["firehose"].status == "fail"
    assert by["aws_identity"].status == "ok"
    assert exit_code(checks) == 1


async def test_invoke_shows_the_answer_and_its_latency(fakes: Fakes) -> None:
    fakes.bedrock.queue_script([Chunk("Hello there, "), Chunk("all good.")])
    checks, by = await fakes.run(invoke=True)
    answer = by["agent_invoke"]
    assert answer.status == "ok"
    assert "'Hello there, all good.'" in answer.detail
    assert re.search(r"answered in \d+\.\d\d s \(first text after \d+\.\d\d s\)", answer.detail)
    assert len(fakes.bedrock.invocations) == 1
    assert exit_code(checks) == 0


async def test_invoke_denied_fails_naming_bedrock_invoke_agent(fakes: Fakes) -> None:
    fakes.bedrock.queue_script(
        [HttpError(403, "AccessDeniedException", "not authorized to perform bedrock:InvokeAgent")]
    )
    checks, by = await fakes.run(invoke=True)
    answer = by["agent_invoke"]
    assert answer.status == "fail"
    assert "bedrock:InvokeAgent" in answer.detail
    assert "bedrock:InvokeAgent" in answer.fix
    assert "assumed-role/ark-task/fake-session" in answer.fix
    assert exit_code(checks) == 1


async def test_without_invoke_no_question_is_sent(fakes: Fakes) -> None:
    checks, by = await fakes.run()
    assert by["agent_invoke"].status == "skip"
    assert "--invoke" in by["agent_invoke"].detail
    assert not fakes.bedrock.invocations
    assert exit_code(checks) == 0


# --------------------------------------------------------------------------- Firehose


async def test_firehose_creating_warns(fakes: Fakes) -> None:
    fakes.aws.add_stream(STREAM, status="CREATING")
    checks, by = await fakes.run(FIREHOSE_STREAM_NAME=STREAM)
    assert by["firehose"].status == "warn"
    assert by["firehose"].detail == f"{STREAM}: CREATING (DirectPut)"
    assert "ACTIVE" in by["firehose"].fix
    assert exit_code(checks) == 0


async def test_firehose_not_found_fails(fakes: Fakes) -> None:
    checks, by = await fakes.run(FIREHOSE_STREAM_NAME="no-such-stream")
    assert by["firehose"].status == "fail"
    assert by["firehose"].detail == "stream no-such-stream not found in us-east-1"
    assert "FIREHOSE_STREAM_NAME" in by["firehose"].fix
    assert exit_code(checks) == 1


async def test_firehose_denied_warns_and_names_what_ark_needs(fakes: Fakes) -> None:
    fakes.aws.set_outcome(DESCRIBE_DELIVERY_STREAM, "denied")
    checks, by = await fakes.run(FIREHOSE_STREAM_NAME=STREAM)
    firehose = by["firehose"]
    assert firehose.status == "warn"
    assert "firehose:DescribeDeliveryStream" in firehose.detail
    # PutRecord alone is enough since analytics fall back to it
    assert "firehose:PutRecord " in firehose.fix
    assert "PutRecordBatch preferred" in firehose.fix
    assert exit_code(checks) == 0


# --------------------------------------------------------------------------- configuration


async def test_bad_configuration_fails_with_one_line_per_problem(fakes: Fakes) -> None:
    checks, by = await fakes.run(SLACK_BOT_TOKEN="not-a-token", BEDROCK_AGENT_ID="")
    config = [c for c in checks if c.name == "config"]
    assert [c.status for c in config] == ["fail", "fail"]
    assert config[0].detail == "SLACK_BOT_TOKEN must start with 'xoxb-'"
    assert config[1].detail == "BEDROCK_AGENT_ID is required"
    assert "xoxb-" in config[0].fix
    # checks needing a bad variable are skipped, the others still run
    assert by["slack_auth"].status == "skip"
    assert "SLACK_BOT_TOKEN" in by["slack_auth"].detail
    assert by["agent_alias"].status == "skip"
    assert by["slack_app_token"].status == "ok"
    assert by["aws_identity"].status == "ok"
    assert exit_code(checks) == 1
    assert "not-a-token" not in render_text(checks)


async def test_unknown_aws_profile_is_a_configuration_failure(fakes: Fakes) -> None:
    """The same validation as the gateway, which exits 2 for an unknown AWS_PROFILE."""
    checks, by = await fakes.run(keys=False, AWS_PROFILE="no-such-profile")
    config = [c for c in checks if c.name == "config"]
    assert [c.status for c in config] == ["fail"]
    assert "AWS_PROFILE=no-such-profile is not a profile" in config[0].detail
    assert "aws configure list-profiles" in config[0].fix
    assert by["aws_credentials"].status == "skip"
    assert "AWS_PROFILE" in by["aws_credentials"].detail
    assert exit_code(checks) == 1


async def test_a_known_aws_profile_passes_the_configuration(fakes: Fakes, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[ark]\naws_access_key_id = AKIATESTTESTTESTTEST\n"
        "aws_secret_access_key = test-secret-key-not-real\n"
    )
    fakes.monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    checks, by = await fakes.run(keys=False, AWS_PROFILE="ark")
    assert [c.status for c in checks if c.name == "config"] == ["ok"]
    assert by["aws_credentials"].status == "ok"
    assert "profile ark" in by["aws_credentials"].detail
    assert exit_code(checks) == 0


# --------------------------------------------------------------------------- rendering


def test_exit_code_is_1_only_for_a_failure() -> None:
    assert exit_code([]) == 0
    assert exit_code([Check("a", "ok", ""), Check("b", "warn", ""), Check("c", "skip", "")]) == 0
    assert exit_code([Check("a", "ok", ""), Check("b", "fail", "")]) == 1


def test_colour_only_on_a_terminal_without_no_color() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert doctor._use_color(Tty(), {}) is True
    assert doctor._use_color(Tty(), {"NO_COLOR": "1"}) is False
    assert doctor._use_color(io.StringIO(), {}) is False
    checks = [Check("config", "ok", "valid"), Check("firehose", "fail", "gone", "recreate it")]
    assert ANSI_RE.search(render_text(checks, color=True))
    assert not ANSI_RE.search(render_text(checks, color=False))


def test_ascii_marks_when_the_terminal_cannot_encode_them() -> None:
    checks = [Check("config", "ok", "valid"), Check("firehose", "fail", "gone", "recreate")]
    text = render_text(checks, ascii_only=True)
    assert "+ Configuration" in text
    assert "x Firehose stream" in text
    assert not any(mark in text for mark in "✓✗")


# --------------------------------------------------------------------------- command line


@pytest.fixture
def no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)
    yield str(tmp_path / "absent.env")


async def test_main_prints_the_checklist_without_colour_and_exits_0(
    fakes: Fakes, capsys: pytest.CaptureFixture[str], no_dotenv: str
) -> None:
    fakes.env()
    rc = await asyncio.to_thread(
        doctor.main, ["--env-file", no_dotenv, "--timeout", str(TIMEOUT_S)]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert out.startswith("ark doctor ")
    assert "✓ Slack bot token" in out
    assert "OK: 9 ok, 0 warnings, 0 failed, 2 skipped" in out
    assert not ANSI_RE.search(out)  # captured stdout is not a terminal


async def test_main_json_parses_with_every_check(
    fakes: Fakes, capsys: pytest.CaptureFixture[str], no_dotenv: str
) -> None:
    fakes.env()
    fakes.aws.set_outcome(GET_AGENT_ALIAS, "not_found")
    rc = await asyncio.to_thread(
        doctor.main, ["--json", "--env-file", no_dotenv, "--timeout", str(TIMEOUT_S)]
    )
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert rc == 1
    assert doc["ok"] is False
    assert [c["name"] for c in doc["checks"]] == list(TITLES)
    assert all(set(c) == {"name", "status", "detail", "fix"} for c in doc["checks"])
    alias = next(c for c in doc["checks"] if c["name"] == "agent_alias")
    assert alias["status"] == "fail"
    assert alias["fix"]
    assert not ANSI_RE.search(out)


async def test_main_exits_1_for_a_bad_configuration(
    fakes: Fakes, capsys: pytest.CaptureFixture[str], no_dotenv: str
) -> None:
    fakes.env(BEDROCK_AGENT_ALIAS_ID="not/an/id")
    rc = await asyncio.to_thread(
        doctor.main, ["--env-file", no_dotenv, "--timeout", str(TIMEOUT_S)]
    )
    out = capsys.readouterr().out
    assert rc == 1
    assert "✗ Configuration" in out
    assert "BEDROCK_AGENT_ALIAS_ID must be 1 to 10 letters or digits" in out


def test_main_reports_a_dotenv_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(b"SLACK_BOT_TOKEN=xoxb-\xff\xfe\n")
    rc = doctor.main(["--json", "--env-file", str(dotenv)])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert [c["status"] for c in doc["checks"]] == ["fail"]
    assert str(dotenv) in doc["checks"][0]["detail"]
    assert "UTF-8" in doc["checks"][0]["detail"]
