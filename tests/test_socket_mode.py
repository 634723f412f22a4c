"""SocketModeClient against a real, scripted WebSocket server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from ark import __version__
from ark.errors import SlackApiError, SocketModeFatal
from ark.slack.socket_mode import (
    ConnectionState,
    Envelope,
    SocketModeClient,
    backoff_delay_s,
)

TICKET = "TICKET-SECRET-123"
WAIT_S = 5.0
BASE_S = 0.001


# -- the scripted server ------------------------------------------------------------------


@dataclass(eq=False)
class FakeConn:
    """One accepted socket, as the server sees it."""

    index: int
    ws: ServerConnection
    acks: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    ack_log: list[str] = field(default_factory=list)
    hello_gate: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None

    async def send(self, obj: Any) -> None:
        await self.ws.send(obj if isinstance(obj, str) else orjson.dumps(obj).decode())

    async def envelope(self, envelope_id: str, **extra: Any) -> None:
        frame = {"type": "events_api", "envelope_id": envelope_id, "payload": {"n": envelope_id}}
        await self.send({**frame, **extra})

    async def disconnect(self, reason: str) -> None:
        await self.send({"type": "disconnect", "reason": reason, "debug_info": {"host": "h"}})

    async def next_ack(self) -> str:
        async with asyncio.timeout(WAIT_S):
            return await self.acks.get()

    def client_closed(self) -> bool:
        return self.ws.state in (State.CLOSING, State.CLOSED)


class FakeSlack:
    """Socket Mode server: hello with num_connections, envelopes, acks, disconnects."""

    def __init__(
        self,
        *,
        send_hello: bool = True,
        num_connections: int = 1,
        hold_hello_from: int | None = None,
        after_hello: Callable[[FakeConn], Any] | None = None,
    ) -> None:
        self.send_hello = send_hello
        self.num_connections = num_connections
        self.hold_hello_from = hold_hello_from
        self.after_hello = after_hello
        self.conns: list[FakeConn] = []
        self.new_conns: asyncio.Queue[FakeConn] = asyncio.Queue()
        self.timeline: list[tuple[str, int]] = []
        self.url_calls = 0
        self.open_errors: list[Exception] = []
        self.on_open_url: Callable[[], None] | None = None
        self.changed = asyncio.Event()  # set on every open_url call
        self.port = 0

    async def open_url(self) -> str:
        self.url_calls += 1
        self.changed.set()
        if self.on_open_url is not None:
            self.on_open_url()
        if self.open_errors:
            raise self.open_errors.pop(0)
        return f"ws://127.0.0.1:{self.port}/link/?ticket={TICKET}&app_id=A0TEST"

    async def wait_calls(self, n: int) -> None:
        await until(lambda: self.url_calls >= n, self.changed)

    async def next_conn(self) -> FakeConn:
        async with asyncio.timeout(WAIT_S):
            return await self.new_conns.get()

    async def _handler(self, ws: ServerConnection) -> None:
        conn = FakeConn(len(self.conns), ws)
        self.conns.append(conn)
        self.timeline.append(("open", conn.index))
        self.new_conns.put_nowait(conn)
        try:
            if self.send_hello:
                if self.hold_hello_from is not None and conn.index >= self.hold_hello_from:
                    await conn.hello_gate.wait()
                await conn.send(
                    {
                        "type": "hello",
                        "num_connections": self.num_connections,
                        "connection_info": {"app_id": "A0TEST"},
                        "debug_info": {"host": "applink-1"},
                    }
                )
                self.timeline.append(("hello", conn.index))
                if self.after_hello is not None:
                    self.after_hello(conn)
            async for message in ws:
                envelope_id = orjson.loads(message)["envelope_id"]
                conn.ack_log.append(envelope_id)
                conn.acks.put_nowait(envelope_id)
        except ConnectionClosed:
            pass
        finally:
            conn.close_code = ws.close_code
            self.timeline.append(("closed", conn.index))
            conn.closed.set()


@asynccontextmanager
async def fake_slack(**kwargs: Any) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(**kwargs)
    async with serve(
        fake._handler, "127.0.0.1", 0, ping_interval=None, close_timeout=0.5, compression=None
    ) as server:
        fake.port = server.sockets[0].getsockname()[1]
        try:
            yield fake
        finally:
            for conn in fake.conns:
                conn.hello_gate.set()


class RecordingRandom(random.Random):
    """Records the upper bound of every uniform() draw: the backoff ceiling."""

    def __init__(self) -> None:
        super().__init__(7)
        self.ceilings: list[float] = []

    def uniform(self, a: float, b: float) -> float:
        self.ceilings.append(b)
        return super().uniform(a, b)


@dataclass
class Harness:
    client: SocketModeClient
    delivered: asyncio.Queue[Envelope]
    states: list[tuple[ConnectionState, dict[str, Any]]]
    changed: asyncio.Event  # set on every on_state call

    async def wait_connected(self, times: int = 1) -> None:
        """Until the client has reported CONNECTED `times` times in all."""
        await until(
            lambda: [s for s, _ in self.states].count(ConnectionState.CONNECTED) >= times,
            self.changed,
        )
        assert self.client.connected

    async def next_envelope(self) -> Envelope:
        async with asyncio.timeout(WAIT_S):
            return await self.delivered.get()


def make_client(
    fake: FakeSlack,
    on_envelope: Callable[[Envelope], None] | None = None,
    **overrides: Any,
) -> Harness:
    delivered: asyncio.Queue[Envelope] = asyncio.Queue()
    states: list[tuple[ConnectionState, dict[str, Any]]] = []
    changed = asyncio.Event()

    def on_state(state: ConnectionState, info: dict[str, Any]) -> None:
        states.append((state, info))
        changed.set()

    options: dict[str, Any] = {
        "ping_interval_s": 5.0,
        "pong_timeout_s": 5.0,
        "idle_timeout_s": 5.0,
        "hello_timeout_s": 2.0,
        "backoff_base_s": BASE_S,
        "backoff_max_s": 0.01,
        "close_timeout_s": 0.5,
        **overrides,
    }
    client = SocketModeClient(
        open_url=fake.open_url,
        on_envelope=on_envelope or delivered.put_nowait,
        on_state=on_state,
        **options,
    )
    return Harness(client, delivered, states, changed)


@asynccontextmanager
async def running(client: SocketModeClient) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(client.run())
    try:
        yield task
    finally:
        async with asyncio.timeout(WAIT_S):
            await client.stop()
            await task  # re-raises whatever run() raised


async def until(predicate: Callable[[], bool], changed: asyncio.Event) -> None:
    """Wait, bounded, until `predicate` holds; `changed` is set whenever it may have changed."""
    async with asyncio.timeout(WAIT_S):
        while not predicate():
            changed.clear()
            await changed.wait()


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logs() -> Any:
    logger = logging.getLogger("ark.slack.socket_mode")
    handler = _ListHandler()
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def events(records: list[logging.LogRecord], name: str) -> list[dict[str, Any]]:
    return [getattr(r, "ark_fields", {}) for r in records if r.getMessage() == name]


# -- backoff ------------------------------------------------------------------------------


def test_backoff_delay_is_full_jitter_exponential_and_capped() -> None:
    rng = RecordingRandom()
    twin = random.Random(7)
    for attempt in range(1, 12):
        delay = backoff_delay_s(attempt, base_s=1.0, max_s=30.0, rng=rng)
        ceiling = min(30.0, 2.0 ** (attempt - 1))
        assert rng.ceilings[-1] == ceiling
        assert delay == twin.uniform(0.0, ceiling)
        assert 0.0 <= delay <= ceiling
    assert rng.ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    assert backoff_delay_s(0, base_s=1.0, max_s=30.0, rng=rng) == 0.0
    assert backoff_delay_s(10_000, base_s=1.0, max_s=30.0, rng=rng) <= 30.0
    draws = {backoff_delay_s(3, base_s=1.0, max_s=30.0, rng=random.Random(s)) for s in range(20)}
    assert len(draws) == 20  # jittered, not a fixed schedule


async def test_attempt_counter_not_reset_by_sockets_that_never_say_hello() -> None:
    async with fake_slack(send_hello=False) as fake:
        rng = RecordingRandom()
        h = make_client(fake, hello_timeout_s=0.05, backoff_max_s=10.0, rng=rng)
        async with running(h.client):
            await fake.wait_calls(5)
            assert not h.client.connected
        assert rng.ceilings[:4] == [BASE_S, 2 * BASE_S, 4 * BASE_S, 8 * BASE_S]
        assert all(conn.closed.is_set() for conn in fake.conns)


async def test_attempt_counter_resets_after_each_hello() -> None:
    async with fake_slack(after_hello=lambda conn: conn.ws.transport.abort()) as fake:
        rng = RecordingRandom()
        h = make_client(fake, backoff_max_s=10.0, rng=rng)
        async with running(h.client):
            await fake.wait_calls(4)
        assert rng.ceilings[:3] == [BASE_S, BASE_S, BASE_S]


# -- hello, acks, delivery ----------------------------------------------------------------


async def test_hello_marks_connected_and_reports_num_connections(logs: Any) -> None:
    async with fake_slack(num_connections=3) as fake:
        h = make_client(fake)
        assert not h.client.connected
        async with running(h.client):
            conn = await fake.next_conn()
            await h.wait_connected()
            assert (ConnectionState.CONNECTED, {"num_connections": 3}) in h.states
            assert h.states[0][0] is ConnectionState.CONNECTING
            assert conn.ws.request is not None
            assert conn.ws.request.headers["User-Agent"] == f"ark/{__version__}"
            assert h.client.last_activity <= time.monotonic()
            assert h.client.last_activity > time.monotonic() - WAIT_S
        assert not h.client.connected
        assert h.states[-1][0] is ConnectionState.STOPPED
    (connected,) = events(logs, "connected")
    assert connected["num_connections"] == 3
    assert connected["app_id"] == "A0TEST"
    assert connected["host"] == "127.0.0.1"
    assert events(logs, "connecting")[0]["host"] == "127.0.0.1"
    for record in logs:
        assert TICKET not in record.getMessage() + repr(getattr(record, "ark_fields", {}))


async def test_every_envelope_is_acked_with_its_id_and_delivered(logs: Any) -> None:
    async with fake_slack() as fake:
        h = make_client(fake)
        async with running(h.client):
            conn = await fake.next_conn()
            await conn.send(
                {
                    "type": "events_api",
                    "envelope_id": "E-1",
                    "payload": {"event": {"type": "app_mention"}},
                    "retry_attempt": 2,
                    "retry_reason": "timeout",
                    "accepts_response_payload": False,
                }
            )
            await conn.send({"type": "interactive", "envelope_id": "E-2", "payload": {"a": 1}})
            await conn.send(
                {
                    "type": "slash_commands",
                    "envelope_id": "E-3",
                    "payload": {"command": "/ark"},
                    "accepts_response_payload": True,
                }
            )
            got = [await h.next_envelope() for _ in range(3)]
            assert [await conn.next_ack() for _ in range(3)] == ["E-1", "E-2", "E-3"]
    assert got == [
        Envelope("events_api", "E-1", {"event": {"type": "app_mention"}}, 2, "timeout", False),
        Envelope("interactive", "E-2", {"a": 1}),
        Envelope("slash_commands", "E-3", {"command": "/ark"}, accepts_response_payload=True),
    ]
    received = events(logs, "envelope_received")
    assert [r["envelope_id"] for r in received] == ["E-1", "E-2", "E-3"]
    assert received[0]["retry_attempt"] == 2
    assert all(r.levelno == logging.DEBUG for r in logs if r.getMessage() == "envelope_received")


def _threaded_server(ack_seen: threading.Event, started: queue.Queue[Any]) -> None:
    """A server in its own thread and loop, so the client's on_envelope can block until the
    server has really received the ack."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send(orjson.dumps({"type": "hello", "num_connections": 1}).decode())
        await ws.send(
            orjson.dumps({"type": "events_api", "envelope_id": "E-X", "payload": {}}).decode()
        )
        async for message in ws:
            if orjson.loads(message) == {"envelope_id": "E-X"}:
                ack_seen.set()

    async def main() -> None:
        stop = asyncio.Event()
        async with serve(handler, "127.0.0.1", 0, ping_interval=None, close_timeout=0.5) as srv:
            started.put((srv.sockets[0].getsockname()[1], asyncio.get_running_loop(), stop))
            await stop.wait()

    asyncio.run(main())


async def test_ack_reaches_slack_before_on_envelope_runs() -> None:
    ack_seen = threading.Event()
    started: queue.Queue[Any] = queue.Queue()
    thread = threading.Thread(target=_threaded_server, args=(ack_seen, started), daemon=True)
    thread.start()
    port, server_loop, server_stop = await asyncio.to_thread(started.get, timeout=WAIT_S)
    try:
        seen_in_handler: list[bool] = []
        handled = asyncio.Event()

        async def open_url() -> str:
            return f"ws://127.0.0.1:{port}/link/?ticket={TICKET}"

        def on_envelope(envelope: Envelope) -> None:
            # blocks this loop: only an ack already written can reach the server meanwhile
            seen_in_handler.append(ack_seen.wait(WAIT_S))
            handled.set()

        client = SocketModeClient(open_url=open_url, on_envelope=on_envelope, close_timeout_s=0.5)
        async with running(client):
            async with asyncio.timeout(WAIT_S):
                await handled.wait()
        assert seen_in_handler == [True]
    finally:
        server_loop.call_soon_threadsafe(server_stop.set)
        await asyncio.to_thread(thread.join, WAIT_S)


async def test_ack_does_not_wait_for_a_handler_that_never_finishes() -> None:
    never = asyncio.Event()
    spawned: list[asyncio.Task[None]] = []
    started: asyncio.Queue[str] = asyncio.Queue()

    async def handle(envelope: Envelope) -> None:
        started.put_nowait(envelope.envelope_id)
        await never.wait()

    def on_envelope(envelope: Envelope) -> None:
        spawned.append(asyncio.get_running_loop().create_task(handle(envelope)))

    try:
        async with fake_slack() as fake:
            h = make_client(fake, on_envelope=on_envelope)
            async with running(h.client):
                conn = await fake.next_conn()
                await conn.envelope("E-1")
                assert await conn.next_ack() == "E-1"
                await conn.envelope("E-2")  # the receive loop is still free
                assert await conn.next_ack() == "E-2"
                async with asyncio.timeout(WAIT_S):
                    assert {await started.get(), await started.get()} == {"E-1", "E-2"}
                assert not any(task.done() for task in spawned)
    finally:
        for task in spawned:
            task.cancel()
        await asyncio.gather(*spawned, return_exceptions=True)


async def test_a_raising_handler_does_not_stop_the_loop(logs: Any) -> None:
    delivered: list[str] = []
    changed = asyncio.Event()

    def on_envelope(envelope: Envelope) -> None:
        delivered.append(envelope.envelope_id)
        changed.set()
        if envelope.envelope_id == "E-boom":
            raise RuntimeError("handler bug")

    async with fake_slack() as fake:
        h = make_client(fake, on_envelope=on_envelope)
        async with running(h.client):
            conn = await fake.next_conn()
            await conn.envelope("E-boom")
            await conn.envelope("E-ok")
            assert [await conn.next_ack(), await conn.next_ack()] == ["E-boom", "E-ok"]
            await until(lambda: len(delivered) == 2, changed)
            assert delivered == ["E-boom", "E-ok"]
            assert fake.url_calls == 1
    assert events(logs, "envelope_handler_failed")[0]["envelope_id"] == "E-boom"


async def test_malformed_frames_are_skipped_and_the_connection_survives(logs: Any) -> None:
    async with fake_slack() as fake:
        h = make_client(fake)
        async with running(h.client):
            conn = await fake.next_conn()
            await conn.send("this is not json {")
            await conn.send("[1, 2, 3]")
            await conn.send({"type": "mystery", "secret_text": "hush"})
            await conn.send({"type": ["events_api"]})
            await conn.send({"type": "events_api", "envelope_id": "E-nopayload"})
            await conn.send({"type": "events_api", "envelope_id": "E-listpayload", "payload": []})
            await conn.send({"type": "events_api", "payload": {"no": "id"}})
            await conn.envelope("E-ok")
            got = await h.next_envelope()
            assert got.envelope_id == "E-ok"
            acks = [await conn.next_ack() for _ in range(3)]
            assert acks == ["E-nopayload", "E-listpayload", "E-ok"]
            assert h.delivered.empty()
            assert fake.url_calls == 1 and not conn.closed.is_set()
    warnings = [r for r in logs if r.getMessage() == "malformed_frame"]
    assert len(warnings) == 7
    assert all(r.levelno == logging.WARNING for r in warnings)
    assert [f["problem"] for f in events(logs, "malformed_frame")] == [
        "not_json",
        "not_object",
        "unknown_type",
        "unknown_type",
        "bad_envelope",
        "bad_envelope",
        "missing_envelope_id",
    ]
    for record in logs:
        if record.levelno >= logging.INFO:
            text = record.getMessage() + repr(getattr(record, "ark_fields", {}))
            assert "hush" not in text and "not json" not in text


# -- disconnect messages ------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["refresh_requested", "warning"])
async def test_refresh_opens_the_replacement_before_closing_the_old_link(
    reason: str, logs: Any
) -> None:
    async with fake_slack(hold_hello_from=1) as fake:
        h = make_client(fake)
        async with running(h.client):
            old = await fake.next_conn()
            await h.wait_connected()
            await old.disconnect(reason)
            await old.envelope("E-right-after")
            new = await fake.next_conn()
            # replacement socket open, its hello still held: the old link keeps delivering
            assert await old.next_ack() == "E-right-after"
            assert (await h.next_envelope()).envelope_id == "E-right-after"
            await old.envelope("E-still-old")
            assert await old.next_ack() == "E-still-old"
            assert (await h.next_envelope()).envelope_id == "E-still-old"
            assert not old.closed.is_set()
            assert h.client.connected
            new.hello_gate.set()
            async with asyncio.timeout(WAIT_S):
                await old.closed.wait()
            assert fake.timeline.index(("hello", 1)) < fake.timeline.index(("closed", 0))
            assert old.close_code == 1000
            assert fake.url_calls == 2
            await new.envelope("E-new")
            assert (await h.next_envelope()).envelope_id == "E-new"
            assert await new.next_ack() == "E-new"
            assert h.client.connected
            assert h.client.reconnects == 1
    assert ConnectionState.RECONNECTING not in [state for state, _ in h.states]
    assert [e["reason"] for e in events(logs, "disconnect_requested")] == [reason]
    assert events(logs, "reconnecting")[0]["reason"] == reason


async def test_link_disabled_is_fatal() -> None:
    async with fake_slack() as fake:
        h = make_client(fake)
        task = asyncio.create_task(h.client.run())
        conn = await fake.next_conn()
        await conn.disconnect("link_disabled")
        with pytest.raises(SocketModeFatal) as caught:
            async with asyncio.timeout(WAIT_S):
                await task
        assert caught.value.reason == "link_disabled"
        assert fake.url_calls == 1
        async with asyncio.timeout(WAIT_S):
            await conn.closed.wait()
        assert h.states[-1] == (ConnectionState.STOPPED, {"reason": "link_disabled"})
        await h.client.stop()  # harmless afterwards


@pytest.mark.parametrize(
    "code",
    ["invalid_auth", "not_allowed_token_type", "not_authed", "account_inactive", "token_revoked"],
)
async def test_rejected_app_token_is_fatal_after_one_call(code: str) -> None:
    async with fake_slack() as fake:
        fake.open_errors = [SlackApiError("apps.connections.open", code)] * 5
        h = make_client(fake)
        with pytest.raises(SocketModeFatal) as caught:
            async with asyncio.timeout(WAIT_S):
                await h.client.run()
        assert caught.value.reason == code
        assert fake.url_calls == 1
        assert fake.conns == []


async def test_transient_open_url_failures_back_off_and_retry(logs: Any) -> None:
    async with fake_slack() as fake:
        fake.open_errors = [
            SlackApiError("apps.connections.open", "ratelimited", 429),
            SlackApiError("apps.connections.open", "internal_error"),
            OSError("network down"),
        ]
        rng = RecordingRandom()
        h = make_client(fake, backoff_max_s=10.0, rng=rng)
        async with running(h.client):
            await h.wait_connected()
            assert fake.url_calls == 4
            assert h.client.reconnects == 3
        assert rng.ceilings == [BASE_S, 2 * BASE_S, 4 * BASE_S]
    assert [e["reason"] for e in events(logs, "reconnecting")] == [
        "open_url:ratelimited",
        "open_url:internal_error",
        "open_url:OSError",
    ]


async def test_too_many_websockets_closes_first_then_backs_off_and_reconnects() -> None:
    async with fake_slack() as fake:
        closed_at_call: list[bool] = []
        fake.on_open_url = lambda: closed_at_call.append(
            bool(fake.conns) and fake.conns[-1].client_closed()
        )
        rng = RecordingRandom()
        h = make_client(fake, backoff_max_s=10.0, rng=rng)
        async with running(h.client):
            first = await fake.next_conn()
            await h.wait_connected()
            await first.disconnect("too_many_websockets")
            second = await fake.next_conn()
            assert closed_at_call == [False, True]
            assert first.close_code == 1000 or first.client_closed()
            assert rng.ceilings == [BASE_S]  # backed off, not an instant retry
            await second.envelope("E-after")
            assert (await h.next_envelope()).envelope_id == "E-after"
            await h.wait_connected(2)


async def test_repeated_too_many_websockets_keeps_growing_the_backoff() -> None:
    def crowded(conn: FakeConn) -> None:
        asyncio.get_running_loop().create_task(conn.disconnect("too_many_websockets"))

    async with fake_slack(after_hello=crowded) as fake:
        rng = RecordingRandom()
        h = make_client(fake, backoff_max_s=10.0, rng=rng)
        async with running(h.client):
            await fake.wait_calls(4)
        assert rng.ceilings[:3] == [BASE_S, 2 * BASE_S, 4 * BASE_S]


# -- drops and dead links -----------------------------------------------------------------


async def test_abrupt_close_reconnects_and_keeps_delivering(logs: Any) -> None:
    async with fake_slack() as fake:
        h = make_client(fake)
        async with running(h.client):
            first = await fake.next_conn()
            await h.wait_connected()
            first.ws.transport.abort()
            second = await fake.next_conn()
            await second.envelope("E-later")
            assert (await h.next_envelope()).envelope_id == "E-later"
            assert await second.next_ack() == "E-later"
            assert fake.url_calls == 2
            assert h.client.reconnects == 1
    (reconnecting,) = events(logs, "reconnecting")
    assert reconnecting["reason"] == "connection_lost"
    assert reconnecting["attempt"] == 1
    assert 0.0 <= reconnecting["delay_s"] <= BASE_S
    assert any(state is ConnectionState.RECONNECTING for state, _ in h.states)


async def test_missing_pongs_drop_the_link_and_reconnect(logs: Any) -> None:
    async with fake_slack() as fake:
        h = make_client(
            fake, ping_interval_s=0.05, pong_timeout_s=0.1, idle_timeout_s=30.0, close_timeout_s=0.1
        )
        async with running(h.client):
            first = await fake.next_conn()
            await h.wait_connected()
            first.ws.transport.pause_reading()  # no pongs, no close reply: a dead peer
            started = time.monotonic()
            second = await fake.next_conn()
            assert time.monotonic() - started < 2.0
            await second.envelope("E-later")
            assert (await h.next_envelope()).envelope_id == "E-later"
    assert events(logs, "reconnecting")[0]["reason"] == "pong_timeout"


async def test_a_silent_link_is_dropped_after_the_idle_timeout(logs: Any) -> None:
    async with fake_slack() as fake:
        h = make_client(fake, ping_interval_s=30.0, idle_timeout_s=0.2)
        async with running(h.client):
            await fake.next_conn()
            started = time.monotonic()
            second = await fake.next_conn()
            assert 0.15 <= time.monotonic() - started < 2.0
            await second.envelope("E-later")
            assert (await h.next_envelope()).envelope_id == "E-later"
    assert events(logs, "reconnecting")[0]["reason"] == "idle_timeout"
    assert events(logs, "idle_timeout")


async def test_pongs_count_as_activity_for_the_idle_watchdog() -> None:
    async with fake_slack() as fake:
        h = make_client(fake, ping_interval_s=0.03, pong_timeout_s=1.0, idle_timeout_s=0.25)
        async with running(h.client):
            await h.wait_connected()
            after_hello = h.client.last_activity
            await asyncio.sleep(0.6)  # proving an absence: more than twice the idle timeout
            assert fake.url_calls == 1
            assert h.client.connected
            assert h.client.last_activity > after_hello


# -- stop ---------------------------------------------------------------------------------


async def test_stop_returns_run_closes_normally_and_delivers_nothing_after() -> None:
    delivered: list[str] = []
    at_stop: list[int] = []
    stopper: list[asyncio.Task[None]] = []

    async with fake_slack() as fake:

        async def stop_now() -> None:
            at_stop.append(len(delivered))
            await client.stop()

        def on_envelope(envelope: Envelope) -> None:
            delivered.append(envelope.envelope_id)
            if len(delivered) == 5:
                stopper.append(asyncio.get_running_loop().create_task(stop_now()))

        client = make_client(fake, on_envelope=on_envelope).client
        task = asyncio.create_task(client.run())
        conn = await fake.next_conn()

        async def flood() -> None:
            try:
                for i in range(2000):
                    await conn.envelope(f"E-{i}")
                    if i % 5 == 0:
                        await asyncio.sleep(0)
            except ConnectionClosed:
                pass

        flooder = asyncio.create_task(flood())
        async with asyncio.timeout(WAIT_S):
            await task  # returns normally
            await stopper[0]
            await conn.closed.wait()
            await flooder
        assert delivered and len(delivered) == at_stop[0]
        assert conn.close_code == 1000
        assert not client.connected
        await client.stop()  # twice: harmless


async def test_stop_before_run_is_harmless() -> None:
    async with fake_slack() as fake:
        h = make_client(fake)
        await h.client.stop()
        await h.client.stop()
        async with asyncio.timeout(WAIT_S):
            await h.client.run()
        assert fake.url_calls == 0


async def test_stop_during_backoff_returns_promptly() -> None:
    async with fake_slack() as fake:
        fake.open_errors = [SlackApiError("apps.connections.open", "internal_error")] * 100
        h = make_client(fake, backoff_base_s=30.0, backoff_max_s=30.0, rng=random.Random(1))
        task = asyncio.create_task(h.client.run())
        await fake.wait_calls(1)
        async with asyncio.timeout(1.0):
            await h.client.stop()
            await task
        assert fake.url_calls == 1
