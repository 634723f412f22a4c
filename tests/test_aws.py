"""Region resolution, client configuration, endpoint overrides and credential precedence."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ark.aws import (
    AGENT_READ_TIMEOUT_S,
    DEFAULT_REGION,
    AwsClients,
    client_config,
    profile_problem,
    resolve_region,
    session_profile,
)
from ark.bedrock.agent import BedrockAgent
from ark.bedrock.types import AgentRequest, TextChunk
from tests.fakes.bedrock import FakeBedrock

CONFIG = """\
[default]
region = ap-south-1

[profile dev]
region = eu-west-3
aws_access_key_id = AKIAPROFILEPROFILE00
aws_secret_access_key = profile-secret-not-real

[profile noregion]
output = json
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "config"
    path.write_text(CONFIG)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    return str(path)


def test_aws_region_wins_over_everything(config_file: str) -> None:
    env = {"AWS_REGION": "us-west-2", "AWS_PROFILE": "dev", "AWS_DEFAULT_REGION": "eu-north-1"}
    assert resolve_region(None, None, env) == "us-west-2"
    assert resolve_region("ca-central-1", "dev", env) == "ca-central-1"


def test_profile_region_wins_over_aws_default_region(config_file: str) -> None:
    env = {"AWS_CONFIG_FILE": config_file, "AWS_DEFAULT_REGION": "eu-north-1"}
    assert resolve_region(None, "dev", env) == "eu-west-3"
    assert resolve_region(None, None, {**env, "AWS_PROFILE": "dev"}) == "eu-west-3"
    assert resolve_region(None, "default", env) == "ap-south-1"


@pytest.mark.parametrize("profile", ["noregion", "missing"])
def test_profile_without_region_falls_back(config_file: str, profile: str) -> None:
    env = {"AWS_CONFIG_FILE": config_file, "AWS_DEFAULT_REGION": "eu-north-1"}
    assert resolve_region(None, profile, env) == "eu-north-1"
    assert resolve_region(None, profile, {"AWS_CONFIG_FILE": config_file}) == DEFAULT_REGION


def test_broken_config_file_is_tolerated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "broken"
    path.write_text("[profile dev\nregion = = =\n\x00")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    assert resolve_region(None, "dev", {"AWS_CONFIG_FILE": str(path)}) == DEFAULT_REGION


def test_default_region_then_us_east_1() -> None:
    assert resolve_region(None, None, {"AWS_DEFAULT_REGION": "sa-east-1"}) == "sa-east-1"
    assert resolve_region(None, None, {}) == "us-east-1"
    assert resolve_region("", "", {"AWS_REGION": "  "}) == "us-east-1"


@pytest.mark.parametrize("concurrency", [1, 10, 50])
def test_client_config_sizes_pool_and_timeouts(concurrency: int) -> None:
    config = client_config(concurrency)
    assert config.max_pool_connections >= concurrency + 1
    assert config.read_timeout == AGENT_READ_TIMEOUT_S >= 300
    assert config.connect_timeout == 10
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert config.user_agent_extra.startswith("ark/")


def test_explicit_keys_keep_the_profile_out_of_the_session() -> None:
    keys = {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s"}
    assert session_profile("dev", keys) is None
    assert session_profile("dev", {}) == "dev"
    assert session_profile(None, {}) is None


@pytest.fixture
async def fake() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock() as server:
        yield server


async def invoke_once(aws: AwsClients) -> list[object]:
    agent = BedrockAgent(aws.agent_runtime, agent_id="AGENT1", agent_alias_id="ALIAS1")
    async with asyncio.timeout(10):
        return [e async for e in agent.invoke(AgentRequest(session_id="s-1", input_text="hi"))]


async def test_clients_follow_aws_endpoint_url_env_vars(
    fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME", fake.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_FIREHOSE", fake.endpoint_url)
    async with AwsClients(
        region="eu-west-1", profile=None, max_concurrency=3, firehose=True
    ) as aws:
        assert await invoke_once(aws) == [TextChunk("You said: hi")]
        await aws.firehose.put_record_batch(DeliveryStreamName="s", Records=[{"Data": b"r\n"}])
    assert len(fake.invocations) == 1
    assert "/eu-west-1/bedrock/aws4_request" in fake.invocations[0].headers["Authorization"]
    assert fake.firehose_records == [b"r\n"]


async def test_agent_client_leaves_retries_to_bedrock_agent(fake: FakeBedrock) -> None:
    async with AwsClients(
        region="us-east-1",
        profile=None,
        max_concurrency=7,
        firehose=False,
        endpoint_url=fake.endpoint_url,
    ) as aws:
        config = aws.agent_runtime.meta.config
        assert config.retries["total_max_attempts"] == 1
        assert config.max_pool_connections >= 8
        assert config.read_timeout == AGENT_READ_TIMEOUT_S
        assert aws.firehose is None
    with pytest.raises(RuntimeError):
        _ = aws.agent_runtime


async def test_profile_credentials_used_only_without_explicit_keys(
    fake: FakeBedrock, config_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AwsClients(
        region="us-east-1",
        profile="dev",
        max_concurrency=1,
        firehose=False,
        endpoint_url=fake.endpoint_url,
    ) as aws:
        await invoke_once(aws)
    assert "Credential=AKIATEST" in fake.invocations[-1].headers["Authorization"]

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    async with AwsClients(
        region="us-east-1",
        profile="dev",
        max_concurrency=1,
        firehose=False,
        endpoint_url=fake.endpoint_url,
        env=os.environ,
    ) as aws:
        await invoke_once(aws)
    assert "Credential=AKIAPROFILEPROFILE00" in fake.invocations[-1].headers["Authorization"]


def test_profile_problem_names_only_a_missing_profile(tmp_path: Any, monkeypatch: Any) -> None:
    config = tmp_path / "config"
    config.write_text("[profile dev]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    assert profile_problem("dev", {}) is None
    assert profile_problem(None, {}) is None
    problem = profile_problem("prod", {})
    assert problem is not None and "AWS_PROFILE=prod" in problem
    # explicit keys win over the profile, so a missing profile does not matter then
    keys = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "fake"}
    assert profile_problem("prod", keys) is None
