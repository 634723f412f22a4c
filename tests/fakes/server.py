"""The loopback HTTP server life cycle the aiohttp fakes share."""

from __future__ import annotations

import asyncio
from typing import Self

from aiohttp import web

HOST = "127.0.0.1"  # fakes never listen beyond loopback
RUNNER_SHUTDOWN_TIMEOUT_S = 1.0


class LoopbackServer:
    """Serves the aiohttp app from `make_app()` on 127.0.0.1 at a free port, as
    `endpoint_url`, between `start()` and `stop()` (or `async with`). `_stopping` is set on
    stop so handlers that hang on purpose can end at once."""

    def __init__(self) -> None:
        self.endpoint_url = ""
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def make_app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.make_app(), shutdown_timeout=RUNNER_SHUTDOWN_TIMEOUT_S, access_log=None
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, 0).start()
        host, port = self._runner.addresses[0][:2]
        self.endpoint_url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop the server; hanging requests end at once. Idempotent."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
