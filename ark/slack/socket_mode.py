"""Slack Socket Mode: the connection lifecycle and nothing else.

`SocketModeClient` opens a WebSocket to the URL that `apps.connections.open` hands out, acks
every envelope before anything else happens to it, hands the envelope to a synchronous
callback, keeps the link alive (client pings, an idle watchdog, a hello deadline), replaces it
without a gap when Slack asks (`disconnect` with `refresh_requested` / `warning`), and
reconnects with capped, fully jittered exponential backoff when it drops.

    client = SocketModeClient(open_url=web.open_socket_url, on_envelope=gateway.submit)
    await client.run()      # until client.stop(); raises SocketModeFatal when retrying is futile

What it does not do: parse events, de-duplicate retries, or wait for handlers. `on_envelope`
is called synchronously from the receive loop and must return at once (spawn a task).

Errors: `run()` raises `ark.errors.SocketModeFatal` for a bad or revoked app token (from
`open_url`) and for `disconnect` reason `link_disabled`. Every other failure is retried.
"""

from __future__ import annotations

import asyncio
import enum
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ark import __version__
from ark.errors import SlackApiError, SocketModeFatal
from ark.log import get_logger

log = get_logger("ark.slack.socket_mode")

# Client pings every 10 s (python-slack-sdk pings every 5 s, bolt-js every 5 s), so a dead link
# is noticed within PING_INTERVAL_S + PONG_TIMEOUT_S even when Slack sends nothing.
PING_INTERVAL_S = 10.0
# bolt-js's 5 s pong timeout caused constant false disconnects while Slack recycles backends
# (slackapi/bolt-js#2496); 20 s is what its users moved to.
PONG_TIMEOUT_S = 20.0
# No frame of any kind (data, ping, pong) for this long means a half-open TCP link. Slack pings
# clients at least every 30 s (bolt-js's serverPingTimeout) and our pings draw a pong every
# PING_INTERVAL_S, so a live link is never this quiet.
IDLE_TIMEOUT_S = 60.0
# Slack sends `hello` right after the upgrade; a socket without one is useless.
HELLO_TIMEOUT_S = 10.0
# TCP + TLS + HTTP upgrade.
OPEN_TIMEOUT_S = 10.0
# Waiting for the peer's close frame before dropping the TCP connection.
CLOSE_TIMEOUT_S = 5.0
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0
# Slack envelopes carry whole events (blocks, files, long texts): allow big frames.
MAX_FRAME_BYTES = 8 * 1024 * 1024
# How much of a malformed frame a debug line may show.
MALFORMED_EXCERPT_CHARS = 80

ENVELOPE_TYPES = frozenset({"events_api", "interactive", "slash_commands"})
# apps.connections.open errors that no retry can fix.
FATAL_OPEN_CODES = frozenset(
    {"invalid_auth", "not_allowed_token_type", "not_authed", "account_inactive", "token_revoked"}
)
DISCONNECT_LINK_DISABLED = "link_disabled"
DISCONNECT_TOO_MANY = "too_many_websockets"
_KEEPALIVE_CLOSE_REASON = "keepalive ping timeout"  # what websockets sends on a missing pong


@dataclass(frozen=True, slots=True)
class Envelope:
    """One Socket Mode envelope, already acked: `type` is one of ENVELOPE_TYPES."""

    type: str
    envelope_id: str
    payload: dict[str, Any]
    retry_attempt: int = 0
    retry_reason: str | None = None
    accepts_response_payload: bool = False


class ConnectionState(enum.Enum):
    """Where the client stands, reported through `on_state`."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


def backoff_delay_s(attempt: int, *, base_s: float, max_s: float, rng: random.Random) -> float:
    """Delay before reconnect attempt `attempt` (1 = first retry): full jitter,
    uniform(0, min(max_s, base_s * 2 ** (attempt - 1))). Attempt 0 waits nothing."""
    if attempt <= 0:
        return 0.0
    ceiling = min(max_s, base_s * 2.0 ** min(attempt - 1, 64))
    return rng.uniform(0.0, ceiling)


class _Retry(Exception):
    """A connection attempt failed in a way worth retrying; `reason` is short and loggable."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class _TrackedConnection(ClientConnection):
    """A websockets client connection that notes when the last frame of any kind (data, ping,
    pong, close) arrived, so pongs count as signs of life."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_frame_at = time.monotonic()

    def process_event(self, event: Any) -> None:
        self.last_frame_at = time.monotonic()
        super().process_event(event)


@dataclass(frozen=True, slots=True)
class _Signal:
    """What a reader tells the supervisor about its link."""

    kind: Literal["hello", "disconnect", "ended"]
    reason: str = ""
    num_connections: int | None = None


@dataclass(eq=False, slots=True)
class _Link:
    """One WebSocket connection and its reader."""

    serial: int
    host: str
    ws: _TrackedConnection
    attempt_at_open: int
    signals: asyncio.Queue[_Signal] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None
    ready: bool = False  # hello received


class SocketModeClient:
    """Keeps one Socket Mode connection (two, briefly, during a refresh) until `stop()`.

    `run()` raises SocketModeFatal when the app token is rejected by `open_url` or Slack
    disables Socket Mode (`link_disabled`); every other failure is logged and retried.
    A client runs once: after `stop()` or a fatal error, `run()` returns at once.
    """

    def __init__(
        self,
        *,
        open_url: Callable[[], Awaitable[str]],
        on_envelope: Callable[[Envelope], None],
        on_state: Callable[[ConnectionState, dict[str, Any]], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        ping_interval_s: float = PING_INTERVAL_S,
        pong_timeout_s: float = PONG_TIMEOUT_S,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        hello_timeout_s: float = HELLO_TIMEOUT_S,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        close_timeout_s: float = CLOSE_TIMEOUT_S,
        rng: random.Random | None = None,
    ) -> None:
        self._open_url = open_url
        self._on_envelope = on_envelope
        self._on_state = on_state
        self._ssl_context = ssl_context
        self._ping_interval_s = ping_interval_s
        self._pong_timeout_s = pong_timeout_s
        self._idle_timeout_s = idle_timeout_s
        self._hello_timeout_s = hello_timeout_s
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._close_timeout_s = close_timeout_s
        self._rng = rng or random.Random()

        self._state = ConnectionState.STOPPED
        self._stopping = False
        self._running = False
        self._supervisor: asyncio.Task[None] | None = None
        self._fatal: SocketModeFatal | None = None
        self._links: set[_Link] = set()
        self._serial = 0
        self._attempt = 0  # consecutive failed attempts since the last hello
        self._connections_started = 0
        self._reconnects = 0
        self._last_activity = 0.0

    # -- public surface -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while some link has said hello and is still open."""
        return any(link.ready and link.ws.state is State.OPEN for link in self._links)

    @property
    def state(self) -> ConnectionState:
        """The state last reported through `on_state` (STOPPED before `run()`)."""
        return self._state

    @property
    def last_activity(self) -> float:
        """time.monotonic() of the last frame (of any kind, pongs included) received;
        0.0 until the first frame arrives. The heartbeat and the systemd watchdog read it."""
        latest = self._last_activity
        for link in self._links:
            latest = max(latest, link.ws.last_frame_at)
        return latest

    @property
    def reconnects(self) -> int:
        """Connections attempted after the first one: after drops, failures and refreshes."""
        return self._reconnects

    async def run(self) -> None:
        """Connect and keep a connection until `stop()`. Returns normally after `stop()`
        (at once if `stop()` came first); raises SocketModeFatal when retrying is futile."""
        if self._stopping:
            return
        if self._running:
            raise RuntimeError("SocketModeClient.run() is already running")
        self._running = True
        try:
            async with asyncio.TaskGroup() as tg:
                self._supervisor = tg.create_task(self._supervise(tg))
        finally:
            self._running = False
            self._set_state(
                ConnectionState.STOPPED,
                {"reason": self._fatal.reason if self._fatal else "stopped"},
            )
        if self._fatal is not None:
            raise self._fatal

    async def stop(self) -> None:
        """Stop reading envelopes (none is acked or delivered once this is called), close
        every socket with a normal close and make `run()` return. Idempotent."""
        self._stopping = True
        supervisor = self._supervisor
        if supervisor is None or supervisor.done():
            return
        supervisor.cancel()
        await asyncio.wait({supervisor})

    # -- supervisor -----------------------------------------------------------------------

    async def _supervise(self, tg: asyncio.TaskGroup) -> None:
        """The connection loop. Owns every link; closes them all on the way out."""
        self._set_state(ConnectionState.CONNECTING, {})
        draining: _Link | None = None  # the old link of a refresh, still delivering
        reason = "startup"
        try:
            while True:
                link = await self._connect_with_retry(tg, reason)
                if draining is not None:
                    await self._close_link(draining)
                    draining = None
                signal = await self._watch(link)
                reason = signal.reason
                if signal.kind == "ended":
                    await self._close_link(link)
                    self._attempt += 1
                    continue
                # a disconnect request
                if reason == DISCONNECT_LINK_DISABLED:
                    log.error(
                        "socket_mode_disabled",
                        reason=reason,
                        hint="Socket Mode was turned off for this app in its Slack settings",
                    )
                    self._fatal = SocketModeFatal(reason)
                    return
                if reason == DISCONNECT_TOO_MANY:
                    # close first so we do not hold a slot, then back off; the hello of the
                    # crowded link must not wipe out the growth of the backoff
                    await self._close_link(link)
                    self._attempt = link.attempt_at_open + 1
                    continue
                # refresh_requested, warning or anything else: replace first, then close
                draining = link
        except SocketModeFatal as exc:
            self._fatal = exc
        finally:
            self._stopping = True
            await self._close_all()

    async def _connect_with_retry(self, tg: asyncio.TaskGroup, reason: str) -> _Link:
        """Back off as the attempt counter says, then open links until one says hello."""
        while True:
            if self._connections_started > 0:
                delay_s = backoff_delay_s(
                    self._attempt,
                    base_s=self._backoff_base_s,
                    max_s=self._backoff_max_s,
                    rng=self._rng,
                )
                self._reconnects += 1
                log.info(
                    "reconnecting", reason=reason, attempt=self._attempt, delay_s=round(delay_s, 3)
                )
                if not self.connected:
                    self._set_state(
                        ConnectionState.RECONNECTING,
                        {"reason": reason, "attempt": self._attempt, "delay_s": delay_s},
                    )
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
            self._connections_started += 1
            try:
                return await self._open_link(tg)
            except _Retry as exc:
                reason = exc.reason
                self._attempt += 1

    async def _open_link(self, tg: asyncio.TaskGroup) -> _Link:
        """One attempt: fetch a URL, connect, wait for hello. Raises _Retry or SocketModeFatal."""
        try:
            url = await self._open_url()
        except SlackApiError as exc:
            if exc.code in FATAL_OPEN_CODES:
                log.error("socket_mode_token_rejected", code=exc.code)
                raise SocketModeFatal(exc.code) from exc
            log.warning("open_url_failed", code=exc.code)
            raise _Retry(f"open_url:{exc.code}") from exc
        except SocketModeFatal:
            raise
        except Exception as exc:  # the caller's HTTP stack: anything it raises is retried
            log.warning("open_url_failed", exc_type=type(exc).__name__)
            raise _Retry(f"open_url:{type(exc).__name__}") from exc

        parts = urlsplit(url)
        host = parts.hostname or "?"
        log.info("connecting", host=host, attempt=self._attempt)
        kwargs: dict[str, Any] = {}
        if parts.scheme == "wss" and self._ssl_context is not None:
            kwargs["ssl"] = self._ssl_context
        try:
            ws = await connect(
                url,
                ping_interval=self._ping_interval_s,
                ping_timeout=self._pong_timeout_s,
                close_timeout=self._close_timeout_s,
                open_timeout=OPEN_TIMEOUT_S,
                max_size=MAX_FRAME_BYTES,
                compression=None,
                user_agent_header=f"ark/{__version__}",
                create_connection=_TrackedConnection,
                **kwargs,
            )
        except Exception as exc:  # OSError, TimeoutError, InvalidHandshake, InvalidURI...
            log.warning("connect_failed", host=host, exc_type=type(exc).__name__)
            raise _Retry(f"connect:{type(exc).__name__}") from exc

        assert isinstance(ws, _TrackedConnection)
        self._serial += 1
        link = _Link(serial=self._serial, host=host, ws=ws, attempt_at_open=self._attempt)
        self._links.add(link)
        link.reader = tg.create_task(self._read(link))
        try:
            async with asyncio.timeout(self._hello_timeout_s):
                signal = await link.signals.get()
        except TimeoutError:
            log.warning("hello_timeout", host=host, timeout_s=self._hello_timeout_s)
            await self._close_link(link)
            raise _Retry("hello_timeout") from None

        if signal.kind == "hello":
            self._attempt = 0
            link.ready = True
            self._set_state(ConnectionState.CONNECTED, {"num_connections": signal.num_connections})
            return link
        await self._close_link(link)
        if signal.kind == "disconnect" and signal.reason == DISCONNECT_LINK_DISABLED:
            log.error("socket_mode_disabled", reason=signal.reason)
            raise SocketModeFatal(signal.reason)
        raise _Retry(f"before_hello:{signal.reason}")

    async def _watch(self, link: _Link) -> _Signal:
        """Wait until the link ends or Slack asks us to leave it."""
        while True:
            signal = await link.signals.get()
            if signal.kind != "hello":
                return signal

    async def _close_link(self, link: _Link) -> None:
        """Normal close (bounded by close_timeout), then wait for the reader to finish."""
        try:
            await link.ws.close()
        except Exception as exc:  # closing must never break the loop
            log.debug("close_failed", host=link.host, exc_type=type(exc).__name__)
        if link.reader is not None:
            await asyncio.wait({link.reader})
        self._last_activity = max(self._last_activity, link.ws.last_frame_at)
        self._links.discard(link)

    async def _close_all(self) -> None:
        """Close every link at once. Their readers drain without delivering (`_stopping`)
        and end when the close completes or close_timeout aborts it."""
        links = list(self._links)
        if links:
            await asyncio.gather(*(self._close_link(link) for link in links))

    # -- reader ---------------------------------------------------------------------------

    async def _read(self, link: _Link) -> None:
        """Receive frames until the link closes or goes idle; never raises."""
        ws = link.ws
        reason = "closed"
        try:
            while True:
                deadline = ws.last_frame_at + self._idle_timeout_s
                try:
                    async with asyncio.timeout(deadline - time.monotonic()):
                        frame = await ws.recv()
                except TimeoutError:
                    if ws.last_frame_at + self._idle_timeout_s > time.monotonic():
                        continue  # a ping or pong arrived meanwhile
                    reason = "idle_timeout"
                    log.warning("idle_timeout", host=link.host, idle_s=self._idle_timeout_s)
                    return
                if self._stopping:
                    # keep draining so the close handshake is not stuck behind flow control,
                    # but ack and deliver nothing: Slack redelivers what we did not ack
                    continue
                await self._handle_frame(link, frame)
        except ConnectionClosed as exc:
            reason = _closed_reason(exc)
        except Exception as exc:  # a bug in frame handling must not kill the TaskGroup
            reason = f"reader_error:{type(exc).__name__}"
            log.exception("reader_failed", host=link.host)
        finally:
            link.signals.put_nowait(_Signal("ended", reason))

    async def _handle_frame(self, link: _Link, raw: str | bytes) -> None:
        try:
            frame = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self._malformed(link, "not_json", raw)
            return
        if not isinstance(frame, dict):
            self._malformed(link, "not_object", raw)
            return

        raw_id = frame.get("envelope_id")
        envelope_id = raw_id if isinstance(raw_id, str) and raw_id else None
        if envelope_id is not None:
            await self._ack(link, envelope_id)

        kind = frame.get("type")
        if kind == "hello":
            self._on_hello(link, frame)
            return
        if kind == "disconnect":
            reason = frame.get("reason")
            reason = reason if isinstance(reason, str) and reason else "unknown"
            log.info("disconnect_requested", reason=reason, host=link.host)
            link.signals.put_nowait(_Signal("disconnect", reason))
            return
        if not isinstance(kind, str) or kind not in ENVELOPE_TYPES:
            self._malformed(link, "unknown_type", raw)
            return
        if envelope_id is None:
            self._malformed(link, "missing_envelope_id", raw)
            return
        envelope = _parse_envelope(kind, envelope_id, frame)
        if envelope is None:
            self._malformed(link, "bad_envelope", raw)
            return
        log.debug(
            "envelope_received",
            type=envelope.type,
            envelope_id=envelope.envelope_id,
            retry_attempt=envelope.retry_attempt,
        )
        if self._stopping:
            return
        try:
            self._on_envelope(envelope)
        except Exception:
            log.exception("envelope_handler_failed", envelope_id=envelope.envelope_id)

    async def _ack(self, link: _Link, envelope_id: str) -> None:
        try:
            await link.ws.send(orjson.dumps({"envelope_id": envelope_id}).decode())
        except ConnectionClosed:
            # Slack will redeliver; the envelope is still handed on (de-duplicated downstream)
            log.warning("ack_failed", envelope_id=envelope_id, host=link.host)

    def _on_hello(self, link: _Link, frame: dict[str, Any]) -> None:
        num = frame.get("num_connections")
        num_connections = num if isinstance(num, int) else None
        info = frame.get("connection_info")
        app_id = info.get("app_id") if isinstance(info, dict) else None
        log.info("connected", host=link.host, num_connections=num_connections, app_id=app_id)
        link.signals.put_nowait(_Signal("hello", "hello", num_connections))

    def _malformed(self, link: _Link, problem: str, raw: str | bytes) -> None:
        log.warning("malformed_frame", problem=problem, host=link.host, size=len(raw))
        if log.is_debug():
            text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            log.debug("malformed_frame_excerpt", excerpt=text[:MALFORMED_EXCERPT_CHARS])

    def _set_state(self, state: ConnectionState, info: dict[str, Any]) -> None:
        self._state = state
        if self._on_state is None:
            return
        try:
            self._on_state(state, info)
        except Exception:
            log.exception("state_callback_failed", state=state.value)


def _parse_envelope(kind: str, envelope_id: str, frame: dict[str, Any]) -> Envelope | None:
    payload = frame.get("payload")
    if not isinstance(payload, dict):
        return None
    retry_attempt = frame.get("retry_attempt")
    retry_reason = frame.get("retry_reason")
    return Envelope(
        type=kind,
        envelope_id=envelope_id,
        payload=payload,
        retry_attempt=retry_attempt if isinstance(retry_attempt, int) else 0,
        retry_reason=retry_reason if isinstance(retry_reason, str) and retry_reason else None,
        accepts_response_payload=frame.get("accepts_response_payload") is True,
    )


def _closed_reason(exc: ConnectionClosed) -> str:
    if exc.sent is not None and exc.sent.reason == _KEEPALIVE_CLOSE_REASON:
        return "pong_timeout"
    if exc.rcvd is not None:
        return f"closed_by_server:{exc.rcvd.code}"
    return "connection_lost"
