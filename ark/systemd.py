"""systemd's sd_notify protocol, spoken directly (no libsystemd, no dependency).

When systemd starts Ark with Type=notify it passes a datagram socket in $NOTIFY_SOCKET (a path,
or an abstract socket written with a leading '@'). Ark sends newline-separated assignments:

- `READY=1` once, after the first Socket Mode `hello` (startup is complete);
- `STATUS=...` whenever the connection state changes (shown by `systemctl status ark`);
- `WATCHDOG=1` every WATCHDOG_USEC/2 while the connection is healthy (see ark.health); none
  while it is not, so systemd restarts a process that is alive but stuck. During the
  shutdown drain the keep-alive continues (the drain has its own deadline);
- `STOPPING=1` when the shutdown begins.

Without $NOTIFY_SOCKET nothing is sent. Sending never raises: a vanished socket is logged once.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

from ark.log import get_logger
from ark.slack.socket_mode import ConnectionState

log = get_logger("ark.systemd")

# STATUS= is one line of free text; keep it short enough for `systemctl status`.
MAX_STATUS_CHARS = 200


def _address(raw: str) -> str | None:
    """The sockaddr for NOTIFY_SOCKET: a filesystem path, or '@name' for the abstract
    namespace (sent as a leading NUL). Other forms (vsock:...) are not supported."""
    if raw.startswith("@") and len(raw) > 1:
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    return None


def watchdog_interval_s(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """Half of WATCHDOG_USEC in seconds, when the watchdog is meant for this process."""
    raw = env.get("WATCHDOG_USEC", "").strip()
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID", "").strip()
    if owner:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None  # the watchdog belongs to another process (e.g. our parent)
        except ValueError:
            return None
    return usec / 2 / 1_000_000


def status_text(state: ConnectionState, info: Mapping[str, Any]) -> str:
    """What `systemctl status` shows for a connection state."""
    if state is ConnectionState.CONNECTED:
        num = info.get("num_connections")
        if isinstance(num, int) and num > 1:
            return f"connected to Slack ({num} connections to this app)"
        return "connected to Slack"
    if state is ConnectionState.RECONNECTING:
        reason = info.get("reason")
        attempt = info.get("attempt")
        text = "reconnecting to Slack"
        if reason:
            text += f" after {reason}"
        if isinstance(attempt, int) and attempt > 0:
            text += f" (attempt {attempt + 1})"
        return text
    if state is ConnectionState.CONNECTING:
        return "connecting to Slack"
    reason = info.get("reason")
    return f"stopped ({reason})" if reason and reason != "stopped" else "stopped"


class SystemdNotifier:
    """Sends sd_notify datagrams to one socket. `from_env` returns None outside systemd."""

    def __init__(self, address: str, *, watchdog_interval_s: float | None = None) -> None:
        sockaddr = _address(address)
        if sockaddr is None:
            raise ValueError(f"unsupported NOTIFY_SOCKET address: {address!r}")
        self._display = address
        self._sockaddr = sockaddr
        self._sock: socket.socket | None = None
        self.watchdog_interval_s = watchdog_interval_s
        self._failed_logged = False
        self._ready = False
        self._stopping = False
        self._last_status: str | None = None
        self._watchdog_skipping = False
        self.sent: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, pid: int | None = None) -> SystemdNotifier | None:
        raw = env.get("NOTIFY_SOCKET", "").strip()
        if not raw:
            return None
        if _address(raw) is None:
            log.warning("systemd_notify_unsupported", notify_socket=raw)
            return None
        return cls(raw, watchdog_interval_s=watchdog_interval_s(env, pid))

    @property
    def ready(self) -> bool:
        """READY=1 has been sent."""
        return self._ready

    # ---- the datagram ----

    def send(self, *assignments: str) -> bool:
        """Send one datagram of `KEY=value` lines. False (logged once) on failure."""
        payload = "\n".join(assignments).encode("utf-8", "replace")
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)  # never stall the event loop on a full queue
                self._sock = sock
            self._sock.sendto(payload, self._sockaddr)
        except OSError as exc:
            if not self._failed_logged:
                self._failed_logged = True
                log.warning(
                    "systemd_notify_failed",
                    notify_socket=self._display,
                    exc_type=type(exc).__name__,
                    error=exc.strerror or str(exc),
                )
            return False
        self.sent += 1
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # ---- what Ark says ----

    def status(self, text: str) -> bool:
        text = " ".join(text.split())[:MAX_STATUS_CHARS]
        if text == self._last_status:
            return True
        self._last_status = text
        return self.send(f"STATUS={text}")

    def on_state(self, state: ConnectionState, info: Mapping[str, Any]) -> None:
        """Feed from SocketModeClient's on_state: READY after the first hello, STATUS on
        every change, and a keep-alive as soon as a connection is back. Ignored once
        stopping: the drain's status stays until the process exits."""
        if self._stopping:
            return
        text = " ".join(status_text(state, info).split())[:MAX_STATUS_CHARS]
        if state is ConnectionState.CONNECTED and not self._ready:
            self._ready = True
            self._last_status = text
            self.send("READY=1", f"STATUS={text}")
        else:
            self.status(text)
        if state is ConnectionState.CONNECTED and self.watchdog_interval_s is not None:
            self.send("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> None:
        """The shutdown began: STOPPING=1 (once)."""
        if self._stopping:
            self.status(status)
            return
        self._stopping = True
        text = " ".join(status.split())[:MAX_STATUS_CHARS]
        self._last_status = text
        self.send("STOPPING=1", f"STATUS={text}")

    def watchdog_tick(self, healthy: Callable[[], str | None]) -> bool:
        """One keep-alive decision: WATCHDOG=1 when `healthy()` reports no problem (or
        while stopping). True when a keep-alive was sent."""
        problem = None if self._stopping else healthy()
        if problem is not None:
            if not self._watchdog_skipping:
                log.warning("watchdog_skipped", reason=problem)
            self._watchdog_skipping = True
            return False
        if self._watchdog_skipping:
            log.info("watchdog_resumed")
        self._watchdog_skipping = False
        return self.send("WATCHDOG=1")

    async def run_watchdog(self, healthy: Callable[[], str | None]) -> None:
        """Keep-alives every WATCHDOG_USEC/2 until cancelled; returns at once when systemd
        asked for no watchdog. `healthy` returns None when healthy, else the problem."""
        interval = self.watchdog_interval_s
        if interval is None:
            return
        while True:
            self.watchdog_tick(healthy)
            await asyncio.sleep(interval)
