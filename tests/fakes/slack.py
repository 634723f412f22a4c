"""A loopback fake of Slack for end-to-end tests and benchmarks.

`FakeSlack` runs two real servers on 127.0.0.1 (ephemeral ports):

* an aiohttp HTTP server for the Web API (``POST /api/<method>``, JSON or form bodies, Bearer
  auth), the upload endpoint handed out by ``files.getUploadURLExternal`` and hosted files
  (``/files-pri/...``) that answer an HTML sign-in page without the bot token, as Slack does;
* a ``websockets`` server speaking Socket Mode: ``hello`` on connect, ``events_api`` envelopes,
  ``disconnect`` messages, acks recorded with their latency.

Every Web API call is recorded as a `Call`; failures are scripted per method, consumed in FIFO
order (`fail_next`, `rate_limit_next`, `http_error_next`, `respond_next`, `delay_next`). The
pseudo-methods ``"upload"`` and ``"download"`` script the upload endpoint and hosted files.

Messages posted by the bot, set with `set_thread` / `set_history`, or delivered with
`send_event` land in one per-channel store, so ``conversations.replies`` and
``conversations.history`` see them as real Slack would.

Usage::

    async with FakeSlack() as slack:
        ...  # point the client at slack.api_url; tokens slack.bot_token / slack.app_token
        await slack.wait_for_connections(1)
        envelope_id = await slack.send_event(slack.dm_event("hello"))
        await slack.wait_for_ack(envelope_id)
        [post] = await slack.wait_for_call("chat.postMessage")

Nothing here raises on protocol misuse by the client: it answers as Slack would
(``{"ok": false, "error": ...}``). The helpers raise `TimeoutError` when a bounded wait expires
and `RuntimeError` when asked to act on a Socket Mode connection that is not open.
"""

from __future__ import annotations

import asyncio
import itertools
import mimetypes
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson
from aiohttp import web
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

HOST = "127.0.0.1"
WS_PATH = "/link"
APP_ID = "A1"
DEFAULT_SCOPES = (
    "app_mentions:read,channels:history,chat:write,files:read,files:write,im:history,"
    "reactions:write,users:read"
)
DOWNLOAD_CHUNK_BYTES = 64 * 1024
MAX_REQUEST_BYTES = 256 * 1024 * 1024
FIRST_TS_US = 1_733_250_000_000_100
TS_STEP_US = 100
HTTP_SHUTDOWN_TIMEOUT_S = 1.0
WS_CLOSE_TIMEOUT_S = 1.0
SOCKET_SETTLE_TIMEOUT_S = 5.0
APPROXIMATE_CONNECTION_TIME_S = 18_060
MAX_BLOCKS_PER_MESSAGE = 50
MAX_SUGGESTED_PROMPTS = 4
MAX_LOADING_MESSAGES = 10
DEFAULT_REPLIES_LIMIT = 1000
DEFAULT_HISTORY_LIMIT = 100

SIGN_IN_PAGE_HTML = (
    b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
    b"<title>Slack</title></head><body><h1>Sign in to your workspace</h1>"
    b'<form action="/signin" method="post"><input name="domain"></form></body></html>'
)

# Scope any one of which a method needs; conversations.* depend on the channel type instead.
_METHOD_SCOPES: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "chat.postMessage": ("chat:write",),
        "chat.update": ("chat:write",),
        "chat.delete": ("chat:write",),
        "chat.startStream": ("chat:write",),
        "chat.appendStream": ("chat:write",),
        "chat.stopStream": ("chat:write",),
        "assistant.threads.setStatus": ("chat:write", "assistant:write"),
        "assistant.threads.setTitle": ("chat:write", "assistant:write"),
        "assistant.threads.setSuggestedPrompts": ("chat:write", "assistant:write"),
        "reactions.add": ("reactions:write",),
        "reactions.remove": ("reactions:write",),
        "users.info": ("users:read",),
        "files.getUploadURLExternal": ("files:write",),
        "files.completeUploadExternal": ("files:write",),
    }
)
_HISTORY_SCOPE_BY_CHANNEL_PREFIX: MappingProxyType[str, str] = MappingProxyType(
    {"C": "channels:history", "D": "im:history", "G": "groups:history"}
)
_FILETYPE_BY_EXTENSION: MappingProxyType[str, str] = MappingProxyType(
    {"txt": "text", "md": "markdown", "yml": "yaml", "htm": "html"}
)
# Event subtypes that are real messages and so belong in the conversation store.
_STORED_SUBTYPES = frozenset({"", "file_share", "bot_message", "thread_broadcast", "me_message"})


@dataclass(frozen=True, slots=True)
class Call:
    """One Web API request as the fake received it.

    ``params`` holds the JSON body or the form fields (plus query parameters); form values are
    kept as strings even when they hold JSON: use `json_field` to decode one. ``headers`` has
    lower-cased names. ``at`` is the `time.monotonic` arrival time.
    """

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float

    def json_field(self, name: str) -> Any:
        """The field decoded from JSON when it is a string, else as sent; None when absent.

        Raises orjson.JSONDecodeError when a string field is not valid JSON.
        """
        value = self.params.get(name)
        if isinstance(value, str | bytes):
            return orjson.loads(value)
        return value


@dataclass(frozen=True, slots=True)
class Upload:
    """A file completed with files.completeUploadExternal."""

    file_id: str
    filename: str
    data: bytes = field(repr=False)
    channel_id: str | None
    thread_ts: str | None
    title: str


@dataclass(frozen=True, slots=True)
class UploadPost:
    """One POST of bytes to an upload URL (before completion)."""

    file_id: str
    size: int
    content_type: str
    at: float


@dataclass(slots=True)
class HostedFile:
    """A file served under /files-pri/; counters are updated as clients fetch it.

    ``bytes_sent`` counts bytes handed to the transport (so an aborting client leaves it short
    of ``len(data)``); ``completed`` counts downloads that were written to the end.
    """

    name: str
    data: bytes = field(repr=False)
    content_type: str
    require_token: bool
    chunk_delay_s: float = 0.0
    downloads: int = 0
    completed: int = 0
    aborted: int = 0
    unauthorized: int = 0
    bytes_sent: int = 0


@dataclass(frozen=True, slots=True)
class _Action:
    """One scripted response for the next call to a method."""

    kind: str  # fail | rate_limit | http_error | respond | delay
    error: str = ""
    status: int = 200
    retry_after: int | None = None
    body: dict[str, Any] | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class _PendingUpload:
    filename: str
    length: int
    data: bytes | None = None


@dataclass(slots=True)
class _Socket:
    conn: ServerConnection
    ready: bool = False
    frozen: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class _ApiError(Exception):
    """A handler's way of answering {"ok": false, "error": code}."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _ts_to_us(ts: str) -> int | None:
    seconds, _, fraction = ts.partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        return None
    return int(seconds) * 1_000_000 + int((fraction or "0").ljust(6, "0")[:6])


def _ts_key(ts: str) -> tuple[int, str]:
    us = _ts_to_us(ts)
    return (us if us is not None else -1, ts)


def _bearer(headers: dict[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _str(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return str(value)


def _int(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _ApiError("invalid_arguments") from None


def _jsonish(params: dict[str, Any], name: str) -> Any:
    """A JSON-valued field: decoded from a form string, or as sent in a JSON body."""
    value = params.get(name)
    if not isinstance(value, str | bytes):
        return value
    if value in ("", b""):
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise _ApiError("invalid_arguments") from None


def _json_response(
    body: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return web.Response(body=orjson.dumps(body), status=status, headers=all_headers)


def _page(items: list[dict[str, Any]], params: dict[str, Any], default_limit: int) -> dict:
    limit = _int(params, "limit", default_limit)
    if limit <= 0:
        limit = default_limit
    cursor = _str(params, "cursor")
    start = 0
    if cursor is not None:
        if not cursor.startswith("offset:") or not cursor[7:].isdigit():
            raise _ApiError("invalid_cursor")
        start = int(cursor[7:])
    page = items[start : start + limit]
    has_more = start + limit < len(items)
    return {
        "ok": True,
        "messages": page,
        "has_more": has_more,
        "response_metadata": {"next_cursor": f"offset:{start + limit}" if has_more else ""},
    }


class FakeSlack:
    """Slack's Web API and Socket Mode on loopback, recording everything a client does.

    Public state (read it freely in tests): ``calls``, ``acks``, ``ack_times``, ``sent_times``,
    ``ack_payloads``, ``envelopes`` (everything sent with `send_envelope`), ``received``
    (non-ack frames from clients), ``uploads``, ``upload_posts``, ``hosted_files`` (by URL),
    ``file_requests``, ``reactions``, ``total_connections``, ``rejected_handshakes``.
    Settable: ``scopes``, ``hello_enabled``, ``single_use_tickets``.
    """

    def __init__(
        self,
        *,
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_id: str = "T1",
        app_token: str = "xapp-1-test",
        bot_token: str = "xoxb-test",
        scopes: str = DEFAULT_SCOPES,
        ws_ping_interval_s: float | None = None,
    ) -> None:
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.app_token = app_token
        self.bot_token = bot_token
        self.scopes = scopes
        self.hello_enabled = True
        self.single_use_tickets = True
        self._ws_ping_interval_s = ws_ping_interval_s

        self.http_base = ""
        self.api_url = ""
        self.ws_url = ""

        self.calls: list[Call] = []
        self.file_requests: list[Call] = []
        self.uploads: list[Upload] = []
        self.upload_posts: list[UploadPost] = []
        self.hosted_files: dict[str, HostedFile] = {}
        self.reactions: set[tuple[str, str, str]] = set()

        self.acks: list[str] = []
        self.ack_times: dict[str, float] = {}
        self.ack_payloads: dict[str, Any] = {}
        self.sent_times: dict[str, float] = {}
        self.envelopes: list[dict[str, Any]] = []
        self.received: list[Any] = []
        self.total_connections = 0
        self.rejected_handshakes = 0

        self._users: dict[str, dict[str, Any]] = {}
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}
        self._streaming: set[tuple[str, str]] = set()
        self._pending_uploads: dict[str, _PendingUpload] = {}
        self._hosted_by_path: dict[str, HostedFile] = {}
        self._redirects: dict[str, tuple[int, str]] = {}
        self._script: defaultdict[str, deque[_Action]] = defaultdict(deque)
        self._ws_rejects: deque[int] = deque()
        self._tickets_open: set[str] = set()
        self._sockets: list[_Socket] = []
        self._ids = itertools.count(1)
        self._last_ts_us = FIRST_TS_US - TS_STEP_US
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._ws_server: Server | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._connections_open,
            "users.info": self._users_info,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "assistant.threads.setStatus": self._assistant_set_status,
            "assistant.threads.setTitle": self._assistant_ok,
            "assistant.threads.setSuggestedPrompts": self._assistant_set_prompts,
        }
        self.add_user(bot_user_id, real_name="Ark", name="ark", is_bot=True)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind both servers on 127.0.0.1 (ephemeral ports) and fill in the URLs."""
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_get("/{tail:.*}", self._handle_get)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        self._runner = runner
        await web.TCPSite(runner, HOST, 0).start()
        port = runner.addresses[0][1]
        self.http_base = f"http://{HOST}:{port}"
        self.api_url = f"{self.http_base}/api/"

        self._ws_server = await serve(
            self._ws_handler,
            HOST,
            0,
            process_request=self._ws_process_request,
            ping_interval=self._ws_ping_interval_s,
            close_timeout=WS_CLOSE_TIMEOUT_S,
            max_size=None,
        )
        ws_port = self._ws_server.sockets[0].getsockname()[1]
        self.ws_url = f"ws://{HOST}:{ws_port}{WS_PATH}"

    async def stop(self) -> None:
        """Close every socket and both servers; ends scripted delays at once. Idempotent."""
        self._stopping.set()
        if self._ws_server is not None:
            for sock in self._sockets:
                if sock.frozen:
                    sock.conn.transport.abort()
            self._ws_server.close(close_connections=True)
            await self._ws_server.wait_closed()
            self._ws_server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ waiting

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool], *, timeout_s: float = 5.0) -> None:
        """Wait until `predicate()` holds, re-checked on every change. Raises TimeoutError."""
        if not await self._wait_until(predicate, timeout_s):
            raise TimeoutError(f"waited {timeout_s}s for a condition on the fake Slack")

    async def _wait_until(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                while not predicate():
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    async def _pause(self, seconds: float) -> None:
        """Sleep that `stop` cuts short."""
        if seconds <= 0 or self._stopping.is_set():
            return
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            pass

    # ------------------------------------------------------------------ recorded calls

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls to one Web API method, in arrival order."""
        return [c for c in self.calls if c.method == method]

    @property
    def posts(self) -> list[Call]:
        """chat.postMessage and chat.update calls, in arrival order."""
        return [c for c in self.calls if c.method in ("chat.postMessage", "chat.update")]

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        *,
        count: int = 1,
        timeout_s: float = 5.0,
    ) -> list[Call]:
        """Wait until at least `count` calls to `method` match `predicate`; return them all.

        Raises TimeoutError listing the calls seen when the wait expires.
        """

        def matching() -> list[Call]:
            return [c for c in self.calls_to(method) if predicate is None or predicate(c)]

        if await self._wait_until(lambda: len(matching()) >= count, timeout_s):
            return matching()
        seen = ", ".join(c.method for c in self.calls) or "none"
        raise TimeoutError(
            f"waited {timeout_s}s for {count} call(s) to {method}; {len(matching())} matched; "
            f"{len(self.calls_to(method))} to {method} in all; calls seen: {seen}"
        )

    # ------------------------------------------------------------------ scripting

    def fail_next(self, method: str, error: str, *, times: int = 1) -> None:
        """The next `times` calls to `method` answer {"ok": false, "error": error}."""
        self._script[method].extend(_Action("fail", error=error) for _ in range(times))

    def rate_limit_next(self, method: str, *, retry_after: int | None = 1, times: int = 1) -> None:
        """The next `times` calls answer HTTP 429 with Retry-After (omitted when None)."""
        action = _Action("rate_limit", status=429, retry_after=retry_after)
        self._script[method].extend(action for _ in range(times))

    def http_error_next(self, method: str, status: int = 500, *, times: int = 1) -> None:
        """The next `times` calls answer a bare HTTP error with this status."""
        self._script[method].extend(_Action("http_error", status=status) for _ in range(times))

    def respond_next(self, method: str, body: dict[str, Any]) -> None:
        """The next call answers this JSON body (HTTP 200) instead of the normal one."""
        self._script[method].append(_Action("respond", body=body))

    def delay_next(self, method: str, seconds: float) -> None:
        """The next call is held `seconds` before being answered normally."""
        self._script[method].append(_Action("delay", seconds=seconds))

    def reject_ws_next(self, status: int = 503, *, times: int = 1) -> None:
        """The next `times` WebSocket handshakes fail with this HTTP status."""
        self._ws_rejects.extend(status for _ in range(times))

    def _next_action(self, method: str) -> _Action | None:
        queue = self._script.get(method)
        return queue.popleft() if queue else None

    @staticmethod
    def _scripted_response(action: _Action) -> web.Response:
        if action.kind == "fail":
            return _json_response({"ok": False, "error": action.error})
        if action.kind == "respond":
            return _json_response(action.body or {})
        if action.kind == "rate_limit":
            headers = {} if action.retry_after is None else {"Retry-After": str(action.retry_after)}
            return _json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers=headers
            )
        return web.Response(status=action.status, text=f"fake slack: HTTP {action.status}\n")

    # ------------------------------------------------------------------ data setup

    def add_user(
        self,
        user_id: str,
        *,
        real_name: str = "",
        tz: str = "America/Los_Angeles",
        title: str = "",
        name: str | None = None,
        display_name: str | None = None,
        is_bot: bool = False,
    ) -> None:
        """Register a user for users.info."""
        self._users[user_id] = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name or user_id.lower(),
            "real_name": real_name,
            "deleted": False,
            "is_bot": is_bot,
            "tz": tz,
            "profile": {
                "title": title,
                "real_name": real_name,
                "display_name": display_name if display_name is not None else real_name,
            },
        }

    def set_thread(self, channel: str, thread_ts: str, messages: list[dict[str, Any]]) -> None:
        """Store a thread, given oldest first with the parent first.

        A message without ``ts`` gets one (the parent gets `thread_ts`); every message gets
        ``thread_ts`` and ``type``.
        """
        self._observe_ts(thread_ts)
        for i, given in enumerate(messages):
            message = {"type": "message", **given}
            if "ts" not in message:
                message["ts"] = thread_ts if i == 0 else self.fresh_ts()
            message["thread_ts"] = thread_ts
            self._store(channel, message)

    def set_history(self, channel: str, messages: list[dict[str, Any]]) -> None:
        """Store top-level channel messages, given oldest first (a missing ``ts`` is filled)."""
        for given in messages:
            message = {"type": "message", **given}
            message.setdefault("ts", self.fresh_ts())
            self._store(channel, message)

    def messages_in(self, channel: str) -> list[dict[str, Any]]:
        """Every stored message of a channel, oldest first (threads included)."""
        return sorted(self._messages.get(channel, {}).values(), key=lambda m: _ts_key(m["ts"]))

    def reactions_on(self, channel: str, ts: str) -> set[str]:
        """Reaction names the bot has on one message."""
        return {name for c, t, name in self.reactions if c == channel and t == ts}

    def fresh_ts(self) -> str:
        """A unique message ts, later than every ts generated or stored so far."""
        self._last_ts_us += TS_STEP_US
        us = self._last_ts_us
        return f"{us // 1_000_000}.{us % 1_000_000:06d}"

    def _observe_ts(self, ts: str) -> None:
        us = _ts_to_us(ts)
        if us is not None and us > self._last_ts_us:
            self._last_ts_us = us

    def _store(self, channel: str, message: dict[str, Any]) -> None:
        self._observe_ts(message["ts"])
        self._messages.setdefault(channel, {})[message["ts"]] = message

    def _fresh_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08d}FAKE"

    # ------------------------------------------------------------------ file hosting

    def host_file(
        self,
        name: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        require_token: bool = True,
        chunk_delay_s: float = 0.0,
    ) -> str:
        """Serve `data` at a fresh /files-pri/ URL and return it (see `hosted_files[url]`).

        Without ``Authorization: Bearer <bot_token>`` (when `require_token`) the URL answers an
        HTML sign-in page with HTTP 200, as Slack does. `chunk_delay_s` slows each 64 KiB chunk.
        """
        hosted = HostedFile(name, data, content_type, require_token, chunk_delay_s)
        return self._host(self._fresh_id("F"), hosted)[0]

    def host_redirect(self, path: str, location: str, *, status: int = 302) -> str:
        """Answer GET `path` with a redirect to `location`; returns the full URL."""
        if not path.startswith("/"):
            path = "/" + path
        self._redirects[path] = (status, location)
        return f"{self.http_base}{quote(path)}"

    def file_object(self, name: str, data: bytes, *, mimetype: str | None = None) -> dict:
        """Host `data` and return a Slack-shaped file object for an event's ``files``."""
        file_id = self._fresh_id("F")
        content_type = mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        hosted = HostedFile(name, data, content_type, require_token=True)
        url_private, url_download = self._host(file_id, hosted)
        return self._file_dict(file_id, name, content_type, len(data), url_private, url_download)

    def _file_dict(
        self, file_id: str, name: str, mimetype: str, size: int, url: str, download_url: str
    ) -> dict[str, Any]:
        extension = name.rpartition(".")[2].lower() if "." in name else ""
        filetype = _FILETYPE_BY_EXTENSION.get(extension, extension or "binary")
        return {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": "U1",
            "mode": "hosted",
            "is_external": False,
            "size": size,
            "url_private": url,
            "url_private_download": download_url,
            "permalink": f"{self.http_base}/files/U1/{file_id}/{quote(name)}",
        }

    def _host(self, file_id: str, hosted: HostedFile) -> tuple[str, str]:
        base = f"/files-pri/{self.team_id}-{file_id}"
        paths = (f"{base}/{hosted.name}", f"{base}/download/{hosted.name}")
        urls = tuple(f"{self.http_base}{quote(p)}" for p in paths)
        for path, url in zip(paths, urls, strict=True):
            self._hosted_by_path[path] = hosted
            self.hosted_files[url] = hosted
        return urls[0], urls[1]

    async def _handle_get(self, request: web.Request) -> web.StreamResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.file_requests.append(
            Call(request.path, dict(request.query), headers, time.monotonic())
        )
        self._bump()
        action = self._next_action("download")
        if action is not None:
            if action.kind != "delay":
                return self._scripted_response(action)
            await self._pause(action.seconds)
        redirect = self._redirects.get(request.path)
        if redirect is not None:
            return web.Response(status=redirect[0], headers={"Location": redirect[1]})
        hosted = self._hosted_by_path.get(request.path)
        if hosted is None:
            return web.Response(status=404, text="not found\n")
        if hosted.require_token and _bearer(headers) != self.bot_token:
            hosted.unauthorized += 1
            return web.Response(
                body=SIGN_IN_PAGE_HTML, headers={"Content-Type": "text/html; charset=utf-8"}
            )
        hosted.downloads += 1
        response = web.StreamResponse(headers={"Content-Type": hosted.content_type})
        response.content_length = len(hosted.data)
        try:
            await response.prepare(request)
            for offset in range(0, len(hosted.data), DOWNLOAD_CHUNK_BYTES):
                chunk = hosted.data[offset : offset + DOWNLOAD_CHUNK_BYTES]
                await response.write(chunk)
                hosted.bytes_sent += len(chunk)
                await self._pause(hosted.chunk_delay_s)
            await response.write_eof()
        except ConnectionError:
            hosted.aborted += 1
            return response
        hosted.completed += 1
        return response

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        action = self._next_action("upload")
        if action is not None:
            if action.kind != "delay":
                return self._scripted_response(action)
            await self._pause(action.seconds)
        pending = self._pending_uploads.get(file_id)
        if pending is None:
            return web.Response(status=404, text="unknown upload\n")
        if request.content_type == "multipart/form-data":
            data = b""
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                data = await part.read()  # type: ignore[union-attr]
                if getattr(part, "filename", None):
                    break
        else:
            data = await request.read()
        pending.data = data
        self.upload_posts.append(
            UploadPost(file_id, len(data), request.content_type, time.monotonic())
        )
        self._bump()
        return web.Response(text=f"OK - {len(data)}")

    # ------------------------------------------------------------------ Web API

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], str | None]:
        params: dict[str, Any] = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params, None
        if request.content_type == "application/json":
            raw = await request.read()
            try:
                body = orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                return params, "invalid_json"
            if not isinstance(body, dict):
                return params, "invalid_json"
            params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                params[key] = value if isinstance(value, str) else value.file.read()
        return params, None

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, parse_error = await self._read_params(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.calls.append(Call(method, params, headers, time.monotonic()))
        self._bump()
        action = self._next_action(method)
        if action is not None:
            if action.kind != "delay":
                return self._scripted_response(action)
            await self._pause(action.seconds)
        handler = self._handlers.get(method)
        if handler is None:
            return _json_response({"ok": False, "error": "unknown_method", "req_method": method})
        error = self._auth_error(method, _bearer(headers))
        if error is None and parse_error is not None:
            error = parse_error
        if error is not None:
            return _json_response({"ok": False, "error": error})
        extra = {} if method == "apps.connections.open" else {"x-oauth-scopes": self.scopes}
        needed = self._missing_scope(method, params)
        if needed is not None:
            body = {"ok": False, "error": "missing_scope", "needed": needed}
            return _json_response({**body, "provided": self.scopes}, headers=extra)
        try:
            body = handler(params)
        except _ApiError as exc:
            body = {"ok": False, "error": exc.code}
        self._bump()
        return _json_response(body, headers=extra)

    def _auth_error(self, method: str, token: str | None) -> str | None:
        if token is None:
            return "not_authed"
        wanted, other = self.bot_token, self.app_token
        if method == "apps.connections.open":
            wanted, other = other, wanted
        if token == wanted:
            return None
        return "not_allowed_token_type" if token == other else "invalid_auth"

    def _missing_scope(self, method: str, params: dict[str, Any]) -> str | None:
        granted = {s.strip() for s in self.scopes.split(",") if s.strip()}
        needed = _METHOD_SCOPES.get(method, ())
        if method.startswith("conversations."):
            channel = _str(params, "channel") or ""
            scope = _HISTORY_SCOPE_BY_CHANNEL_PREFIX.get(channel[:1])
            needed = (scope,) if scope else ()
        if not needed or granted.intersection(needed):
            return None
        return needed[0]

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake-team.slack.com/",
            "team": "Fake Team",
            "user": self._users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = str(next(self._ids))
        self._tickets_open.add(ticket)
        return {"ok": True, "url": f"{self.ws_url}?ticket={ticket}"}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(_str(params, "user") or "")
        if user is None:
            raise _ApiError("user_not_found")
        return {"ok": True, "user": orjson.loads(orjson.dumps(user))}

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = _str(params, "channel"), _str(params, "ts")
        if channel is None:
            raise _ApiError("channel_not_found")
        if ts is None:
            raise _ApiError("invalid_arguments")
        stored = self._messages.get(channel, {})
        parent = stored.get(ts)
        if parent is not None and parent.get("thread_ts", ts) != ts:
            ts = parent["thread_ts"]  # Slack answers a reply's ts with its whole thread
            parent = stored.get(ts)
        replies = [
            m for m in self.messages_in(channel) if m.get("thread_ts") == ts and m["ts"] != ts
        ]
        if parent is None and not replies:
            raise _ApiError("thread_not_found")
        messages = [dict(m) for m in replies]
        if parent is not None:
            head = dict(parent)
            if replies:
                head.update(thread_ts=ts, reply_count=len(replies), latest_reply=replies[-1]["ts"])
            messages.insert(0, head)
        return _page(messages, params, DEFAULT_REPLIES_LIMIT)

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _str(params, "channel")
        if channel is None:
            raise _ApiError("channel_not_found")
        top = [
            dict(m)
            for m in self.messages_in(channel)
            if m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast"
        ]
        top.reverse()
        return _page(top, params, DEFAULT_HISTORY_LIMIT)

    def _bot_message(self, text: str, ts: str) -> dict[str, Any]:
        return {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": APP_ID,
            "team": self.team_id,
            "text": text,
            "ts": ts,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = _str(params, "channel")
        if channel is None:
            raise _ApiError("channel_not_found")
        blocks = _jsonish(params, "blocks")
        attachments = _jsonish(params, "attachments")
        text = _str(params, "text") or _str(params, "markdown_text")
        if text is None and not blocks and not attachments:
            raise _ApiError("no_text")
        if blocks is not None and (
            not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS_PER_MESSAGE
        ):
            raise _ApiError("invalid_blocks")
        ts = self.fresh_ts()
        message = self._bot_message(text or "", ts)
        if blocks:
            message["blocks"] = blocks
        if attachments:
            message["attachments"] = attachments
        thread_ts = _str(params, "thread_ts")
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
        self._store(channel, message)
        return {"ok": True, "channel": channel, "ts": ts, "message": dict(message)}

    def _own_message(self, channel: str | None, ts: str | None) -> dict[str, Any]:
        message = self._messages.get(channel or "", {}).get(ts or "")
        if message is None:
            raise _ApiError("message_not_found")
        if message.get("bot_id") != self.bot_id:
            raise _ApiError("cant_update_message")
        return message

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = _str(params, "channel"), _str(params, "ts")
        message = self._own_message(channel, ts)
        blocks = _jsonish(params, "blocks")
        if isinstance(blocks, list) and len(blocks) > MAX_BLOCKS_PER_MESSAGE:
            raise _ApiError("invalid_blocks")
        text = _str(params, "text") or _str(params, "markdown_text")
        if text is not None:
            message["text"] = text
        if blocks is not None:
            message["blocks"] = blocks
        message["edited"] = {"user": self.bot_user_id, "ts": self.fresh_ts()}
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "text": message["text"],
            "message": dict(message),
        }

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = _str(params, "channel"), _str(params, "ts")
        self._own_message(channel, ts)
        del self._messages[channel or ""][ts or ""]
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_start_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, thread_ts = _str(params, "channel"), _str(params, "thread_ts")
        if channel is None or thread_ts is None:
            raise _ApiError("invalid_arguments")
        ts = self.fresh_ts()
        message = self._bot_message(_str(params, "markdown_text") or "", ts)
        message["thread_ts"] = thread_ts
        self._store(channel, message)
        self._streaming.add((channel, ts))
        return {"ok": True, "channel": channel, "ts": ts}

    def _streaming_message(self, params: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        channel, ts = _str(params, "channel") or "", _str(params, "ts") or ""
        message = self._own_message(channel, ts)
        if (channel, ts) not in self._streaming:
            raise _ApiError("message_not_in_streaming_state")
        message["text"] += _str(params, "markdown_text") or ""
        return channel, ts, message

    def _chat_append_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts, _ = self._streaming_message(params)
        return {"ok": True, "channel": channel, "ts": ts}

    def _chat_stop_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts, message = self._streaming_message(params)
        blocks = _jsonish(params, "blocks")
        if blocks:
            message["blocks"] = blocks
        self._streaming.discard((channel, ts))
        return {"ok": True, "channel": channel, "ts": ts, "message": dict(message)}

    def _reaction_key(self, params: dict[str, Any]) -> tuple[str, str, str]:
        channel, ts, name = _str(params, "channel"), _str(params, "timestamp"), _str(params, "name")
        if channel is None or ts is None:
            raise _ApiError("no_item_specified")
        if name is None:
            raise _ApiError("invalid_name")
        return channel, ts, name.strip(":")

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        key = self._reaction_key(params)
        if key in self.reactions:
            raise _ApiError("already_reacted")
        self.reactions.add(key)
        return {"ok": True}

    def _reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        key = self._reaction_key(params)
        if key not in self.reactions:
            raise _ApiError("no_reaction")
        self.reactions.discard(key)
        return {"ok": True}

    def _files_get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = _str(params, "filename")
        length = _int(params, "length", 0)
        if filename is None or length <= 0:
            raise _ApiError("invalid_arguments")
        file_id = self._fresh_id("F")
        self._pending_uploads[file_id] = _PendingUpload(filename, length)
        return {"ok": True, "upload_url": f"{self.http_base}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        files = _jsonish(params, "files")
        if not isinstance(files, list) or not files:
            raise _ApiError("invalid_arguments")
        if not all(isinstance(f, dict) and isinstance(f.get("id"), str) for f in files):
            raise _ApiError("invalid_arguments")
        pending = [self._pending_uploads.get(f["id"]) for f in files]
        if any(p is None or p.data is None for p in pending):
            raise _ApiError("file_not_found")
        channel = _str(params, "channel_id") or _str(params, "channels")
        thread_ts = _str(params, "thread_ts")
        shared: list[dict[str, Any]] = []
        for given, upload in zip(files, pending, strict=True):
            assert upload is not None and upload.data is not None
            file_id = given["id"]
            del self._pending_uploads[file_id]
            title = str(given.get("title") or upload.filename)
            self.uploads.append(
                Upload(file_id, upload.filename, upload.data, channel, thread_ts, title)
            )
            content_type = mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"
            hosted = HostedFile(upload.filename, upload.data, content_type, require_token=True)
            url, download_url = self._host(file_id, hosted)
            obj = self._file_dict(
                file_id, upload.filename, content_type, len(upload.data), url, download_url
            )
            shared.append({**obj, "title": title, "user": self.bot_user_id})
        if channel is not None:
            message = self._bot_message(_str(params, "initial_comment") or "", self.fresh_ts())
            message.update(files=shared, upload=True)
            if thread_ts is not None:
                message["thread_ts"] = thread_ts
            self._store(channel, message)
        return {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in shared]}

    def _assistant_ok(self, params: dict[str, Any]) -> dict[str, Any]:
        if _str(params, "channel_id") is None or _str(params, "thread_ts") is None:
            raise _ApiError("invalid_arguments")
        return {"ok": True}

    def _assistant_set_status(self, params: dict[str, Any]) -> dict[str, Any]:
        if "status" not in params:
            raise _ApiError("invalid_arguments")
        loading = _jsonish(params, "loading_messages")
        if isinstance(loading, list) and len(loading) > MAX_LOADING_MESSAGES:
            raise _ApiError("invalid_arguments")
        return self._assistant_ok(params)

    def _assistant_set_prompts(self, params: dict[str, Any]) -> dict[str, Any]:
        prompts = _jsonish(params, "prompts")
        if not isinstance(prompts, list) or len(prompts) > MAX_SUGGESTED_PROMPTS:
            raise _ApiError("invalid_arguments")
        return self._assistant_ok(params)

    # ------------------------------------------------------------------ Socket Mode

    @property
    def connections(self) -> int:
        """Socket Mode connections open right now."""
        return len(self._sockets)

    async def _ws_process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if self._ws_rejects:
            self.rejected_handshakes += 1
            return connection.respond(self._ws_rejects.popleft(), "rejected by fake slack\n")
        url = urlsplit(request.path)
        if url.path != WS_PATH:
            self.rejected_handshakes += 1
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        tickets = parse_qs(url.query).get("ticket")
        if tickets and self.single_use_tickets:
            if tickets[0] not in self._tickets_open:
                self.rejected_handshakes += 1
                return connection.respond(HTTPStatus.UNAUTHORIZED, "invalid or used ticket\n")
            self._tickets_open.discard(tickets[0])
        return None

    async def _ws_handler(self, conn: ServerConnection) -> None:
        sock = _Socket(conn)
        self._sockets.append(sock)
        self.total_connections += 1
        self._bump()
        try:
            if self.hello_enabled:
                await conn.send(orjson.dumps(self._hello()).decode())
            sock.ready = True
            self._bump()
            async for frame in conn:
                self._on_frame(frame)
        except ConnectionClosed:
            pass
        finally:
            self._sockets.remove(sock)
            sock.closed.set()
            self._bump()

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": len(self._sockets),
            "debug_info": {
                "host": "fake",
                "started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                "build_number": 1,
                "approximate_connection_time": APPROXIMATE_CONNECTION_TIME_S,
            },
            "connection_info": {"app_id": APP_ID},
        }

    def _on_frame(self, frame: str | bytes) -> None:
        try:
            decoded = orjson.loads(frame)
        except orjson.JSONDecodeError:
            self.received.append(frame)
            self._bump()
            return
        envelope_id = decoded.get("envelope_id") if isinstance(decoded, dict) else None
        if not isinstance(envelope_id, str):
            self.received.append(decoded)
            self._bump()
            return
        self.acks.append(envelope_id)
        self.ack_times.setdefault(envelope_id, time.monotonic())
        if "payload" in decoded:
            self.ack_payloads[envelope_id] = decoded["payload"]
        self._bump()

    def _socket(self, connection: int) -> _Socket:
        try:
            return self._sockets[connection]
        except IndexError:
            raise RuntimeError(
                f"no Socket Mode connection {connection}: {len(self._sockets)} open"
            ) from None

    async def wait_for_connections(self, n: int = 1, *, timeout_s: float = 5.0) -> None:
        """Wait until at least `n` sockets are open and were sent their hello.

        Raises TimeoutError when the wait expires.
        """

        def ready() -> int:
            return sum(1 for s in self._sockets if s.ready)

        if not await self._wait_until(lambda: ready() >= n, timeout_s):
            raise TimeoutError(
                f"waited {timeout_s}s for {n} Socket Mode connection(s); {ready()} ready, "
                f"{self.total_connections} ever opened, {self.rejected_handshakes} rejected"
            )

    async def wait_for_disconnect(self, connections: int = 0, *, timeout_s: float = 5.0) -> None:
        """Wait until at most `connections` sockets are open. Raises TimeoutError."""
        if not await self._wait_until(lambda: len(self._sockets) <= connections, timeout_s):
            raise TimeoutError(f"waited {timeout_s}s; {len(self._sockets)} sockets still open")

    async def send_envelope(
        self,
        envelope_type: str,
        payload: dict[str, Any],
        *,
        envelope_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str | None = None,
        accepts_response_payload: bool = False,
        connection: int = -1,
    ) -> str:
        """Send one envelope (events_api, interactive, slash_commands); return its id."""
        sock = self._socket(connection)
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "accepts_response_payload": accepts_response_payload,
            "payload": payload,
        }
        if envelope_type == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason or ""
        self.envelopes.append(envelope)
        self.sent_times[envelope_id] = time.monotonic()
        await sock.conn.send(orjson.dumps(envelope).decode())
        return envelope_id

    async def send_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_attempt: int = 0,
        retry_reason: str | None = None,
        envelope_id: str | None = None,
        connection: int = -1,
    ) -> str:
        """Deliver an Events API event in an events_api envelope; return the envelope id.

        A message or app_mention with channel and ts is also put in the conversation store.
        """
        self._remember_event(event)
        payload = {
            "token": "x",
            "team_id": self.team_id,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or self._fresh_id("Ev"),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.team_id,
                    "user_id": self.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        return await self.send_envelope(
            "events_api",
            payload,
            envelope_id=envelope_id,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
            connection=connection,
        )

    def _remember_event(self, event: dict[str, Any]) -> None:
        channel, ts = event.get("channel"), event.get("ts")
        if event.get("type") not in ("message", "app_mention"):
            return
        if not isinstance(channel, str) or not isinstance(ts, str):
            return
        if event.get("subtype", "") not in _STORED_SUBTYPES:
            return
        dropped = ("channel", "channel_type", "event_ts")
        message = {k: v for k, v in event.items() if k not in dropped}
        message["type"] = "message"
        self._store(channel, message)

    async def send_raw(self, text: str | bytes, *, connection: int = -1) -> None:
        """Send one frame as is (text for str, binary for bytes)."""
        await self._socket(connection).conn.send(text)

    async def send_disconnect(self, reason: str, *, connection: int = -1) -> None:
        """Send Slack's disconnect message (warning, refresh_requested, link_disabled, ...)."""
        message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "fake"}}
        await self._socket(connection).conn.send(orjson.dumps(message).decode())

    async def close_connection(
        self, connection: int = -1, *, code: int = 1000, reason: str = ""
    ) -> None:
        """Close a socket cleanly with a close frame; returns once it is gone."""
        sock = self._socket(connection)
        await sock.conn.close(code, reason)
        await self._settle(sock)

    async def drop_connection(self, connection: int = -1) -> None:
        """Abort a socket's TCP connection, no close frame; returns once it is gone."""
        sock = self._socket(connection)
        sock.conn.transport.abort()
        await self._settle(sock)

    def freeze_connection(self, connection: int = -1) -> None:
        """Stop reading a socket: no pongs, no acks seen (a half-open connection)."""
        sock = self._socket(connection)
        sock.frozen = True
        sock.conn.transport.pause_reading()

    async def _settle(self, sock: _Socket) -> None:
        async with asyncio.timeout(SOCKET_SETTLE_TIMEOUT_S):
            await sock.closed.wait()

    async def wait_for_ack(self, envelope_id: str, *, timeout_s: float = 5.0) -> float:
        """Wait for the ack of an envelope; return the latency from send to ack in seconds.

        Raises TimeoutError (listing the acks seen) when the wait expires.
        """
        if not await self._wait_until(lambda: envelope_id in self.ack_times, timeout_s):
            raise TimeoutError(
                f"waited {timeout_s}s for an ack of {envelope_id}; acks seen: {self.acks}"
            )
        acked = self.ack_times[envelope_id]
        return acked - self.sent_times.get(envelope_id, acked)

    # ------------------------------------------------------------------ event builders

    def _message_event(
        self,
        event_type: str,
        text: str,
        user: str,
        channel: str,
        ts: str | None,
        thread_ts: str | None,
        files: list[dict[str, Any]] | None,
    ) -> dict[str, Any]:
        ts = ts or self.fresh_ts()
        event: dict[str, Any] = {
            "type": event_type,
            "user": user,
            "text": text,
            "ts": ts,
            "team": self.team_id,
            "channel": channel,
            "event_ts": ts,
            "client_msg_id": str(uuid.uuid4()),
        }
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        if files:
            event["files"] = files
            event["upload"] = False
        return event

    def dm_event(
        self,
        text: str,
        *,
        user: str = "U1",
        channel: str = "D1",
        ts: str | None = None,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
        subtype: str | None = None,
    ) -> dict[str, Any]:
        """A message.im event; with files and no subtype it gets subtype file_share."""
        event = self._message_event("message", text, user, channel, ts, thread_ts, files)
        event["channel_type"] = "im"
        if subtype is None and files:
            subtype = "file_share"
        if subtype is not None:
            event["subtype"] = subtype
        return event

    def mention_event(
        self,
        text: str,
        *,
        user: str = "U1",
        channel: str = "C1",
        ts: str | None = None,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """An app_mention event whose text starts with the bot's mention."""
        mention = f"<@{self.bot_user_id}> {text}"
        return self._message_event("app_mention", mention, user, channel, ts, thread_ts, files)
