"""SlackWeb against a mocked transport (respx): bodies, headers, retries, typed errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pytest
import respx

from ark.errors import SlackApiError
from ark.slack.web import AuthInfo, SlackWeb, parse_scopes, retry_after_s

BASE = "https://slack.test/api/"
TOKEN = "bot-token-SECRET-1234"  # not token-shaped, so the log redactor cannot hide a leak
APP_TOKEN = "app-token-SECRET-5678"
UPLOAD_URL = "https://files.slack.test/upload/v1/abc"


class FakeSleep:
    """Records requested delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def web(sleep: FakeSleep) -> AsyncIterator[SlackWeb]:
    async with httpx.AsyncClient() as client:
        yield SlackWeb(client, token=TOKEN, base_url=BASE, sleep=sleep, max_retry_after_s=30.0)


def ok(**fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, **fields})


def form_of(request: httpx.Request) -> dict[str, str]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def json_of(request: httpx.Request) -> dict[str, Any]:
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    return orjson.loads(request.content)


# -- call basics ------------------------------------------------------------------------


async def test_call_sends_bearer_and_json_body(web: SlackWeb, router: respx.MockRouter) -> None:
    route = router.post("chat.postMessage").mock(return_value=ok(ts="1.2"))
    body = await web.call("chat.postMessage", json={"channel": "C1", "text": "hi", "x": None})
    assert body == {"ok": True, "ts": "1.2"}
    request = route.calls.last.request
    assert request.url == BASE + "chat.postMessage"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json_of(request) == {"channel": "C1", "text": "hi"}  # None left out
    assert "token" not in request.content.decode()


async def test_call_form_encodes_and_token_override(
    web: SlackWeb, router: respx.MockRouter
) -> None:
    route = router.post("users.info").mock(return_value=ok(user={"id": "U1"}))
    await web.call("users.info", form={"user": "U1", "skip": None}, token="other-token")
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer other-token"
    assert form_of(request) == {"user": "U1"}


async def test_ok_false_raises_with_slack_code(web: SlackWeb, router: respx.MockRouter) -> None:
    router.post("chat.postMessage").mock(
        return_value=httpx.Response(200, json={"ok": False, "error": "channel_not_found"})
    )
    with pytest.raises(SlackApiError) as info:
        await web.call("chat.postMessage", json={"channel": "C1"})
    assert (info.value.method, info.value.code) == ("chat.postMessage", "channel_not_found")


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>oops</html>"),
        httpx.Response(200, json=["not", "a", "dict"]),
    ],
)
async def test_non_json_body_is_invalid_response(
    web: SlackWeb, router: respx.MockRouter, response: httpx.Response
) -> None:
    router.post("auth.test").mock(return_value=response)
    with pytest.raises(SlackApiError) as info:
        await web.call("auth.test")
    assert info.value.code == "invalid_response"


async def test_other_non_200_is_http_code_without_retry(
    web: SlackWeb, router: respx.MockRouter
) -> None:
    route = router.post("users.info").mock(return_value=httpx.Response(404))
    with pytest.raises(SlackApiError) as info:
        await web.call("users.info", form={"user": "U1"})
    assert info.value.code == "http_404"
    assert route.call_count == 1


# -- 429 ---------------------------------------------------------------------------------


async def test_429_waits_retry_after_then_succeeds(
    web: SlackWeb, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    route = router.post("chat.postMessage").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(429),  # no header: 1 s
            ok(ts="9.9"),
        ]
    )
    assert await web.post_message("C1", "hi") == "9.9"
    assert route.call_count == 3
    assert sleep.delays == [7.0, 1.0]


async def test_429_gives_up_after_max_retries(
    web: SlackWeb, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    route = router.post("conversations.replies").mock(
        return_value=httpx.Response(429, headers={"Retry-After": "2"})
    )
    with pytest.raises(SlackApiError) as info:
        await web.conversations_replies("C1", "1.0")
    assert (info.value.code, info.value.status) == ("ratelimited", 429)
    assert route.call_count == 4  # first try + 3 retries
    assert sleep.delays == [2.0, 2.0, 2.0]


async def test_429_retry_after_capped(router: respx.MockRouter, sleep: FakeSleep) -> None:
    router.post("auth.test").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3600"}),
            ok(user_id="U", team_id="T"),
        ]
    )
    async with httpx.AsyncClient() as client:
        web = SlackWeb(client, token=TOKEN, base_url=BASE, sleep=sleep, max_retry_after_s=5.0)
        await web.auth_test()
    assert sleep.delays == [5.0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 1.0),
        ("", 1.0),
        ("abc", 1.0),
        ("-3", 1.0),
        ("nan", 1.0),
        ("inf", 1.0),
        ("2.5", 2.5),
        ("99", 30.0),
    ],
)
def test_retry_after_parsing(header: str | None, expected: float) -> None:
    assert retry_after_s(header, 30.0) == expected


# -- 5xx and network errors ---------------------------------------------------------------


async def test_5xx_retried_for_reads_with_backoff(
    web: SlackWeb, router: respx.MockRouter, sleep: FakeSleep
) -> None:
    route = router.post("users.info").mock(
        side_effect=[httpx.Response(503), httpx.Response(500), ok(user={"id": "U1"})]
    )
    assert await web.users_info("U1") == {"id": "U1"}
    assert route.call_count == 3
    assert len(sleep.delays) == 2 and sleep.delays[1] > sleep.delays[0] > 0


async def test_5xx_retries_bounded(web: SlackWeb, router: respx.MockRouter) -> None:
    route = router.post("users.info").mock(return_value=httpx.Response(502))
    with pytest.raises(SlackApiError) as info:
        await web.users_info("U1")
    assert (info.value.code, info.value.status) == ("http_502", 502)
    assert route.call_count == 3  # first try + 2 retries


async def test_5xx_not_retried_for_post_message(web: SlackWeb, router: respx.MockRouter) -> None:
    route = router.post("chat.postMessage").mock(return_value=httpx.Response(500))
    with pytest.raises(SlackApiError) as info:
        await web.post_message("C1", "hi")
    assert info.value.code == "http_500"
    assert route.call_count == 1  # a second try could post twice


async def test_network_error_on_write_not_retried(web: SlackWeb, router: respx.MockRouter) -> None:
    route = router.post("chat.postMessage").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(SlackApiError) as info:
        await web.post_message("C1", "hi")
    assert info.value.code == "network_error"
    assert route.call_count == 1


async def test_network_error_on_read_retried_once(web: SlackWeb, router: respx.MockRouter) -> None:
    route = router.post("conversations.history").mock(
        side_effect=[httpx.ConnectError("refused"), ok(messages=[])]
    )
    assert await web.conversations_history("C1") == []
    assert route.call_count == 2

    route.reset()
    route.side_effect = httpx.ConnectError("refused")
    with pytest.raises(SlackApiError) as info:
        await web.conversations_history("C1")
    assert info.value.code == "network_error"
    assert route.call_count == 2


async def test_a_body_that_fails_to_decode_is_a_typed_error(
    web: SlackWeb, router: respx.MockRouter
) -> None:
    # a proxy or a broken peer sends "gzip" that is not: a SlackApiError, never a raw
    # httpx exception that would skip the caller's degrade-gracefully path
    router.post("users.info").mock(
        return_value=httpx.Response(
            200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"{}x")
        )
    )
    with pytest.raises(SlackApiError) as info:
        await web.users_info("U1")
    assert info.value.code == "network_error"


# -- typed helpers ------------------------------------------------------------------------


async def test_auth_test_parses_body_and_scopes(web: SlackWeb, router: respx.MockRouter) -> None:
    router.post("auth.test").mock(
        return_value=httpx.Response(
            200,
            json={
                "ok": True,
                "user_id": "UBOT",
                "team_id": "T1",
                "bot_id": "B1",
                "team": "Acme",
                "user": "ark",
                "url": "https://acme.slack.com/",
            },
            headers={"x-oauth-scopes": "chat:write, files:read,,reactions:write"},
        )
    )
    info = await web.auth_test()
    assert info == AuthInfo(
        user_id="UBOT",
        team_id="T1",
        bot_id="B1",
        team="Acme",
        user="ark",
        url="https://acme.slack.com/",
        scopes=("chat:write", "files:read", "reactions:write"),
    )


def test_parse_scopes_empty() -> None:
    assert parse_scopes(None) == ()
    assert parse_scopes("") == ()


async def test_open_socket_url_uses_app_token_header_only(
    web: SlackWeb, router: respx.MockRouter
) -> None:
    route = router.post("apps.connections.open").mock(return_value=ok(url="wss://x.test/link"))
    assert await web.open_socket_url(APP_TOKEN) == "wss://x.test/link"
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {APP_TOKEN}"
    assert APP_TOKEN not in request.content.decode()
    assert TOKEN not in request.content.decode()


async def test_conversations_replies_form_and_order(
    web: SlackWeb, router: respx.MockRouter
) -> None:
    messages = [{"ts": "1.0", "text": "a"}, {"ts": "2.0", "text": "b"}, "junk"]
    route = router.post("conversations.replies").mock(return_value=ok(messages=messages))
    assert await web.conversations_replies("C1", "1.0", limit=50) == messages[:2]
    assert form_of(route.calls.last.request) == {"channel": "C1", "ts": "1.0", "limit": "50"}


async def test_conversations_history_returned_oldest_first(
    web: SlackWeb, router: respx.MockRouter
) -> None:
    newest_first = [{"ts": "3.0"}, {"ts": "2.0"}, {"ts": "1.0"}]
    route = router.post("conversations.history").mock(return_value=ok(messages=newest_first))
    result = await web.conversations_history("D1")
    assert [m["ts"] for m in result] == ["1.0", "2.0", "3.0"]
    assert form_of(route.calls.last.request) == {"channel": "D1", "limit": "200"}


async def test_post_message_json_body_unfurls_off(web: SlackWeb, router: respx.MockRouter) -> None:
    route = router.post("chat.postMessage").mock(return_value=ok(ts="5.5"))
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]
    ts = await web.post_message(
        "C1", "x", thread_ts="1.0", blocks=blocks, unfurl_links=True, mrkdwn=True
    )
    assert ts == "5.5"
    assert json_of(route.calls.last.request) == {
        "channel": "C1",
        "text": "x",
        "thread_ts": "1.0",
        "blocks": blocks,
        "mrkdwn": True,
        "unfurl_links": False,
        "unfurl_media": False,
    }


async def test_post_message_without_ts_is_invalid(web: SlackWeb, router: respx.MockRouter) -> None:
    router.post("chat.postMessage").mock(return_value=ok())
    with pytest.raises(SlackApiError) as info:
        await web.post_message("C1", "x")
    assert info.value.code == "invalid_response"


async def test_reactions_tolerate_idempotent_codes(web: SlackWeb, router: respx.MockRouter) -> None:
    add = router.post("reactions.add").mock(
        return_value=httpx.Response(200, json={"ok": False, "error": "already_reacted"})
    )
    remove = router.post("reactions.remove").mock(
        return_value=httpx.Response(200, json={"ok": False, "error": "no_reaction"})
    )
    await web.add_reaction("C1", "1.0", "eyes")
    await web.remove_reaction("C1", "1.0", "eyes")
    assert json_of(add.calls.last.request) == {"channel": "C1", "timestamp": "1.0", "name": "eyes"}
    assert json_of(remove.calls.last.request) == {
        "channel": "C1",
        "timestamp": "1.0",
        "name": "eyes",
    }

    add.return_value = httpx.Response(200, json={"ok": False, "error": "no_reaction"})
    with pytest.raises(SlackApiError) as info:
        await web.add_reaction("C1", "1.0", "eyes")
    assert info.value.code == "no_reaction"


# -- upload -------------------------------------------------------------------------------


async def test_upload_three_steps_in_order(web: SlackWeb, router: respx.MockRouter) -> None:
    order: list[str] = []

    def record(name: str, response: httpx.Response) -> Any:
        def handler(request: httpx.Request) -> httpx.Response:
            order.append(name)
            return response

        return handler

    get_url = router.post("files.getUploadURLExternal").mock(
        side_effect=record("get", ok(upload_url=UPLOAD_URL, file_id="F1"))
    )
    put = router.post(UPLOAD_URL).mock(
        side_effect=record("put", httpx.Response(200, text="OK - 5"))
    )
    complete = router.post("files.completeUploadExternal").mock(
        side_effect=record("complete", ok(files=[{"id": "F1"}]))
    )
    data = b"a,b\n1,2\n"
    file_id = await web.upload_file(channel="C1", thread_ts="1.0", filename="out.csv", data=data)

    assert file_id == "F1"
    assert order == ["get", "put", "complete"]
    assert form_of(get_url.calls.last.request) == {"filename": "out.csv", "length": str(len(data))}
    upload_request = put.calls.last.request
    assert upload_request.content == data
    assert "authorization" not in upload_request.headers  # the upload URL is pre-signed
    assert json_of(complete.calls.last.request) == {
        "files": [{"id": "F1", "title": "out.csv"}],
        "channel_id": "C1",
        "thread_ts": "1.0",
    }


async def test_upload_title_and_no_thread(web: SlackWeb, router: respx.MockRouter) -> None:
    router.post("files.getUploadURLExternal").mock(
        return_value=ok(upload_url=UPLOAD_URL, file_id="F2")
    )
    router.post(UPLOAD_URL).mock(return_value=httpx.Response(200))
    complete = router.post("files.completeUploadExternal").mock(return_value=ok())
    await web.upload_file(
        channel="D1", thread_ts=None, filename="r.pdf", data=b"%PDF", title="Report"
    )
    assert json_of(complete.calls.last.request) == {
        "files": [{"id": "F2", "title": "Report"}],
        "channel_id": "D1",
    }


async def test_upload_byte_post_failure_stops_before_complete(
    web: SlackWeb, router: respx.MockRouter
) -> None:
    router.post("files.getUploadURLExternal").mock(
        return_value=ok(upload_url=UPLOAD_URL, file_id="F1")
    )
    router.post(UPLOAD_URL).mock(return_value=httpx.Response(413))
    complete = router.post("files.completeUploadExternal").mock(return_value=ok())
    with pytest.raises(SlackApiError) as info:
        await web.upload_file(channel="C1", thread_ts=None, filename="x.txt", data=b"x")
    assert (info.value.method, info.value.code) == ("files.upload", "http_413")
    assert not complete.called


async def test_upload_empty_data_makes_no_call(web: SlackWeb, router: respx.MockRouter) -> None:
    route = router.post("files.getUploadURLExternal").mock(return_value=ok())
    with pytest.raises(ValueError):
        await web.upload_file(channel="C1", thread_ts=None, filename="x.txt", data=b"")
    assert not route.called


# -- logging ------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_tokens_never_logged(web: SlackWeb, router: respx.MockRouter) -> None:
    handler = _Records()
    logger = logging.getLogger("ark.slack.web")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        router.post("users.info").mock(
            side_effect=[httpx.Response(429), httpx.Response(500), ok(user={})]
        )
        await web.users_info("U1")
        router.post("chat.postMessage").mock(side_effect=httpx.ConnectError("down"))
        with pytest.raises(SlackApiError):
            await web.post_message("C1", "secret text")
        router.post("auth.test").mock(
            return_value=httpx.Response(200, json={"ok": False, "error": "invalid_auth"})
        )
        with pytest.raises(SlackApiError):
            await web.auth_test()
        router.post("apps.connections.open").mock(return_value=httpx.Response(503))
        with pytest.raises(SlackApiError):
            await web.open_socket_url(APP_TOKEN)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)

    events = [r.getMessage() for r in handler.records]
    assert "slack_rate_limited" in events and "slack_api_error" in events
    dumped = repr([(r.getMessage(), r.__dict__) for r in handler.records])
    assert TOKEN not in dumped and APP_TOKEN not in dumped
    assert "secret text" not in dumped
    limited = next(r for r in handler.records if r.getMessage() == "slack_rate_limited")
    assert limited.ark_fields == {"method": "users.info", "retry_after_s": 1.0}  # type: ignore[attr-defined]


async def test_requests_in_flight_are_capped_so_the_pool_never_queues() -> None:
    # Past the cap, calls wait in an asyncio.Semaphore (O(1)), not in httpcore's pool queue
    # (rescanned on every request): a burst of busy replies stays cheap for the event loop.
    in_flight = peak = 0
    release, full = asyncio.Event(), asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 3:
            full.set()
        await release.wait()
        in_flight -= 1
        return httpx.Response(200, json={"ok": True, "ts": "1.0"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        web = SlackWeb(
            client, token="xoxb-test", base_url="http://slack.test/api/", max_in_flight=3
        )
        calls = [asyncio.create_task(web.post_message("C1", f"m{i}")) for i in range(10)]
        async with asyncio.timeout(5):
            await full.wait()
            for _ in range(20):  # give the other seven every chance to start
                await asyncio.sleep(0)
            assert in_flight == 3
            release.set()
            assert await asyncio.gather(*calls) == ["1.0"] * 10
    assert peak == 3
