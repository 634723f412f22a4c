"""Self-test of tests/fakes/slack.py: the fake speaks Slack's Web API and Socket Mode."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.fakes.slack import FakeSlack

RECV_TIMEOUT_S = 5.0


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def web(slack: FakeSlack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {slack.bot_token}"}
    async with httpx.AsyncClient(base_url=slack.api_url, headers=headers, trust_env=False) as c:
        yield c


async def call(web: httpx.AsyncClient, method: str, **params: object) -> dict:
    response = await web.post(method, json=params)
    assert response.status_code == 200
    return response.json()


async def recv_json(ws: ClientConnection) -> dict:
    async with asyncio.timeout(RECV_TIMEOUT_S):
        return orjson.loads(await ws.recv())


async def open_socket(slack: FakeSlack, web: httpx.AsyncClient) -> tuple[ClientConnection, str]:
    opened = await web.post(
        "apps.connections.open", headers={"Authorization": f"Bearer {slack.app_token}"}
    )
    url = opened.json()["url"]
    return await connect(url, open_timeout=RECV_TIMEOUT_S), url


async def test_auth_test_scopes_header_and_token_errors(
    slack: FakeSlack, web: httpx.AsyncClient
) -> None:
    response = await web.post("auth.test")
    body = response.json()
    assert body["ok"] and body["user_id"] == "UBOT" and body["bot_id"] == "BBOT"
    assert body["team_id"] == "T1"
    assert "reactions:write" in response.headers["x-oauth-scopes"].split(",")

    bad = await web.post("auth.test", headers={"Authorization": "Bearer xoxb-wrong"})
    assert bad.json() == {"ok": False, "error": "invalid_auth"}
    async with httpx.AsyncClient(trust_env=False) as anonymous:
        missing = await anonymous.post(f"{slack.api_url}auth.test")
    assert missing.json()["error"] == "not_authed"
    assert (await call(web, "apps.connections.open"))["error"] == "not_allowed_token_type"
    assert (await call(web, "no.such.method"))["error"] == "unknown_method"
    assert [c.method for c in slack.calls][:2] == ["auth.test", "auth.test"]


async def test_post_message_shows_in_replies_and_history_is_newest_first(
    slack: FakeSlack, web: httpx.AsyncClient
) -> None:
    slack.set_thread("C1", "100.000001", [{"user": "U1", "text": "question"}])
    posted = await call(web, "chat.postMessage", channel="C1", thread_ts="100.000001", text="hi")
    assert posted["ok"] and float(posted["ts"]) > 100.000001

    replies = await call(web, "conversations.replies", channel="C1", ts="100.000001", limit=200)
    texts = [(m.get("user"), m["text"]) for m in replies["messages"]]
    assert texts == [("U1", "question"), ("UBOT", "hi")]
    assert replies["messages"][1]["bot_id"] == "BBOT"
    missing = await call(web, "conversations.replies", channel="C1", ts="1.000000")
    assert missing["error"] == "thread_not_found"

    slack.set_history("D1", [{"user": "U1", "text": "first"}, {"user": "U1", "text": "second"}])
    # form-encoded, as some clients send it
    form = await web.post("chat.postMessage", data={"channel": "D1", "text": "third"})
    assert form.json()["ok"]
    history = await call(web, "conversations.history", channel="D1", limit=2)
    assert [m["text"] for m in history["messages"]] == ["third", "second"]
    assert history["has_more"] is True
    assert [c.params["text"] for c in slack.posts] == ["hi", "third"]


async def test_upload_flow_stores_bytes(slack: FakeSlack, web: httpx.AsyncClient) -> None:
    bad = await call(web, "files.getUploadURLExternal", filename="a.txt", length=0)
    assert bad["error"] == "invalid_arguments"
    got = await web.post("files.getUploadURLExternal", data={"filename": "a.txt", "length": "5"})
    upload_url, file_id = got.json()["upload_url"], got.json()["file_id"]

    early = await call(web, "files.completeUploadExternal", files=[{"id": file_id}])
    assert early["error"] == "file_not_found"  # bytes never posted
    posted = await web.post(upload_url, files={"file": ("a.txt", b"hello")})
    assert posted.status_code == 200 and posted.text == "OK - 5"

    files = orjson.dumps([{"id": file_id, "title": "A"}]).decode()
    done = await web.post(
        "files.completeUploadExternal",
        data={"files": files, "channel_id": "C1", "thread_ts": "100.000001"},
    )
    assert done.json()["files"] == [{"id": file_id, "title": "A"}]
    assert (
        slack.calls_to("files.completeUploadExternal")[-1].json_field("files")[0]["id"] == file_id
    )
    [upload] = slack.uploads
    assert (upload.data, upload.channel_id, upload.thread_ts, upload.title) == (
        b"hello",
        "C1",
        "100.000001",
        "A",
    )


async def test_scripted_failures_are_consumed_once(
    slack: FakeSlack, web: httpx.AsyncClient
) -> None:
    slack.fail_next("chat.postMessage", "channel_not_found")
    slack.rate_limit_next("reactions.add", retry_after=7)
    slack.http_error_next("users.info", 503)

    assert (await call(web, "chat.postMessage", channel="C1", text="x"))["error"] == (
        "channel_not_found"
    )
    assert (await call(web, "chat.postMessage", channel="C1", text="x"))["ok"]

    limited = await web.post("reactions.add", json={"channel": "C1", "timestamp": "1.0"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    params = {"channel": "C1", "timestamp": "1.0", "name": "eyes"}
    assert (await call(web, "reactions.add", **params))["ok"]
    assert (await call(web, "reactions.add", **params))["error"] == "already_reacted"
    assert slack.reactions_on("C1", "1.0") == {"eyes"}

    assert (await web.post("users.info", json={"user": "U1"})).status_code == 503
    assert (await call(web, "users.info", user="U1"))["error"] == "user_not_found"
    slack.add_user("U1", real_name="Ada", tz="Europe/London", title="Engineer")
    user = (await call(web, "users.info", user="U1"))["user"]
    assert (user["real_name"], user["tz"], user["profile"]["title"]) == (
        "Ada",
        "Europe/London",
        "Engineer",
    )
    await slack.wait_for_call("users.info", lambda c: c.params["user"] == "U1", count=3)
    with pytest.raises(TimeoutError, match="calls seen"):
        await slack.wait_for_call("chat.update", timeout_s=0.05)


async def test_hosted_file_needs_token_else_sign_in_page(
    slack: FakeSlack, web: httpx.AsyncClient
) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB: four chunks
    obj = slack.file_object("report.pdf", data)
    assert obj["mimetype"] == "application/pdf" and obj["size"] == len(data)

    url = obj["url_private_download"]
    anonymous = await web.get(url, headers={"Authorization": "Bearer xoxb-other"})
    assert anonymous.status_code == 200
    assert anonymous.headers["content-type"].startswith("text/html")
    assert b"Sign in" in anonymous.content

    authorised = await web.get(url)
    assert authorised.content == data
    stats = slack.hosted_files[url]
    assert (stats.unauthorized, stats.downloads, stats.completed, stats.bytes_sent) == (
        1,
        1,
        1,
        len(data),
    )

    moved = slack.host_redirect("/files-pri/T1-F9/moved.txt", url)
    redirect = await web.get(moved)
    assert redirect.status_code == 302 and redirect.headers["location"] == url


async def test_socket_mode_hello_event_ack_disconnect_and_drop(
    slack: FakeSlack, web: httpx.AsyncClient
) -> None:
    ws, url = await open_socket(slack, web)
    async with ws:
        hello = await recv_json(ws)
        assert hello["type"] == "hello" and hello["num_connections"] == 1
        assert hello["connection_info"]["app_id"] == "A1"
        await slack.wait_for_connections(1)

        event = slack.dm_event("hello there")
        envelope_id = await slack.send_event(event, event_id="Ev1")
        envelope = await recv_json(ws)
        assert envelope["envelope_id"] == envelope_id and envelope["type"] == "events_api"
        assert envelope["accepts_response_payload"] is False
        assert envelope["retry_attempt"] == 0
        payload = envelope["payload"]
        assert payload["type"] == "event_callback" and payload["event_id"] == "Ev1"
        assert (
            payload["event"]["channel_type"] == "im" and payload["event"]["text"] == "hello there"
        )

        await ws.send(orjson.dumps({"envelope_id": envelope_id}).decode())
        latency = await slack.wait_for_ack(envelope_id)
        assert latency >= 0 and slack.acks == [envelope_id]

        # the delivered message is now part of the conversation
        replies = await call(web, "conversations.replies", channel="D1", ts=event["ts"])
        assert [m["text"] for m in replies["messages"]] == ["hello there"]

        await slack.send_disconnect("refresh_requested")
        assert await recv_json(ws) == {
            "type": "disconnect",
            "reason": "refresh_requested",
            "debug_info": {"host": "fake"},
        }

        await slack.drop_connection()
        assert slack.connections == 0
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(RECV_TIMEOUT_S):
                await ws.recv()

    # a ticket works once: a client must open a fresh URL for every connection
    with pytest.raises(InvalidStatus):
        await connect(url, open_timeout=RECV_TIMEOUT_S)
    assert slack.total_connections == 1 and slack.rejected_handshakes == 1


async def test_stop_closes_open_sockets() -> None:
    before = asyncio.all_tasks()
    slack = FakeSlack()
    await slack.start()
    async with httpx.AsyncClient(trust_env=False, base_url=slack.api_url) as web:
        ws, _ = await open_socket(slack, web)
    await slack.wait_for_connections(1)
    await slack.stop()
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(RECV_TIMEOUT_S):
            while True:
                await ws.recv()
    await ws.close()
    assert asyncio.all_tasks() - before == set()
