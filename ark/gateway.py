"""The per-message pipeline: admission, per-session order, context, files, agent, reply.

`Gateway.on_envelope` is called by the Socket Mode client right after each ack. It decides
synchronously (route, de-duplicate, admit) and hands accepted messages to tasks it owns, so
the receive loop never waits on Slack, Bedrock or a download. Every accepted message is
answered or told why not: busy, files left out, an error, or a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ark.bedrock.response import AgentResponse, ResponseBuilder
from ark.bedrock.types import Agent, AgentRequest, InputFile
from ark.budget import ByteBudget, Lease, in_flight_bytes
from ark.cache import TTLCache
from ark.errors import (
    BUSY_REPLY,
    ERROR_REPLY,
    SHUTDOWN_REPLY,
    UNSUPPORTED_FILE_REPLY,
    AgentError,
    FileRejected,
    SlackApiError,
)
from ark.events import Ignored, Message, route
from ark.log import get_logger
from ark.metrics import Metrics, NullMetrics
from ark.posting import Poster, ReplyTarget
from ark.slack import files as slack_files
from ark.slack.history import HISTORY_LIMIT, format_context, with_context

if TYPE_CHECKING:
    import httpx

    from ark.analytics import FirehosePublisher
    from ark.slack.socket_mode import Envelope
    from ark.slack.web import SlackWeb

log = get_logger("ark.gateway")

EYES_REACTION = "eyes"
SEEN_EVENTS_TTL_S = 15 * 60.0  # Slack retries for ~6 min; duplicates seen up to ~10 min
SEEN_EVENTS_MAX = 20_000
USER_CACHE_TTL_S = 60 * 60.0
USER_CACHE_MAX = 2_000
SESSIONS_MAX = 50_000
NOTICE_TIMEOUT_S = 3.0  # bound on a farewell notice posted during shutdown
INCOMPLETE_NOTICE = "Sorry, the answer above is incomplete: the agent stopped with an error."
FILES_ONLY_PROMPT = "Please look at the attached file(s): {names}"
FILES_QUEUED_NOTICE = (
    "Many files are being read right now, so yours are queued: "
    "I will answer as soon as there is room."
)
FILES_QUEUED_AFTER_S = 5.0  # a wait for the attachment budget this long is told to the user


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """The slice of Settings the pipeline needs (kept small for tests and `ark chat`)."""

    bot_token: str
    session_ttl_s: float = 55 * 60.0
    max_concurrent: int = 10
    max_queued: int = 20
    file_url_prefixes: tuple[str, ...] = ()
    dm_replies: str = "thread"
    enable_trace: bool = False
    max_inflight_file_bytes: int = 64 * 1024 * 1024  # ARK_MAX_INFLIGHT_FILE_MB
    files_queued_notice_s: float = FILES_QUEUED_AFTER_S


class SessionStore(Protocol):
    """Remembers when each session last answered; shared state for replicas plugs in here."""

    def is_fresh(self, key: str) -> bool: ...

    def touch(self, key: str) -> None: ...


class MemorySessionStore:
    """Sessions answered within the TTL, bounded in count."""

    def __init__(
        self,
        ttl_s: float,
        *,
        max_entries: int = SESSIONS_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seen: TTLCache[str, bool] = TTLCache(
            max_entries=max_entries, ttl_s=ttl_s, clock=clock
        )

    def is_fresh(self, key: str) -> bool:
        return key in self._seen

    def touch(self, key: str) -> None:
        self._seen.set(key, True)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _stage_ms(
    received_at: float,
    prepared: float,
    invoked_at: float,
    first_byte_at: float | None,
    agent_end: float,
    *,
    posted: float | None = None,
    end: float | None = None,
) -> dict[str, int | None]:
    """An answer's stage latencies in ms, named as the `answered` log line and
    `Metrics.answer` take them; a stage that did not happen is None. The total runs to
    `end`, by default the post (or the agent's end when nothing was posted)."""
    if end is None:
        end = posted if posted is not None else agent_end
    return {
        "total_ms": _ms(end - received_at),
        "queue_wait_ms": _ms(invoked_at - prepared),
        "first_byte_ms": _ms(first_byte_at - invoked_at) if first_byte_at else None,
        "agent_ms": _ms(agent_end - invoked_at),
        "post_ms": _ms(posted - agent_end) if posted is not None else None,
    }


class Gateway:
    def __init__(
        self,
        *,
        web: SlackWeb,
        agent: Agent,
        poster: Poster,
        http: httpx.AsyncClient,
        options: GatewayOptions,
        bot_user_id: str,
        publisher: FirehosePublisher | None = None,
        sessions: SessionStore | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._web = web
        self._agent = agent
        self._poster = poster
        self._http = http
        self._opts = options
        self._bot_user_id = bot_user_id
        self._publisher = publisher
        self._metrics: Metrics = metrics or NullMetrics()
        self._clock = clock
        self._sessions: SessionStore = sessions or MemorySessionStore(
            options.session_ttl_s, clock=clock
        )
        self._seen: TTLCache[tuple[str, ...], bool] = TTLCache(
            max_entries=SEEN_EVENTS_MAX, ttl_s=SEEN_EVENTS_TTL_S, clock=clock
        )
        self._users: TTLCache[str, dict[str, str]] = TTLCache(
            max_entries=USER_CACHE_MAX, ttl_s=USER_CACHE_TTL_S, clock=clock
        )
        self._slots = asyncio.Semaphore(options.max_concurrent)
        self._file_budget = ByteBudget(max(1, options.max_inflight_file_bytes))
        self._session_locks: dict[str, asyncio.Lock] = {}
        self._session_waiters: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._closing = False
        self.answered = 0
        self.failed = 0
        self.busy = 0

    # ---- intake (synchronous, called from the socket receive loop) ----

    @property
    def pending(self) -> int:
        """Accepted messages not yet finished (running or waiting)."""
        return self._pending

    @property
    def file_budget(self) -> ByteBudget:
        """Attachment bytes in flight across all messages (ARK_MAX_INFLIGHT_FILE_MB)."""
        return self._file_budget

    def on_envelope(self, envelope: Envelope) -> None:
        received_at = self._clock()
        if envelope.type != "events_api":
            log.debug("envelope_ignored", type=envelope.type, envelope_id=envelope.envelope_id)
            return
        decision = route(
            envelope.payload, bot_user_id=self._bot_user_id, dm_replies=self._opts.dm_replies
        )
        if isinstance(decision, Ignored):
            log.debug("event_ignored", reason=decision.reason, envelope_id=envelope.envelope_id)
            return
        keys: list[tuple[str, ...]] = [("msg", decision.channel, decision.ts)]
        if decision.event_id:
            keys.append(("ev", decision.event_id))
        if any(key in self._seen for key in keys):
            log.info(
                "event_duplicate",
                event_id=decision.event_id,
                channel=decision.channel,
                ts=decision.ts,
                retry_attempt=envelope.retry_attempt,
            )
            return
        for key in keys:
            self._seen.set(key, True)
        log.info(
            "event_received",
            kind=decision.kind,
            channel=decision.channel,
            user=decision.user,
            ts=decision.ts,
            event_id=decision.event_id,
            retry_attempt=envelope.retry_attempt or None,
            files=len(decision.files) or None,
        )
        self.submit(decision, received_at)

    def submit(self, message: Message, received_at: float | None = None) -> bool:
        """Accept a message for answering, or tell the user Ark is busy. True if accepted."""
        received_at = self._clock() if received_at is None else received_at
        target = ReplyTarget(message.channel, message.reply_thread_ts)
        if self._closing or self._pending >= self._opts.max_concurrent + self._opts.max_queued:
            self.busy += 1
            log.warning("busy", channel=message.channel, ts=message.ts, pending=self._pending)
            self._metrics.answer("busy")
            self._spawn(self._notice(target, BUSY_REPLY))
            return False
        self._pending += 1
        self._spawn(self._handle(message, target, received_at))
        return True

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- shutdown ----

    async def drain(self, deadline_s: float, *, notices_s: float = NOTICE_TIMEOUT_S + 1) -> bool:
        """Finish in-flight answers within `deadline_s`; after it, each unfinished message
        gets a short restart notice, all within `notices_s` more. True when everything
        finished in time."""
        self._closing = True
        tasks = set(self._tasks)
        if not tasks:
            return True
        log.info("draining", tasks=len(tasks), deadline_s=deadline_s)
        _, unfinished = await asyncio.wait(tasks, timeout=deadline_s)
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning("drain_deadline", unfinished=len(unfinished))
            await asyncio.wait(unfinished, timeout=notices_s)
        return not unfinished

    # ---- one message ----

    async def _notice(self, target: ReplyTarget, text: str) -> None:
        try:
            await self._poster.post_notice(target, text)
        except SlackApiError as exc:
            log.error("notice_failed", channel=target.channel, error=exc.code)

    @asynccontextmanager
    async def _session(self, key: str) -> AsyncIterator[None]:
        """One invocation at a time per session, in arrival order (asyncio.Lock is FIFO)."""
        lock = self._session_locks.get(key)
        if lock is None:
            lock = self._session_locks[key] = asyncio.Lock()
        self._session_waiters[key] = self._session_waiters.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._session_waiters[key] -= 1
            if self._session_waiters[key] == 0:
                del self._session_waiters[key]
                del self._session_locks[key]

    async def _handle(self, msg: Message, target: ReplyTarget, received_at: float) -> None:
        # :eyes: goes up alongside the answer's preparation, not before it: the agent is not
        # kept waiting for a Slack round trip. It comes down once both are done.
        reaction = asyncio.ensure_future(self._react(msg, add=True))
        try:
            async with self._session(msg.session_key):
                await self._answer(msg, target, received_at)
        except asyncio.CancelledError:
            log.warning("answer_cancelled", channel=msg.channel, ts=msg.ts)
            self._metrics.answer("cancelled", total_ms=_ms(self._clock() - received_at))
            with suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(NOTICE_TIMEOUT_S):
                    await self._poster.post_notice(target, SHUTDOWN_REPLY)
            raise
        except Exception as exc:  # the last line of defence: the user still hears back
            self.failed += 1
            log.exception("answer_failed", channel=msg.channel, ts=msg.ts, kind="internal")
            self._metrics.answer(
                "error_slack" if isinstance(exc, SlackApiError) else "error_internal",
                total_ms=_ms(self._clock() - received_at),
            )
            if not isinstance(exc, SlackApiError):
                await self._notice(target, ERROR_REPLY)
        finally:
            self._pending -= 1
            with suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(NOTICE_TIMEOUT_S):
                    if await reaction:
                        await self._react(msg, add=False)
            reaction.cancel()  # still pending only when Slack did not answer in time

    async def _react(self, msg: Message, *, add: bool) -> bool:
        try:
            if add:
                await self._web.add_reaction(msg.channel, msg.ts, EYES_REACTION)
            else:
                await self._web.remove_reaction(msg.channel, msg.ts, EYES_REACTION)
        except SlackApiError as exc:
            log.warning("reaction_failed", channel=msg.channel, add=add, error=exc.code)
            return False
        return True

    async def _answer(self, msg: Message, target: ReplyTarget, received_at: float) -> None:
        started = self._clock()
        plan: slack_files.FilePlan | None = None
        if msg.files:
            plan = slack_files.plan_files(slack_files.parse_files(list(msg.files)))
        # The message's attachment bytes are held from before the download until the agent
        # has them (its first event) or the invocation ends, on every path.
        lease = await self._reserve_file_bytes(msg, target, plan)
        try:
            await self._answer_holding(msg, target, received_at, started, plan, lease)
        finally:
            lease.release()

    async def _reserve_file_bytes(
        self, msg: Message, target: ReplyTarget, plan: slack_files.FilePlan | None
    ) -> Lease:
        nbytes = in_flight_bytes(slack_files.planned_bytes(plan)) if plan is not None else 0
        if nbytes <= 0:
            return await self._file_budget.acquire(0)
        waited_from = self._clock()
        told = False

        def tell_queued() -> None:
            nonlocal told
            told = True
            log.info(
                "files_queued",
                channel=msg.channel,
                ts=msg.ts,
                bytes=nbytes,
                in_use=self._file_budget.in_use,
                waiting=self._file_budget.waiting,
            )
            self._spawn(self._notice(target, FILES_QUEUED_NOTICE))

        lease = await self._file_budget.acquire(
            nbytes, patience_s=self._opts.files_queued_notice_s, on_long_wait=tell_queued
        )
        waited = self._clock() - waited_from
        if told or waited >= 0.001:
            log.info("files_admitted", channel=msg.channel, ts=msg.ts, wait_ms=_ms(waited))
        return lease

    async def _answer_holding(
        self,
        msg: Message,
        target: ReplyTarget,
        received_at: float,
        started: float,
        plan: slack_files.FilePlan | None,
        lease: Lease,
    ) -> None:
        if plan is None and msg.user in self._users and not self._wants_context(msg):
            # Nothing to fetch: no task hop, so the agent request leaves before anything
            # else queued on the loop (the :eyes: reaction) gets to run.
            attributes, context = await self._user_attributes(msg.user), None
            inputs: list[InputFile] = []
            notices: list[str] = []
        else:
            attributes, context, (inputs, notices) = await asyncio.gather(
                self._user_attributes(msg.user),
                self._context(msg),
                self._input_files(plan),
            )
        prepared = self._clock()
        for notice in notices:
            await self._notice(target, notice)
        text = msg.text
        if not text and not inputs:
            log.info("nothing_to_answer", channel=msg.channel, ts=msg.ts)
            return
        if not text:
            text = FILES_ONLY_PROMPT.format(names=", ".join(f.name for f in inputs))
        request: AgentRequest | None = AgentRequest(
            session_id=msg.session_id,
            input_text=with_context(context, text),
            prompt_session_attributes=attributes,
            files=tuple(inputs),
            enable_trace=self._opts.enable_trace,
        )
        file_count = len(inputs)
        del inputs  # the request holds the only reference to the file bytes
        if not file_count:
            lease.release()

        builder = ResponseBuilder()
        first_byte_at: float | None = None
        async with self._slots:
            invoked_at = self._clock()
            log.info(
                "agent_invoked",
                session_id=msg.session_id,
                files=file_count or None,
                context_chars=len(context) if context else None,
                queue_wait_ms=_ms(invoked_at - prepared),
                prepare_ms=_ms(prepared - started),
            )
            assert request is not None
            # The stream owns the request from here: once the agent has sent it (its first
            # event), nothing references the file bytes and their budget is given back.
            stream = self._agent.invoke(request)
            request = None
            try:
                async for event in stream:
                    if first_byte_at is None:
                        first_byte_at = self._clock()
                        lease.release()
                    builder.add(event)
            except AgentError as exc:
                lease.release()
                partial = builder.result()
                self.failed += 1
                failed_at = self._clock()
                stages = _stage_ms(received_at, prepared, invoked_at, first_byte_at, failed_at)
                self._metrics.answer("error_agent", input_files=file_count, **stages)
                log.error(
                    "agent_failed",
                    session_id=msg.session_id,
                    kind=exc.kind,
                    code=exc.code,
                    retryable=exc.retryable,
                    error=str(exc),
                    partial_chars=len(partial.text),
                )
                if partial.text.strip():
                    await self._poster.post_answer(target, partial)
                    await self._notice(target, INCOMPLETE_NOTICE)
                else:
                    await self._notice(target, ERROR_REPLY)
                return
            finally:
                del stream
                lease.release()
            agent_done = self._clock()
        response = builder.result()
        if not response.text.strip() and not response.files and not response.sources:
            self.failed += 1
            log.error("agent_empty_answer", session_id=msg.session_id)
            stages = _stage_ms(
                received_at, prepared, invoked_at, first_byte_at, agent_done, end=self._clock()
            )
            self._metrics.answer("error_empty", input_files=file_count, **stages)
            await self._notice(target, ERROR_REPLY)
            return
        parts = await self._poster.post_answer(target, response)
        posted = self._clock()
        self._sessions.touch(msg.session_key)
        self.answered += 1
        stages = _stage_ms(
            received_at, prepared, invoked_at, first_byte_at, agent_done, posted=posted
        )
        log.info(
            "answered",
            session_id=msg.session_id,
            channel=msg.channel,
            parts=parts,
            chars=len(response.text),
            sources=len(response.sources) or None,
            files_out=len(response.files) or None,
            **stages,
        )
        self._metrics.answer("answered", input_files=file_count, **stages)
        self._publish(msg, response)

    def _publish(self, msg: Message, response: AgentResponse) -> None:
        if self._publisher is None:
            return
        from ark.analytics import build_record

        try:
            record = build_record(
                timestamp=datetime.now(UTC),
                user_id=msg.user,
                thread_id=msg.reply_thread_ts or msg.session_key,
                message_length=len(msg.text),
                response_length=len(response.text.encode("utf-8")),
                trace=response.trace,
            )
        except Exception:
            log.exception("analytics_record_failed")
            return
        self._publisher.publish(record)

    # ---- preparation: each part degrades gracefully ----

    async def _user_attributes(self, user: str) -> dict[str, str]:
        attributes = {"current_datetime": datetime.now(UTC).isoformat(timespec="seconds")}
        cached = self._users.get(user)
        if cached is None:
            try:
                info = await self._web.users_info(user)
            except SlackApiError as exc:
                log.warning("user_info_failed", user=user, error=exc.code)
                return attributes
            cached = _user_fields(info)
            self._users.set(user, cached)
        attributes.update(cached)
        return attributes

    def _wants_context(self, msg: Message) -> bool:
        return msg.history is not None and not self._sessions.is_fresh(msg.session_key)

    async def _context(self, msg: Message) -> str | None:
        if not self._wants_context(msg):
            return None
        started = self._clock()
        try:
            if msg.history == "replies":
                assert msg.history_ts is not None
                messages = await self._web.conversations_replies(
                    msg.channel, msg.history_ts, limit=HISTORY_LIMIT
                )
            else:
                messages = await self._web.conversations_history(msg.channel, limit=HISTORY_LIMIT)
        except SlackApiError as exc:
            log.warning("context_fetch_failed", channel=msg.channel, error=exc.code)
            return None
        context = format_context(messages, bot_user_id=self._bot_user_id, current_ts=msg.ts)
        log.info(
            "context_restored",
            channel=msg.channel,
            source=msg.history,
            messages=len(messages),
            chars=len(context) if context else 0,
            fetch_ms=_ms(self._clock() - started),
        )
        return context

    async def _input_files(
        self, plan: slack_files.FilePlan | None
    ) -> tuple[list[InputFile], list[str]]:
        if plan is None:
            return [], []
        notices: list[str] = []
        if plan.unsupported:
            notices.append(UNSUPPORTED_FILE_REPLY)
        skipped = list(plan.skipped)
        inputs: list[InputFile] = []
        # what the attachment budget reserved for this message (the declared sizes): a body
        # longer than Slack said it would be is refused, not read past the reservation
        budget = slack_files.planned_bytes(plan)
        for file, media_type in plan.accepted:
            if budget <= 0:
                limit = slack_files.format_size(slack_files.MAX_TOTAL_FILE_BYTES)
                skipped.append((file.name, f"the files of one message may total at most {limit}"))
                continue
            try:
                data = await slack_files.download_file(
                    self._http,
                    file,
                    token=self._opts.bot_token,
                    prefixes=self._opts.file_url_prefixes,
                    max_bytes=budget,
                )
            except FileRejected as exc:
                log.warning("file_rejected", name=exc.name, reason=exc.reason)
                skipped.append((exc.name, exc.reason))
                continue
            budget -= len(data)
            inputs.append(InputFile(name=file.name, media_type=media_type, data=data))
            del data
        if skipped:
            listed = "\n".join(f"• {name}: {reason}" for name, reason in skipped)
            notices.append(f"I left out {len(skipped)} file(s):\n{listed}")
        return inputs, notices


def _user_fields(info: Mapping[str, Any]) -> dict[str, str]:
    profile = info.get("profile") if isinstance(info.get("profile"), Mapping) else {}
    assert isinstance(profile, Mapping)
    fields = {
        "user_name": info.get("real_name") or profile.get("real_name") or info.get("name"),
        "user_timezone": info.get("tz"),
        "user_title": profile.get("title"),
    }
    return {k: v for k, v in fields.items() if isinstance(v, str) and v}
