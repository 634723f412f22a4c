"""Runs the real gateway (`ark.app.serve`) against the loopback fakes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

from ark.app import serve
from ark.config import Settings, load_settings
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.slack import FakeSlack

SERVE_STOP_TIMEOUT_S = 30.0


def gateway_env(slack: FakeSlack, bedrock: FakeBedrock, **overrides: str) -> dict[str, str]:
    """The variables an operator would set, pointed at the fakes."""
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_APP_TOKEN": slack.app_token,
        "BEDROCK_AGENT_ID": "AGENT12345",
        "BEDROCK_AGENT_ALIAS_ID": "ALIAS12345",
        "AWS_REGION": "us-east-1",
        "SLACK_API_URL": slack.api_url,
        "SLACK_FILE_URL_PREFIXES": slack.http_base + "/files-pri/",
        "AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME": bedrock.endpoint_url,
        "AWS_ENDPOINT_URL_FIREHOSE": bedrock.endpoint_url,
        "LOG_LEVEL": "debug",
    }
    env.update(overrides)
    return env


@dataclass
class Running:
    settings: Settings
    task: asyncio.Task[None]
    stop: asyncio.Event

    async def shutdown(self) -> None:
        self.stop.set()
        async with asyncio.timeout(SERVE_STOP_TIMEOUT_S):
            await self.task


@asynccontextmanager
async def running_ark(
    slack: FakeSlack,
    bedrock: FakeBedrock,
    monkeypatch: Any,
    *,
    wait_connected: bool = True,
    **overrides: str,
) -> AsyncIterator[Running]:
    env: Mapping[str, str] = gateway_env(slack, bedrock, **overrides)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(env)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop=stop, env=dict(os.environ)))
    running = Running(settings, task, stop)
    try:
        if wait_connected:
            await slack.wait_for_connections(1)
        yield running
    finally:
        if not task.done():
            stop.set()
            with suppress(Exception):
                async with asyncio.timeout(SERVE_STOP_TIMEOUT_S):
                    await task
        else:
            with suppress(Exception):
                task.result()
