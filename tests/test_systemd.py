"""sd_notify against real AF_UNIX datagram sockets (a path in a tmp dir, and an abstract one),
unit level and with the running gateway against the loopback fakes."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ark.slack.socket_mode import ConnectionState
from ark.systemd import SystemdNotifier, status_text, watchdog_interval_s
from tests.e2e_harness import running_ark
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.slack import FakeSlack
from tests.logcapture import captured_messages

WAIT_S = 10.0


class Listener:
    """systemd's side: a bound datagram socket; messages are parsed into dicts."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        bind_to = "\0" + address[1:] if address.startswith("@") else address
        self.sock.bind(bind_to)
        self.sock.setblocking(False)
        self.messages: list[dict[str, str]] = []

    def close(self) -> None:
        self.sock.close()

    def drain(self) -> list[dict[str, str]]:
        """Every datagram already queued, parsed (non-blocking)."""
        got: list[dict[str, str]] = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            got.append(dict(line.split("=", 1) for line in data.decode().split("\n")))
        self.messages.extend(got)
        return got

    async def next(self) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(WAIT_S):
            data = await loop.sock_recv(self.sock, 65536)
        message = dict(line.split("=", 1) for line in data.decode().split("\n"))
        self.messages.append(message)
        return message

    async def until(self, key: str, value: str | None = None) -> dict[str, str]:
        """Read (bounded) until a message carrying key (=value) arrives."""
        while True:
            message = await self.next()
            if key in message and (value is None or message[key] == value):
                return message


async def poll(predicate: Callable[[], bool]) -> None:
    """Bounded polling for a condition nothing signals (a log line)."""
    async with asyncio.timeout(WAIT_S):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    sock = Listener(str(tmp_path / "notify.sock"))
    yield sock
    sock.close()


# ---- environment --------------------------------------------------------------------------


def test_no_notify_socket_means_no_notifier() -> None:
    assert SystemdNotifier.from_env({}) is None
    assert SystemdNotifier.from_env({"NOTIFY_SOCKET": "  "}) is None
    # relative paths and vsock addresses are not something Ark can speak to
    assert SystemdNotifier.from_env({"NOTIFY_SOCKET": "relative/sock"}) is None
    assert SystemdNotifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"}) is None


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process() -> None:
    pid = os.getpid()
    assert watchdog_interval_s({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(pid)}) == 0.25
    assert watchdog_interval_s({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(pid + 1)}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({}) is None
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "2000000"})
    assert notifier is not None and notifier.watchdog_interval_s == 1.0


def test_status_texts() -> None:
    assert status_text(ConnectionState.CONNECTING, {}) == "connecting to Slack"
    assert status_text(ConnectionState.CONNECTED, {"num_connections": 1}) == "connected to Slack"
    assert (
        status_text(ConnectionState.CONNECTED, {"num_connections": 2})
        == "connected to Slack (2 connections to this app)"
    )
    assert (
        status_text(ConnectionState.RECONNECTING, {"reason": "pong_timeout", "attempt": 2})
        == "reconnecting to Slack after pong_timeout (attempt 3)"
    )
    assert status_text(ConnectionState.STOPPED, {"reason": "stopped"}) == "stopped"
    assert status_text(ConnectionState.STOPPED, {"reason": "link_disabled"}) == (
        "stopped (link_disabled)"
    )


# ---- the protocol -------------------------------------------------------------------------


async def test_ready_once_after_hello_then_status_on_changes(listener: Listener) -> None:
    notifier = SystemdNotifier(listener.address)
    notifier.on_state(ConnectionState.CONNECTING, {})
    assert await listener.next() == {"STATUS": "connecting to Slack"}
    assert not notifier.ready
    notifier.on_state(ConnectionState.CONNECTED, {"num_connections": 1})
    assert await listener.next() == {"READY": "1", "STATUS": "connected to Slack"}
    assert notifier.ready
    notifier.on_state(ConnectionState.RECONNECTING, {"reason": "closed_by_server:1006"})
    assert await listener.next() == {"STATUS": "reconnecting to Slack after closed_by_server:1006"}
    notifier.on_state(ConnectionState.CONNECTED, {"num_connections": 1})
    # no second READY=1
    assert await listener.next() == {"STATUS": "connected to Slack"}
    notifier.stopping("stopping: draining 2 answer(s)")
    assert await listener.next() == {"STOPPING": "1", "STATUS": "stopping: draining 2 answer(s)"}
    # the connection closing during the drain does not overwrite the drain's status
    notifier.on_state(ConnectionState.STOPPED, {"reason": "stopped"})
    notifier.close()
    assert listener.drain() == []


async def test_abstract_namespace_socket() -> None:
    address = f"@ark-test-{uuid.uuid4().hex}"
    listener = Listener(address)
    try:
        notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": address})
        assert notifier is not None
        assert notifier.send("READY=1", "STATUS=hello")
        assert await listener.next() == {"READY": "1", "STATUS": "hello"}
        notifier.close()
    finally:
        listener.close()


async def test_watchdog_tick_only_while_healthy(listener: Listener) -> None:
    notifier = SystemdNotifier(listener.address, watchdog_interval_s=30.0)
    problem: list[str | None] = [None]
    with captured_messages("ark.systemd") as names:
        assert notifier.watchdog_tick(lambda: problem[0])
        assert await listener.next() == {"WATCHDOG": "1"}
        problem[0] = "not connected to Slack (state: reconnecting)"
        assert not notifier.watchdog_tick(lambda: problem[0])
        assert not notifier.watchdog_tick(lambda: problem[0])
        assert listener.drain() == []  # nothing was sent while unhealthy
        problem[0] = None
        assert notifier.watchdog_tick(lambda: problem[0])
        assert await listener.next() == {"WATCHDOG": "1"}
        # while stopping (the drain), keep-alives go on whatever the connection does
        notifier.stopping()
        await listener.until("STOPPING")
        problem[0] = "not connected to Slack (state: stopped)"
        assert notifier.watchdog_tick(lambda: problem[0])
        assert await listener.next() == {"WATCHDOG": "1"}
    assert names == ["watchdog_skipped", "watchdog_resumed"]
    notifier.close()


async def test_watchdog_loop_repeats_and_a_reconnect_pings_at_once(listener: Listener) -> None:
    notifier = SystemdNotifier(listener.address, watchdog_interval_s=0.02)
    task = asyncio.create_task(notifier.run_watchdog(lambda: None))
    try:
        for _ in range(3):
            assert await listener.next() == {"WATCHDOG": "1"}
    finally:
        task.cancel()
        await asyncio.wait({task})
    listener.drain()
    notifier.on_state(ConnectionState.CONNECTED, {})
    assert await listener.next() == {"READY": "1", "STATUS": "connected to Slack"}
    assert await listener.next() == {"WATCHDOG": "1"}
    notifier.close()


async def test_no_watchdog_loop_without_watchdog_usec(listener: Listener) -> None:
    notifier = SystemdNotifier(listener.address)
    async with asyncio.timeout(WAIT_S):
        await notifier.run_watchdog(lambda: None)  # returns at once
    notifier.on_state(ConnectionState.CONNECTED, {})
    assert await listener.next() == {"READY": "1", "STATUS": "connected to Slack"}
    assert listener.drain() == []  # no WATCHDOG=1 either
    notifier.close()


def test_a_vanished_socket_never_raises_and_is_logged_once(tmp_path: Path) -> None:
    listener = Listener(str(tmp_path / "gone.sock"))
    notifier = SystemdNotifier(listener.address)
    assert notifier.send("STATUS=first")
    listener.close()
    os.unlink(listener.address)
    with captured_messages("ark.systemd") as names:
        assert not notifier.send("STATUS=x")
        notifier.on_state(ConnectionState.CONNECTED, {})
        notifier.stopping()
        assert not notifier.watchdog_tick(lambda: None)
    assert names == ["systemd_notify_failed"]
    notifier.close()


# ---- the running gateway ------------------------------------------------------------------


async def test_gateway_speaks_sd_notify(
    monkeypatch: Any, tmp_path: Path, listener: Listener
) -> None:
    async with FakeSlack() as slack, FakeBedrock() as bedrock:
        async with running_ark(
            slack,
            bedrock,
            monkeypatch,
            wait_connected=False,
            NOTIFY_SOCKET=listener.address,
            WATCHDOG_USEC="100000",  # keep-alive every 50 ms
            ARK_HEALTH_FILE=str(tmp_path / "hb.json"),
        ) as ark:
            ready = await listener.until("READY", "1")
            assert ready["STATUS"] == "connected to Slack"
            assert sum(1 for m in listener.messages if "READY" in m) == 1
            assert slack.connections == 1
            # keep-alives while healthy
            await listener.until("WATCHDOG", "1")
            await listener.until("WATCHDOG", "1")

            # Slack goes away and stays away: STATUS says so and the keep-alives stop
            with captured_messages("ark.systemd") as names:
                slack.reject_ws_next(503, times=1000)
                await slack.drop_connection()
                status = await listener.until("STATUS")
                assert status["STATUS"].startswith("reconnecting to Slack")
                listener.messages.clear()
                # the watchdog loop has looked at the broken connection at least once...
                await poll(lambda: "watchdog_skipped" in names)
                # ... and sent nothing since the state changed: systemd would restart us
                listener.drain()
                assert not any("WATCHDOG" in m for m in listener.messages)

            stop = asyncio.create_task(ark.shutdown())
            stopping = await listener.until("STOPPING", "1")
            assert stopping["STATUS"].startswith("stopping")
            await stop
        listener.drain()
        # no second READY=1, whatever happened after the first
        assert not any("READY" in m for m in listener.messages)
