"""Wiring: builds every client once from Settings, runs the gateway until told to stop,
then drains. Nothing here is global: two `serve` calls in one process share nothing."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack, suppress
from functools import partial

import certifi
import httpx

from ark import __version__
from ark.analytics import FirehosePublisher
from ark.aws import AwsClients, resolve_region
from ark.bedrock.agent import BedrockAgent
from ark.config import Settings
from ark.errors import ArkError, SlackApiError, SocketModeFatal
from ark.gateway import Gateway, GatewayOptions
from ark.health import Heartbeat, Snapshot
from ark.log import get_logger
from ark.metrics import Metrics, make_metrics
from ark.posting import SlackPoster
from ark.slack.socket_mode import ConnectionState, SocketModeClient
from ark.slack.web import AuthInfo, SlackWeb
from ark.systemd import SystemdNotifier

# Of ARK_SHUTDOWN_DEADLINE_S, what answers still running at its end get for their restart
# notices and the analytics flush (half the deadline when that is shorter).
SHUTDOWN_RESERVE_S = 4.0

log = get_logger("ark.app")

HTTP_TIMEOUT_S = 30.0
HTTP_CONNECT_TIMEOUT_S = 10.0
STARTUP_ATTEMPTS = 5
STARTUP_BACKOFF_S = 1.0
FATAL_AUTH_CODES = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "not_allowed_token_type"}
)


class FatalError(ArkError):
    """Ark cannot run with this configuration or token; retrying will not help."""


def make_ssl_context() -> ssl.SSLContext:
    """One TLS context for the Slack HTTP client and the Socket Mode WebSocket."""
    return ssl.create_default_context(cafile=certifi.where())


def http_pool_size(max_concurrency: int) -> int:
    """Connections to Slack: room for each answer's calls plus downloads and notices."""
    return max(20, 2 * max_concurrency)


def make_http_client(ssl_context: ssl.SSLContext, max_concurrency: int) -> httpx.AsyncClient:
    pool = http_pool_size(max_concurrency)
    return httpx.AsyncClient(
        verify=ssl_context,
        timeout=httpx.Timeout(HTTP_TIMEOUT_S, connect=HTTP_CONNECT_TIMEOUT_S),
        # as many kept alive as may be open: under load a connection closed after its
        # request is a new TLS handshake to Slack for the next one
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        headers={"User-Agent": f"ark/{__version__}"},
        trust_env=False,
    )


async def authenticate(web: SlackWeb, stop: asyncio.Event) -> AuthInfo:
    """auth.test, retried on transient failures; a bad token is fatal at once."""
    delay = STARTUP_BACKOFF_S
    for attempt in range(1, STARTUP_ATTEMPTS + 1):
        try:
            return await web.auth_test()
        except SlackApiError as exc:
            if exc.code in FATAL_AUTH_CODES:
                raise FatalError(
                    f"Slack rejected SLACK_BOT_TOKEN ({exc.code}): check the bot token and "
                    "that the app is installed in the workspace"
                ) from exc
            if attempt == STARTUP_ATTEMPTS:
                raise FatalError(f"Slack auth.test kept failing: {exc.code}") from exc
            log.warning("auth_test_retry", error=exc.code, attempt=attempt, delay_s=delay)
            with suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            if stop.is_set():
                raise FatalError("stopped before connecting to Slack") from exc
            delay *= 2
    raise AssertionError("unreachable")


async def serve(
    settings: Settings,
    *,
    stop: asyncio.Event,
    env: Mapping[str, str],
    on_state: Callable[[ConnectionState, dict[str, object]], None] | None = None,
) -> None:
    """Run Ark until `stop` is set, then stop reading events and drain in-flight answers.

    Raises FatalError (bad Slack token, Socket Mode disabled) after draining."""
    region = resolve_region(settings.aws_region, settings.aws_profile, env)
    ssl_context = make_ssl_context()
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(
            make_http_client(ssl_context, settings.max_concurrent_requests)
        )
        aws = await stack.enter_async_context(
            AwsClients(
                region=region,
                profile=settings.aws_profile,
                max_concurrency=settings.max_concurrent_requests,
                firehose=settings.analytics_enabled,
            )
        )
        web = SlackWeb(
            http,
            token=settings.slack_bot_token,
            base_url=settings.slack_api_url,
            max_in_flight=http_pool_size(settings.max_concurrent_requests),
        )
        auth = await authenticate(web, stop)
        log.info(
            "starting",
            version=__version__,
            team=auth.team_id,
            bot_user=auth.user_id,
            region=region,
            agent_id=settings.agent_id,
            alias_id=settings.agent_alias_id,
            analytics=settings.analytics_enabled,
            max_concurrent=settings.max_concurrent_requests,
            dm_replies=settings.dm_replies,
        )
        publisher: FirehosePublisher | None = None
        publisher_task: asyncio.Task[None] | None = None
        if settings.firehose_stream_name and aws.firehose is not None:
            publisher = FirehosePublisher(aws.firehose, settings.firehose_stream_name)
            publisher_task = asyncio.create_task(publisher.run(), name="ark-firehose")

        # EMF lines on stdout with LOG_FORMAT=json; nothing with text logs
        metrics = make_metrics(settings.log_format, settings.metrics_namespace)
        gateway = Gateway(
            web=web,
            agent=BedrockAgent(
                aws.agent_runtime,
                agent_id=settings.agent_id,
                agent_alias_id=settings.agent_alias_id,
            ),
            poster=SlackPoster(web),
            http=http,
            options=GatewayOptions(
                bot_token=settings.slack_bot_token,
                session_ttl_s=settings.session_ttl_s,
                max_concurrent=settings.max_concurrent_requests,
                max_queued=settings.max_queued_requests,
                file_url_prefixes=settings.slack_file_url_prefixes,
                dm_replies=settings.dm_replies,
                enable_trace=settings.analytics_enabled,
                max_inflight_file_bytes=settings.max_inflight_file_mb * 1024 * 1024,
            ),
            bot_user_id=auth.user_id,
            publisher=publisher,
            metrics=metrics,
        )
        notifier = SystemdNotifier.from_env(env)
        socket: SocketModeClient | None = None

        def snapshot() -> Snapshot:
            assert socket is not None
            return Snapshot.capture(
                connected=socket.connected,
                state=socket.state.value,
                last_activity=socket.last_activity,
            )

        heartbeat = Heartbeat(settings.health_file, snapshot)
        socket = SocketModeClient(
            open_url=partial(web.open_socket_url, settings.slack_app_token),
            on_envelope=gateway.on_envelope,
            on_state=partial(_state_changed, heartbeat, notifier, metrics, on_state),
            ssl_context=ssl_context,
        )
        if notifier is not None:
            log.info("systemd_notify", watchdog_interval_s=notifier.watchdog_interval_s)
        socket_task = asyncio.create_task(socket.run(), name="ark-socket-mode")
        stop_task = asyncio.create_task(stop.wait(), name="ark-stop")
        helpers = [asyncio.create_task(heartbeat.run(), name="ark-heartbeat")]
        if notifier is not None:
            helpers.append(
                asyncio.create_task(
                    notifier.run_watchdog(lambda: snapshot().problem()), name="ark-watchdog"
                )
            )
        fatal: BaseException | None = None
        try:
            await asyncio.wait({socket_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_task.cancel()
            log.info("stopping", pending=gateway.pending)
            if notifier is not None:
                notifier.stopping(f"stopping: draining {gateway.pending} answer(s)")
            # One deadline from the stop signal to exit, under the platform's stop timeout:
            # the sockets close while the answers drain, and the restart notices and the
            # analytics flush fit in the reserve at its end.
            loop = asyncio.get_running_loop()
            deadline_s = settings.shutdown_deadline_s
            ends_at = loop.time() + deadline_s
            reserve_s = min(SHUTDOWN_RESERVE_S, deadline_s / 2)
            # created first, so it stops reading (and acking) before the drain begins
            socket_stopped = asyncio.create_task(socket.stop(), name="ark-socket-stop")
            drained = await gateway.drain(deadline_s - reserve_s, notices_s=reserve_s * 0.75)
            try:
                async with asyncio.timeout(max(0.0, ends_at - loop.time())):
                    await socket_stopped
            except TimeoutError:
                log.warning("socket_close_timeout")
            if socket_task.done() and not socket_task.cancelled():
                fatal = socket_task.exception()
            else:
                socket_task.cancel()
                with suppress(asyncio.CancelledError):
                    await socket_task
            if publisher is not None and publisher_task is not None:
                await publisher.close(timeout_s=max(0.1, ends_at - loop.time()))
                publisher_task.cancel()
                with suppress(asyncio.CancelledError):
                    await publisher_task
            for task in helpers:
                task.cancel()
            await asyncio.wait(helpers)
            log.info(
                "stopped",
                drained=drained,
                answered=gateway.answered,
                failed=gateway.failed,
                busy=gateway.busy,
            )
            if notifier is not None:
                if isinstance(fatal, SocketModeFatal):
                    notifier.status(_socket_fatal_message(fatal.reason))
                notifier.close()
        if isinstance(fatal, SocketModeFatal):
            raise FatalError(_socket_fatal_message(fatal.reason)) from fatal
        if fatal is not None:
            raise fatal


def _state_changed(
    heartbeat: Heartbeat,
    notifier: SystemdNotifier | None,
    metrics: Metrics,
    forward: Callable[[ConnectionState, dict[str, object]], None] | None,
    state: ConnectionState,
    info: dict[str, object],
) -> None:
    """Every connection state change: heartbeat now, systemd READY/STATUS, a Reconnects
    metric per reconnect attempt, then the caller's own callback."""
    heartbeat.poke()
    if notifier is not None:
        notifier.on_state(state, info)
    if state is ConnectionState.RECONNECTING:
        reason = info.get("reason")
        metrics.reconnect(reason if isinstance(reason, str) else None)
    if forward is not None:
        forward(state, info)


def _socket_fatal_message(reason: str) -> str:
    if reason == "link_disabled":
        return "Slack disabled Socket Mode for this app (link_disabled): turn Socket Mode back on"
    if reason in FATAL_AUTH_CODES:
        return (
            f"Slack rejected SLACK_APP_TOKEN ({reason}): use an app-level token (xapp-...) "
            "with the connections:write scope"
        )
    return f"Socket Mode stopped: {reason}"
