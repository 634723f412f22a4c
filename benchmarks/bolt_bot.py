"""The bot Ark is compared with: a minimal Slack -> Bedrock Agent bot written the way Bolt's
documentation shows (slack_bolt AsyncApp, AsyncSocketModeHandler on aiohttp, aiobotocore).

Benchmark only: `pip install -e '.[bench]'`. It reads the same environment as Ark
(SLACK_BOT_TOKEN, SLACK_APP_TOKEN, SLACK_API_URL, BEDROCK_AGENT_ID, BEDROCK_AGENT_ALIAS_ID,
AWS_REGION; botocore reads AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME itself), answers every
message and mention in its thread with the agent's answer, and hands attached files to the
agent as Ark does. The one concession to speed: the Bedrock client is created once at start.

    python -m benchmarks.bolt_bot
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp
from aiobotocore.session import get_session
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

BOT_TOKEN = os.environ["SLACK_BOT_TOKEN"]

app = AsyncApp(
    client=AsyncWebClient(
        token=BOT_TOKEN, base_url=os.environ.get("SLACK_API_URL", "https://slack.com/api/")
    )
)
bedrock: Any = None  # the bedrock-agent-runtime client, created in main()


async def download(http: aiohttp.ClientSession, file: dict[str, Any]) -> dict[str, Any]:
    url = file.get("url_private_download") or file["url_private"]
    async with http.get(url, headers={"Authorization": f"Bearer {BOT_TOKEN}"}) as response:
        data = await response.read()
    return {
        "name": file["name"],
        "useCase": "CODE_INTERPRETER",
        "source": {
            "sourceType": "BYTE_CONTENT",
            "byteContent": {"data": data, "mediaType": file.get("mimetype") or "text/plain"},
        },
    }


async def ask_agent(event: dict[str, Any], say: Any) -> None:
    thread_ts = event.get("thread_ts") or event["ts"]
    files = []
    if event.get("files"):
        async with aiohttp.ClientSession() as http:
            files = [await download(http, f) for f in event["files"][:5]]
    response = await bedrock.invoke_agent(
        agentId=os.environ["BEDROCK_AGENT_ID"],
        agentAliasId=os.environ["BEDROCK_AGENT_ALIAS_ID"],
        sessionId=thread_ts.replace(".", "-"),
        inputText=event.get("text") or "Please look at the attached file(s)",
        sessionState={"files": files} if files else {},
    )
    answer = ""
    async for part in response["completion"]:
        if "chunk" in part:
            answer += part["chunk"]["bytes"].decode("utf-8")
    await say(text=answer, thread_ts=thread_ts)


@app.event("app_mention")
async def handle_mention(event: dict[str, Any], say: Any) -> None:
    await ask_agent(event, say)


@app.event("message")
async def handle_message(event: dict[str, Any], say: Any) -> None:
    await ask_agent(event, say)


async def main() -> None:
    global bedrock
    session = get_session()
    region = os.environ.get("AWS_REGION", "us-east-1")
    async with session.create_client("bedrock-agent-runtime", region_name=region) as client:
        bedrock = client
        handler = AsyncSocketModeHandler(app, os.environ["SLACK_APP_TOKEN"])
        await handler.start_async()


if __name__ == "__main__":
    asyncio.run(main())
