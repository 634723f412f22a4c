"""Slack Web API client: one `httpx.AsyncClient` passed in, typed `SlackApiError` out.

    web = SlackWeb(client, token=settings.slack_bot_token)
    ts = await web.post_message("C1", "hello", thread_ts="1700000000.000100")

Thin and boring on purpose. Every call is a POST to `base_url + method` with the token in
an `Authorization: Bearer` header (never in the body). Read methods are form-encoded (Slack's
read methods do not accept JSON bodies); write methods send JSON.

Retries, all bounded:
- HTTP 429: wait `Retry-After` seconds (1 s when missing or invalid, capped at
  `max_retry_after_s`), at most `max_retries` times, then `SlackApiError(code="ratelimited")`.
  A 429 means Slack did nothing, so every method is retried.
- HTTP 5xx and transport errors: retried only for methods that are safe to repeat
  (`RETRY_SAFE_METHODS`: reads, reactions, upload URLs). A write such as chat.postMessage may
  have taken effect before the failure, and a second attempt would post twice.

Every failure raises `ark.errors.SlackApiError`; the token is never logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from ark.errors import SlackApiError
from ark.log import get_logger

log = get_logger("ark.slack.web")

DEFAULT_BASE_URL = "https://slack.com/api/"
MAX_RATE_LIMIT_RETRIES = 3
# requests on the HTTP client at once; app.py sizes the client's pool to match
MAX_IN_FLIGHT_REQUESTS = 20
MAX_RETRY_AFTER_S = 30.0
DEFAULT_RETRY_AFTER_S = 1.0
MAX_SERVER_ERROR_RETRIES = 2
SERVER_ERROR_BACKOFF_S = 0.5  # doubled on each further retry
MAX_NETWORK_RETRIES = 1
UPLOAD_METHOD = "files.upload"  # the name SlackApiError carries for the raw byte POST

# Methods that change nothing, or whose repetition is harmless (reactions report
# already_reacted / no_reaction; an unused upload URL expires): retried on 5xx and on
# transport errors. Everything else is sent once.
RETRY_SAFE_METHODS = frozenset(
    {
        "auth.test",
        "apps.connections.open",
        "users.info",
        "conversations.info",
        "conversations.replies",
        "conversations.history",
        "reactions.add",
        "reactions.remove",
        "files.getUploadURLExternal",
    }
)

_JSON_CONTENT_TYPE = "application/json; charset=utf-8"
_REACTION_OK_CODES = {"reactions.add": "already_reacted", "reactions.remove": "no_reaction"}


@dataclass(frozen=True, slots=True)
class AuthInfo:
    """Who the bot token belongs to (auth.test), with the scopes it was granted."""

    user_id: str
    team_id: str
    bot_id: str | None
    team: str | None
    user: str | None
    url: str | None
    scopes: tuple[str, ...]


def parse_scopes(header: str | None) -> tuple[str, ...]:
    """The `x-oauth-scopes` header (`"chat:write,files:read"`) as a tuple, order kept."""
    if not header:
        return ()
    return tuple(s.strip() for s in header.split(",") if s.strip())


def retry_after_s(header: str | None, cap_s: float) -> float:
    """Seconds to wait for a 429: `Retry-After` as a number of seconds, 1 s when it is
    missing or not a finite non-negative number, never more than `cap_s`."""
    try:
        value = float(header) if header is not None else DEFAULT_RETRY_AFTER_S
    except ValueError:
        value = DEFAULT_RETRY_AFTER_S
    if not value >= 0 or value == float("inf"):  # NaN fails `>= 0`
        value = DEFAULT_RETRY_AFTER_S
    return min(value, cap_s)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _without_none(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


class SlackWeb:
    """Calls the Slack Web API through the given client. Raises `SlackApiError` for every
    failure: Slack's own `ok: false` code, `ratelimited`, `http_<status>`,
    `network_error`, `invalid_response`."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        token: str,
        base_url: str = DEFAULT_BASE_URL,
        max_retries: int = MAX_RATE_LIMIT_RETRIES,
        max_retry_after_s: float = MAX_RETRY_AFTER_S,
        server_error_backoff_s: float = SERVER_ERROR_BACKOFF_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_in_flight: int = MAX_IN_FLIGHT_REQUESTS,
    ) -> None:
        self._client = client
        # At most as many requests on the client as its pool has connections: past that,
        # httpcore queues them and rescans the whole queue against every connection on
        # each request, which under a burst (hundreds of busy replies) is quadratic work
        # on the event loop that also reads and acks Socket Mode envelopes.
        self._in_flight = asyncio.Semaphore(max(1, max_in_flight))
        self._token = token
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._max_retries = max_retries
        self._max_retry_after_s = max_retry_after_s
        self._server_error_backoff_s = server_error_backoff_s
        self._sleep = sleep

    # -- the one generic call ---------------------------------------------------------

    async def call(
        self,
        method: str,
        *,
        json: Mapping[str, Any] | None = None,
        form: Mapping[str, Any] | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        """POST `method` and return the decoded body when Slack says `ok: true`.

        `json=` sends a JSON body, otherwise `form=` (possibly empty) is form-encoded; keys
        whose value is None are left out. `token=` replaces the bot token for this call.
        Raises `SlackApiError` (see the class docstring)."""
        body, _ = await self._call(method, json=json, form=form, token=token)
        return body

    async def _call(
        self,
        method: str,
        *,
        json: Mapping[str, Any] | None,
        form: Mapping[str, Any] | None,
        token: str | None,
    ) -> tuple[dict[str, Any], httpx.Headers]:
        headers = {"Authorization": f"Bearer {token or self._token}"}
        if json is not None:
            headers["Content-Type"] = _JSON_CONTENT_TYPE
            request_kwargs: dict[str, Any] = {"content": orjson.dumps(_without_none(json))}
        else:
            request_kwargs = {"data": _without_none(form or {})}
        retry_safe = method in RETRY_SAFE_METHODS
        rate_limited = server_errors = network_errors = 0
        url = self._base_url + method

        while True:
            try:
                async with self._in_flight:
                    response = await self._client.post(url, headers=headers, **request_kwargs)
            except httpx.HTTPError as exc:  # transport, a body that fails to decode, ...
                if retry_safe and network_errors < MAX_NETWORK_RETRIES:
                    network_errors += 1
                    log.warning("slack_network_retry", method=method, exc_type=type(exc).__name__)
                    continue
                log.warning("slack_network_error", method=method, exc_type=type(exc).__name__)
                raise SlackApiError(method, "network_error") from exc

            status = response.status_code
            if status == 429:
                if rate_limited >= self._max_retries:
                    log.warning("slack_rate_limited_giving_up", method=method, retries=rate_limited)
                    raise SlackApiError(method, "ratelimited", 429)
                rate_limited += 1
                delay = retry_after_s(response.headers.get("retry-after"), self._max_retry_after_s)
                log.warning("slack_rate_limited", method=method, retry_after_s=delay)
                await self._sleep(delay)
                continue
            if status >= 500:
                if retry_safe and server_errors < MAX_SERVER_ERROR_RETRIES:
                    delay = self._server_error_backoff_s * 2**server_errors
                    server_errors += 1
                    log.warning("slack_server_error_retry", method=method, status=status)
                    await self._sleep(delay)
                    continue
                log.warning("slack_server_error", method=method, status=status)
                raise SlackApiError(method, f"http_{status}", status)
            if status != 200:
                log.warning("slack_http_error", method=method, status=status)
                raise SlackApiError(method, f"http_{status}", status)
            return self._decode(method, response), response.headers

    @staticmethod
    def _decode(method: str, response: httpx.Response) -> dict[str, Any]:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            log.warning("slack_invalid_response", method=method)
            raise SlackApiError(method, "invalid_response", response.status_code)
        if body.get("ok") is not True:
            code = _str_or_none(body.get("error")) or "unknown_error"
            # debug: callers decide whether a code matters (already_reacted does not)
            log.debug("slack_api_error", method=method, error=code)
            raise SlackApiError(method, code)
        return body

    # -- typed helpers ----------------------------------------------------------------

    async def auth_test(self) -> AuthInfo:
        """Who the bot token is, plus its granted scopes (`x-oauth-scopes`)."""
        body, headers = await self._call("auth.test", json=None, form=None, token=None)
        user_id, team_id = _str_or_none(body.get("user_id")), _str_or_none(body.get("team_id"))
        if user_id is None or team_id is None:
            raise SlackApiError("auth.test", "invalid_response")
        return AuthInfo(
            user_id=user_id,
            team_id=team_id,
            bot_id=_str_or_none(body.get("bot_id")),
            team=_str_or_none(body.get("team")),
            user=_str_or_none(body.get("user")),
            url=_str_or_none(body.get("url")),
            scopes=parse_scopes(headers.get("x-oauth-scopes")),
        )

    async def open_socket_url(self, app_token: str) -> str:
        """A fresh Socket Mode WebSocket URL (apps.connections.open, app token as Bearer)."""
        body = await self.call("apps.connections.open", token=app_token)
        url = _str_or_none(body.get("url"))
        if url is None:
            raise SlackApiError("apps.connections.open", "invalid_response")
        return url

    async def users_info(self, user: str) -> dict[str, Any]:
        """The users.info `user` object."""
        body = await self.call("users.info", form={"user": user})
        info = body.get("user")
        if not isinstance(info, dict):
            raise SlackApiError("users.info", "invalid_response")
        return info

    async def conversations_replies(
        self, channel: str, ts: str, *, limit: int = 200
    ) -> list[dict[str, Any]]:
        """The thread's messages (first page, up to `limit`), oldest first as Slack sends them."""
        body = await self.call(
            "conversations.replies", form={"channel": channel, "ts": ts, "limit": limit}
        )
        return _messages(body, "conversations.replies")

    async def conversations_history(
        self, channel: str, *, limit: int = 200
    ) -> list[dict[str, Any]]:
        """The channel's latest messages (up to `limit`), returned OLDEST first (Slack sends
        them newest first)."""
        body = await self.call("conversations.history", form={"channel": channel, "limit": limit})
        messages = _messages(body, "conversations.history")
        messages.reverse()
        return messages

    async def post_message(
        self,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> str:
        """Post a message (JSON body, link and media unfurls always off); return its ts.
        Sent once: a 5xx or network failure raises rather than risk a double post."""
        payload: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "thread_ts": thread_ts,
            "blocks": blocks,
            **extra,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        body = await self.call("chat.postMessage", json=payload)
        ts = _str_or_none(body.get("ts"))
        if ts is None:
            raise SlackApiError("chat.postMessage", "invalid_response")
        return ts

    async def add_reaction(self, channel: str, ts: str, name: str) -> None:
        """Add emoji `name` to a message; `already_reacted` counts as success."""
        await self._react("reactions.add", channel, ts, name)

    async def remove_reaction(self, channel: str, ts: str, name: str) -> None:
        """Remove emoji `name` from a message; `no_reaction` counts as success."""
        await self._react("reactions.remove", channel, ts, name)

    async def _react(self, method: str, channel: str, ts: str, name: str) -> None:
        try:
            await self.call(method, json={"channel": channel, "timestamp": ts, "name": name})
        except SlackApiError as exc:
            if exc.code != _REACTION_OK_CODES[method]:
                raise

    async def upload_file(
        self,
        *,
        channel: str,
        thread_ts: str | None,
        filename: str,
        data: bytes,
        title: str | None = None,
    ) -> str:
        """Share `data` as a file in the channel (thread), in Slack's three steps:
        files.getUploadURLExternal, a POST of the raw bytes to the upload URL (without the
        token), files.completeUploadExternal. Returns the file id.

        Raises ValueError for empty `data` (before any call) and `SlackApiError` otherwise;
        a failed byte POST raises with method `files.upload`."""
        if not data:
            raise ValueError("cannot upload an empty file")
        body = await self.call(
            "files.getUploadURLExternal", form={"filename": filename, "length": len(data)}
        )
        upload_url, file_id = (
            _str_or_none(body.get("upload_url")),
            _str_or_none(body.get("file_id")),
        )
        if upload_url is None or file_id is None:
            raise SlackApiError("files.getUploadURLExternal", "invalid_response")

        try:
            async with self._in_flight:
                response = await self._client.post(
                    upload_url,
                    content=data,
                    headers={"Content-Type": "application/octet-stream"},
                )
        except httpx.HTTPError as exc:  # transport, a body that fails to decode, ...
            log.warning("slack_upload_network_error", exc_type=type(exc).__name__)
            raise SlackApiError(UPLOAD_METHOD, "network_error") from exc
        if response.status_code != 200:
            log.warning("slack_upload_failed", status=response.status_code)
            raise SlackApiError(UPLOAD_METHOD, f"http_{response.status_code}", response.status_code)

        await self.call(
            "files.completeUploadExternal",
            json={
                "files": [{"id": file_id, "title": title or filename}],
                "channel_id": channel,
                "thread_ts": thread_ts,
            },
        )
        return file_id


def _messages(body: Mapping[str, Any], method: str) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise SlackApiError(method, "invalid_response")
    return [m for m in messages if isinstance(m, dict)]
