"""`ark chat`: a conversation with the configured agent in this terminal, through Ark itself.

    ark chat [--env-file F] [--slack] [--out DIR] [--name N] [--title T] [--tz Z]
             [--log-level L]

For agent authors who want to try their agent before a Slack app exists. Each line typed is
one Slack direct message from the local user, answered by the real `Gateway`: the same
session ids (a conversation is a DM thread, or the DM itself with DM_REPLIES=flat), the same
promptSessionAttributes (the local user's name and time zone), the same context restore when
the session has gone idle past SESSION_TTL_MINUTES, the same file rules. The answer prints as
its markdown source (footnotes, then Sources); `--slack` also prints the exact Web API
payloads Ark would send (chat.postMessage bodies, the file upload steps). Files the agent
returns are saved in `--out` (default: the current directory).

Commands: `/file PATH` attaches a local file to the next message (an empty line then sends
the files alone), `/new` starts a new conversation, `/session` shows the session id, `/help`,
`/quit`. Ctrl-D (end of input) ends the chat with status 0; Ctrl-C abandons the answer in
progress (or the line being typed). Errors print as one line on standard error and the
conversation goes on. A bad configuration is one line and status 2.

The design: the real `SlackWeb`, `SlackPoster` and `Gateway` run unchanged over an
`httpx.MockTransport` whose handler, `LocalSlack`, plays the Slack Web API in process
(users.info answers with the local user, conversations.replies/history with this chat's
transcript, chat.postMessage records the payload and adds it to the transcript, attachments
are served from memory at files.slack.com URLs). No Slack token or network is involved; only
Bedrock is real. `TerminalPoster` (a `Poster`) prints each answer and passes it on to the
`SlackPoster`, so what `--slack` shows is what Ark's own posting code produced.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import mimetypes
import os
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import botocore.exceptions
import httpx
import orjson

from ark import __version__
from ark.bedrock.response import ResponseBuilder
from ark.bedrock.types import Agent, AgentEvent, AgentRequest
from ark.config import ConfigError, Settings, load_environment, load_settings
from ark.errors import (
    ERROR_REPLY,
    SHUTDOWN_REPLY,
    UNSUPPORTED_FILE_REPLY,
    AgentError,
)
from ark.events import Ignored, Message, route, session_id_for_dm, session_id_for_ts

if TYPE_CHECKING:
    from ark.aws import AwsClients
    from ark.bedrock.response import AgentResponse
    from ark.gateway import Gateway
    from ark.posting import ReplyTarget, SlackPoster

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130

PROMPT = "you> "
# Who is who in the local "workspace". The ids look like Slack's; nothing leaves the process.
USER_ID = "U0LOCALUSER"
BOT_USER_ID = "U0ARKCHAT"
BOT_ID = "B0ARKCHAT"
TEAM_ID = "T0ARKCHAT"
CHANNEL_PREFIX = "D0ARKCHAT"  # + a number; a new one per conversation with DM_REPLIES=flat
# Slack-shaped stand-ins: `ark chat` needs neither token and sends neither anywhere.
CHAT_BOT_TOKEN = "xoxb-ark-chat-local"
CHAT_APP_TOKEN = "xapp-ark-chat-local"
SLACK_ONLY_VARIABLES = ("SLACK_API_URL", "SLACK_FILE_URL_PREFIXES")
API_HOST = "slack.com"
API_PATH = "/api/"
FILES_HOST = "files.slack.com"
DOWNLOAD_PATH = "/files-pri/"
UPLOAD_PATH = "/upload/v1/"
# Calls `--slack` prints: what Ark posts (reactions and reads are left out)
SHOWN_METHODS = (
    "chat.postMessage",
    "files.getUploadURLExternal",
    "files.upload",
    "files.completeUploadExternal",
)
CANCEL_GRACE_S = 5.0  # an abandoned answer gets this long to wind down
DEFAULT_FILE_NAME = "file"

HELP = """\
/file PATH   attach a local file to your next message (at most 5 files, 10 MB in all);
             an empty line then sends the files alone
/new         start a new conversation (a new agent session)
/session     show the current session id
/help        this list
/quit        end the chat (so does Ctrl-D)"""


# --------------------------------------------------------------------------- configuration


def load_chat_settings(env: Mapping[str, str]) -> Settings:
    """Settings for `ark chat`: the same variables and validation as `ark`, except that the
    Slack-only ones (the two tokens, SLACK_API_URL, SLACK_FILE_URL_PREFIXES) are not needed
    and are ignored. Raises ConfigError."""
    patched = dict(env)
    patched["SLACK_BOT_TOKEN"] = CHAT_BOT_TOKEN
    patched["SLACK_APP_TOKEN"] = CHAT_APP_TOKEN
    for name in SLACK_ONLY_VARIABLES:
        patched.pop(name, None)
    return load_settings(patched)


def local_timezone(env: Mapping[str, str]) -> str:
    """The local time zone as Slack names one (IANA, `Europe/Paris`): TZ when it names a
    zone, else the /etc/localtime link, else /etc/timezone, else the zone's abbreviation."""
    tz = env.get("TZ", "").strip().lstrip(":")
    if "zoneinfo/" in tz:
        tz = tz.split("zoneinfo/", 1)[1]
    if tz and not tz.startswith("/"):
        return tz
    try:
        target = os.path.realpath("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    try:
        name = Path("/etc/timezone").read_text(encoding="utf-8").strip()
        if name:
            return name
    except OSError:
        pass
    return datetime.now().astimezone().tzname() or "UTC"


@dataclass(frozen=True, slots=True)
class LocalUser:
    """The person at the terminal, as users.info describes them to the gateway."""

    name: str
    timezone: str
    title: str = ""
    id: str = USER_ID

    @classmethod
    def from_system(cls, env: Mapping[str, str]) -> LocalUser:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (some containers)
            name = "user"
        return cls(name=name, timezone=local_timezone(env))

    def users_info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "real_name": self.name,
            "tz": self.timezone,
            "profile": {"real_name": self.name, "display_name": self.name, "title": self.title},
        }


# --------------------------------------------------------------------------- Slack, locally


@dataclass(frozen=True, slots=True)
class SlackCall:
    """One Web API call the gateway made: the method and its decoded parameters."""

    method: str
    params: Mapping[str, Any]


class LocalSlack:
    """The Slack Web API for one terminal user, in process: the handler of an
    `httpx.MockTransport` under the real `SlackWeb` (and the gateway's download client).

    It keeps the chat's transcript per channel (the user's messages, added by the chat, and
    every chat.postMessage) so conversations.replies/history can restore context, serves
    attachments registered with `add_file`, accepts uploads, and records every call in
    `calls`. It never fails a call it knows."""

    def __init__(self, user: LocalUser, *, clock: Callable[[], float] = time.time) -> None:
        self.user = user
        self.calls: list[SlackCall] = []
        self._clock = clock
        self._channels: dict[str, list[dict[str, Any]]] = {}
        self._files: dict[str, bytes] = {}
        self._last_us = 0
        self._file_seq = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def new_ts(self) -> str:
        """A fresh message ts (`seconds.micros`), strictly increasing."""
        self._last_us = max(int(self._clock() * 1_000_000), self._last_us + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def add_message(self, channel: str, message: Mapping[str, Any]) -> None:
        self._channels.setdefault(channel, []).append(dict(message))

    def add_file(self, data: bytes) -> tuple[str, str]:
        """Serve `data` as a Slack file; returns (file id, url_private_download)."""
        self._file_seq += 1
        file_id = f"F0CHAT{self._file_seq:05d}"
        self._files[file_id] = data
        return file_id, f"https://{FILES_HOST}{DOWNLOAD_PATH}{TEAM_ID}-{file_id}/download"

    def drop_file(self, file_id: str) -> None:
        self._files.pop(file_id, None)

    # -- the handler ------------------------------------------------------------------

    def _handle(self, request: httpx.Request) -> httpx.Response:
        host, path = request.url.host, request.url.path
        if host == FILES_HOST and path.startswith(DOWNLOAD_PATH):
            return self._download(path)
        if host == FILES_HOST and path.startswith(UPLOAD_PATH):
            self.calls.append(
                SlackCall(
                    "files.upload", {"upload_url": str(request.url), "bytes": len(request.content)}
                )
            )
            return httpx.Response(200, text="OK")
        if host == API_HOST and path.startswith(API_PATH):
            method = path[len(API_PATH) :]
            params = _decode_params(request)
            self.calls.append(SlackCall(method, params))
            return httpx.Response(200, json=self._api(method, params))
        return httpx.Response(404)

    def _download(self, path: str) -> httpx.Response:
        segment = path[len(DOWNLOAD_PATH) :].split("/", 1)[0]
        data = self._files.get(segment.removeprefix(f"{TEAM_ID}-"))
        if data is None:
            return httpx.Response(404)
        return httpx.Response(
            200, content=data, headers={"content-type": "application/octet-stream"}
        )

    def _api(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if method == "users.info":
            if params.get("user") != self.user.id:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": self.user.users_info()}
        if method == "conversations.replies":
            return {"ok": True, "messages": self._thread(params), "has_more": False}
        if method == "conversations.history":
            return {"ok": True, "messages": self._history(params), "has_more": False}
        if method == "chat.postMessage":
            return self._post(params)
        if method in ("reactions.add", "reactions.remove"):
            return {"ok": True}
        if method == "files.getUploadURLExternal":
            self._file_seq += 1
            file_id = f"F0CHAT{self._file_seq:05d}"
            return {
                "ok": True,
                "upload_url": f"https://{FILES_HOST}{UPLOAD_PATH}{file_id}",
                "file_id": file_id,
            }
        if method == "files.completeUploadExternal":
            return {"ok": True, "files": list(params.get("files") or [])}
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER_ID, "team_id": TEAM_ID, "bot_id": BOT_ID}
        return {"ok": False, "error": "unknown_method"}

    def _post(self, params: Mapping[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel") or "")
        ts = self.new_ts()
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "text": str(params.get("text") or ""),
            "ts": ts,
        }
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        self.add_message(channel, message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _thread(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The thread's messages, root first, as conversations.replies answers."""
        root = params.get("ts")
        messages = self._channels.get(str(params.get("channel")), [])
        found = [m for m in messages if m["ts"] == root or m.get("thread_ts") == root]
        return found[: _limit(params)]

    def _history(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Top-level messages, newest first, as conversations.history answers."""
        messages = self._channels.get(str(params.get("channel")), [])
        top = [m for m in messages if m.get("thread_ts") in (None, m["ts"])]
        return list(reversed(top))[: _limit(params)]


def _limit(params: Mapping[str, Any]) -> int:
    try:
        return max(1, int(params.get("limit") or 100))
    except (TypeError, ValueError):
        return 100


def _decode_params(request: httpx.Request) -> dict[str, Any]:
    body = request.content
    if request.headers.get("content-type", "").startswith("application/json"):
        decoded = orjson.loads(body or b"{}")
        return decoded if isinstance(decoded, dict) else {}
    pairs = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
    return {key: values[0] for key, values in pairs.items()}


# --------------------------------------------------------------------------- agent, poster


class RecordingAgent:
    """Passes requests to the real agent and remembers how the last one ended, so the
    terminal can say why an answer failed (the gateway only posts its generic reply)."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self.error: AgentError | None = None
        self.empty = False

    def reset(self) -> None:
        self.error = None
        self.empty = False

    async def invoke(self, request: AgentRequest) -> AsyncIterator[AgentEvent]:
        stream = self._agent.invoke(request)
        del request  # the inner stream holds the only reference to the file bytes
        builder = ResponseBuilder()
        try:
            async for event in stream:
                builder.add(event)
                yield event
        except AgentError as exc:
            self.error = exc
            raise
        answer = builder.result()
        self.empty = not answer.text.strip() and not answer.files and not answer.sources


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def safe_file_name(name: str) -> str:
    """A name to save an agent's file under: its last path segment, without leading dots or
    control characters (`../../.bashrc` becomes `bashrc`)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c if c.isprintable() else "_" for c in base).strip().lstrip(".")
    return base or DEFAULT_FILE_NAME


def _unused_path(directory: Path, name: str) -> Path:
    path = directory / name
    stem, suffix = path.stem, path.suffix
    n = 1
    while path.exists():
        path = directory / f"{stem}-{n}{suffix}"
        n += 1
    return path


class Console:
    """Where the chat writes: the conversation on `out`, error lines on `err`."""

    def __init__(self, out: IO[str], err: IO[str]) -> None:
        self.out = out
        self.err = err

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def error(self, text: str) -> None:
        self.note(f"error: {text}")

    def note(self, text: str) -> None:
        """One line on `err` (after whatever `out` still holds)."""
        self.out.flush()
        self.err.write(_one_line(text) + "\n")
        self.err.flush()


class TerminalPoster:
    """The `Poster` of `ark chat`: prints each answer as readable text (the markdown the
    renderer starts from, footnotes and Sources included), saves the agent's files, then
    hands the answer to Ark's real `SlackPoster` (over `LocalSlack`) and, with
    `show_slack`, prints the Web API payloads that produced."""

    def __init__(
        self,
        slack_poster: SlackPoster,
        local: LocalSlack,
        agent: RecordingAgent,
        console: Console,
        *,
        show_slack: bool,
        out_dir: Path,
    ) -> None:
        self._slack = slack_poster
        self._local = local
        self._agent = agent
        self._console = console
        self._show_slack = show_slack
        self._out_dir = out_dir
        self.post_error: BaseException | None = None

    async def post_answer(self, target: ReplyTarget, response: AgentResponse) -> int:
        from ark.slack.render.citations import compose_answer

        text = compose_answer(response.text, response.citations, response.sources)
        if text:
            self._console.say(text)
        for file in response.files:
            self._save(file.name, file.data)
        if response.return_control is not None:
            self._console.say(
                "ark: the agent returned control (returnControl "
                f"{response.return_control.invocation_id or '?'}), which Ark does not answer"
            )
        mark = len(self._local.calls)
        try:
            posted = int(await self._slack.post_answer(target, response))
        except Exception as exc:
            self.post_error = exc
            raise
        finally:
            self._show_calls(mark)
        self._console.say()
        return posted

    async def post_notice(self, target: ReplyTarget, text: str) -> None:
        from ark.gateway import INCOMPLETE_NOTICE

        if text == SHUTDOWN_REPLY:
            return  # the answer was abandoned with Ctrl-C: the chat says so itself
        mark = len(self._local.calls)
        await self._slack.post_notice(target, text)
        if text == ERROR_REPLY:
            self._console.error(self._failure())
        elif text == INCOMPLETE_NOTICE:
            self._console.error(f"the answer above is incomplete: {self._failure()}")
        else:
            self._console.say(f"ark: {text}")
        self._show_calls(mark)

    def _failure(self) -> str:
        if self.post_error is not None:
            exc = self.post_error
            return f"posting the answer failed: {type(exc).__name__}: {exc}"
        error = self._agent.error
        if error is not None:
            code = f" ({error.code})" if error.code and error.code not in str(error) else ""
            return f"the agent failed: {error}{code}"
        if self._agent.empty:
            return "the agent returned an empty answer (no text, files or sources)"
        return f"{ERROR_REPLY} (run with --log-level debug to see why)"

    def _save(self, name: str, data: bytes) -> None:
        from ark.slack.files import format_size

        try:
            self._out_dir.mkdir(parents=True, exist_ok=True)
            path = _unused_path(self._out_dir, safe_file_name(name))
            path.write_bytes(data)
        except OSError as exc:
            self._console.error(f"could not save the agent's file {name}: {exc}")
            return
        self._console.say(f"saved: {path} ({format_size(len(data))})")

    def _show_calls(self, mark: int) -> None:
        if not self._show_slack:
            return
        for call in self._local.calls[mark:]:
            if call.method in SHOWN_METHODS:
                self._console.say(f"[slack] {call.method}")
                self._console.say(orjson.dumps(call.params, option=orjson.OPT_INDENT_2).decode())


# --------------------------------------------------------------------------- the chat


@dataclass(frozen=True, slots=True)
class ChatOptions:
    show_slack: bool = False
    out_dir: Path = Path(".")
    user: LocalUser | None = None  # None: the local user (getpass, local time zone)


@dataclass
class _Attachment:
    file_id: str
    name: str
    mimetype: str | None
    size: int
    url: str = field(repr=False)

    def slack_file(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.file_id,
            "name": self.name,
            "title": self.name,
            "size": self.size,
            "url_private_download": self.url,
            "url_private": self.url,
        }
        if self.mimetype:
            entry["mimetype"] = self.mimetype
        return entry


class ChatSession:
    """One `ark chat` conversation: the real Gateway over LocalSlack and the real Bedrock
    agent. `async with ChatSession(...)` opens the AWS client; `handle(line)` runs one line
    (a message or a command) to the end and returns False when the chat should end.

    `agent` replaces the Bedrock agent (tests); `clock` is the gateway's monotonic clock
    (session staleness) and `wall_clock` dates Slack timestamps."""

    def __init__(
        self,
        settings: Settings,
        env: Mapping[str, str],
        console: Console,
        options: ChatOptions | None = None,
        *,
        agent: Agent | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._env = env
        self._console = console
        self._options = options = options or ChatOptions()
        self._inner_agent = agent
        self._clock = clock
        self.local = LocalSlack(options.user or LocalUser.from_system(env), clock=wall_clock)
        self._http: httpx.AsyncClient | None = None
        self._aws: AwsClients | None = None
        self._gateway: Gateway | None = None
        self._recorder: RecordingAgent | None = None
        self._poster: TerminalPoster | None = None
        self._channel_seq = 1
        self._thread_ts: str | None = None  # the conversation's root (thread mode)
        self._pending: list[_Attachment] = []
        self.region = ""

    @property
    def channel(self) -> str:
        return f"{CHANNEL_PREFIX}{self._channel_seq}"

    @property
    def flat(self) -> bool:
        return self.settings.dm_replies == "flat"

    @property
    def session_id(self) -> str | None:
        """The Bedrock session id of the current conversation (None before its first
        message in thread mode)."""
        if self.flat:
            return session_id_for_dm(self.channel)
        return session_id_for_ts(self._thread_ts) if self._thread_ts else None

    async def __aenter__(self) -> ChatSession:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Build the clients and the gateway. Raises what AwsClients raises (a bad profile)."""
        from ark.aws import AwsClients, resolve_region
        from ark.bedrock.agent import BedrockAgent
        from ark.gateway import Gateway, GatewayOptions
        from ark.posting import SlackPoster
        from ark.slack.web import SlackWeb

        s = self.settings
        self.region = resolve_region(s.aws_region, s.aws_profile, self._env)
        inner = self._inner_agent
        if inner is None:
            self._aws = AwsClients(
                region=self.region,
                profile=s.aws_profile,
                max_concurrency=1,
                firehose=False,
                env=self._env,
            )
            await self._aws.__aenter__()
            inner = BedrockAgent(
                self._aws.agent_runtime, agent_id=s.agent_id, agent_alias_id=s.agent_alias_id
            )
        self._http = httpx.AsyncClient(transport=self.local.transport())
        web = SlackWeb(self._http, token=CHAT_BOT_TOKEN, max_retries=0)
        self._recorder = RecordingAgent(inner)
        self._poster = TerminalPoster(
            SlackPoster(web),
            self.local,
            self._recorder,
            self._console,
            show_slack=self._options.show_slack,
            out_dir=self._options.out_dir,
        )
        self._gateway = Gateway(
            web=web,
            agent=self._recorder,
            poster=self._poster,
            http=self._http,
            options=GatewayOptions(
                bot_token=CHAT_BOT_TOKEN,
                session_ttl_s=s.session_ttl_s,
                max_concurrent=1,
                max_queued=1,
                file_url_prefixes=(),
                dm_replies=s.dm_replies,
                enable_trace=False,
                max_inflight_file_bytes=s.max_inflight_file_mb * 1024 * 1024,
            ),
            bot_user_id=BOT_USER_ID,
            clock=self._clock,
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._aws is not None:
            aws, self._aws = self._aws, None
            await aws.__aexit__(None, None, None)

    # -- one line ---------------------------------------------------------------------

    async def handle(self, line: str) -> bool:
        """Run one input line to the end: a command, or a message and its answer.
        False means the chat ends (/quit)."""
        text = line.strip()
        if text.startswith("/"):
            command, _, rest = text.partition(" ")
            return self._command(command.lower(), rest.strip())
        if not text and not self._pending:
            return True
        await self._ask(text)
        return True

    def _command(self, command: str, rest: str) -> bool:
        if command in ("/quit", "/exit"):
            return False
        if command == "/file":
            self._attach(rest)
        elif command == "/new":
            self._new_conversation()
        elif command == "/session":
            self._console.say(
                f"session {self.session_id}"
                if self.session_id
                else "no session yet: your next message starts one"
            )
        elif command == "/help":
            self._console.say(HELP)
        else:
            self._console.error(f"unknown command {command} (try /help)")
        return True

    def _new_conversation(self) -> None:
        self._thread_ts = None
        if self.flat:
            self._channel_seq += 1
        if self._pending:
            for attachment in self._pending:
                self.local.drop_file(attachment.file_id)
            self._pending.clear()
            self._console.say("new conversation (attachments dropped)")
        else:
            self._console.say("new conversation")

    def _attach(self, argument: str) -> None:
        from ark.slack import files as slack_files

        raw = argument.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            raw = raw[1:-1]
        if not raw:
            self._console.error("usage: /file PATH")
            return
        path = Path(raw).expanduser()
        if not path.is_file():
            self._console.error(f"no such file: {path}")
            return
        name = path.name
        mimetype = mimetypes.guess_type(name)[0]
        if slack_files.media_type_for(name, mimetype) is None:
            self._console.error(f"{name}: {UNSUPPORTED_FILE_REPLY}")
            return
        try:
            size = path.stat().st_size
        except OSError as exc:
            self._console.error(f"cannot read {path}: {exc.strerror or exc}")
            return
        # the gateway's own rules (count, total size), applied now so the answer is at once
        planned = [
            slack_files.SlackFile(a.file_id, a.name, a.mimetype, a.size, a.url)
            for a in self._pending
        ]
        planned.append(slack_files.SlackFile("new", name, mimetype, size, "new"))
        plan = slack_files.plan_files(planned)
        if len(plan.accepted) <= len(self._pending):
            reason = plan.skipped[-1][1] if plan.skipped else "it cannot be sent"
            self._console.error(f"{name} not attached: {reason}")
            return
        try:
            data = path.read_bytes()
        except OSError as exc:
            self._console.error(f"cannot read {path}: {exc.strerror or exc}")
            return
        file_id, url = self.local.add_file(data)
        self._pending.append(_Attachment(file_id, name, mimetype, len(data), url))
        self._console.say(
            f"attached {name} ({slack_files.format_size(len(data))}): "
            "it goes with your next message"
        )

    async def _ask(self, text: str) -> None:
        assert self._gateway is not None and self._recorder is not None
        assert self._poster is not None
        ts = self.local.new_ts()
        event: dict[str, Any] = {
            "type": "message",
            "channel_type": "im",
            "channel": self.channel,
            "user": self.local.user.id,
            "text": text,
            "ts": ts,
        }
        if self._thread_ts is not None and not self.flat:
            event["thread_ts"] = self._thread_ts
        attachments, self._pending = self._pending, []
        if attachments:
            event["subtype"] = "file_share"
            event["files"] = [a.slack_file() for a in attachments]
        message = route(
            {"event_id": f"Ev{ts.replace('.', '')}", "event": event},
            bot_user_id=BOT_USER_ID,
            dm_replies=self.settings.dm_replies,
        )
        if isinstance(message, Ignored):  # not expected: every line is a valid DM
            self._console.error(f"message not sent ({message.reason})")
            return
        self.local.add_message(self.channel, event)
        if not self.flat and self._thread_ts is None:
            self._thread_ts = ts
        self._recorder.reset()
        self._poster.post_error = None
        try:
            await self._submit(message)
        finally:
            for attachment in attachments:
                self.local.drop_file(attachment.file_id)

    async def _submit(self, message: Message) -> None:
        """Hand the message to the gateway and wait for everything it started for it (the
        answer task, or a notice) to finish. On cancellation (Ctrl-C) those tasks are
        cancelled too and given a moment to wind down."""
        assert self._gateway is not None
        before = asyncio.all_tasks()
        self._gateway.submit(message)
        started = asyncio.all_tasks() - before
        if not started:
            return
        try:
            await asyncio.wait(started)
        except asyncio.CancelledError:
            for task in started:
                task.cancel()
            await asyncio.wait(started, timeout=CANCEL_GRACE_S)
            raise
        for task in started:
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                self._console.error(f"internal error: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ark chat",
        description="Talk to the configured Bedrock agent in this terminal, through Ark's own "
        "pipeline (sessions, user attributes, context restore, files). No Slack app needed: "
        "only BEDROCK_AGENT_ID, BEDROCK_AGENT_ALIAS_ID and AWS credentials.",
        epilog="In the chat: /file PATH, /new, /session, /help, /quit. Ctrl-D ends.",
    )
    parser.add_argument(
        "--env-file", default=".env", help="dotenv file to read (default: ./.env if present)"
    )
    parser.add_argument(
        "--slack",
        action="store_true",
        help="also print the Slack Web API payloads Ark would send for each answer",
    )
    parser.add_argument(
        "--out",
        default=".",
        metavar="DIR",
        help="where files the agent returns are saved (default: the current directory)",
    )
    parser.add_argument("--name", help="user_name sent to the agent (default: your login)")
    parser.add_argument("--title", default="", help="user_title sent to the agent (default: none)")
    parser.add_argument(
        "--tz", help="user_timezone sent to the agent (default: this machine's, e.g. Europe/Paris)"
    )
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warn", "error"),
        help="show Ark's own log lines on standard error from this level (default: none)",
    )
    return parser


def _configure_logging(level: str | None, secrets: Sequence[str]) -> None:
    import logging

    from ark.log import configure_logging

    configure_logging(level or "error", "text", secrets)
    if level is None:
        # errors reach the user as one line each from the chat itself, not as log lines
        logging.getLogger("ark").setLevel(logging.CRITICAL + 1)


def _read_line(stdin: IO[str], interactive: bool) -> str | None:
    """The next input line, or None at the end of input (Ctrl-D)."""
    if interactive:
        try:
            return input(PROMPT)
        except EOFError:
            print()
            return None
    line = stdin.readline()
    return line if line else None


def _repl(
    runner: asyncio.Runner, chat: ChatSession, console: Console, stdin: IO[str], interactive: bool
) -> int:
    while True:
        try:
            line = _read_line(stdin, interactive)
        except KeyboardInterrupt:
            if not interactive:
                return EXIT_INTERRUPTED
            print()  # like a shell: Ctrl-C drops the line being typed
            continue
        if line is None:
            return EXIT_OK
        try:
            if not runner.run(chat.handle(line)):
                return EXIT_OK
        except KeyboardInterrupt:
            if not interactive:
                return EXIT_INTERRUPTED
            console.say()
            console.note("interrupted: the answer was abandoned")


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: IO[str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """`ark chat`: returns 0 at the end of input or /quit, 2 for a bad configuration (an
    unknown AWS profile included), 1 when the AWS client cannot be set up for another
    reason, 130 when interrupted outside a terminal."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    interactive = stdin is None and stdout is None and sys.stdin.isatty()
    stdin = stdin or sys.stdin
    console = Console(stdout or sys.stdout, stderr or sys.stderr)

    try:
        env = load_environment(dotenv_path=args.env_file)
        # botocore reads AWS_* (keys, profile, endpoints) from the process environment itself
        for key, value in env.items():
            os.environ.setdefault(key, value)
        settings = load_chat_settings(env)
    except ConfigError as exc:
        console.note(f"ark chat: invalid configuration: {'; '.join(exc.problems)}")
        return EXIT_CONFIG
    _configure_logging(args.log_level, settings.secrets())

    user = LocalUser.from_system(env)
    user = LocalUser(
        name=args.name or user.name, timezone=args.tz or user.timezone, title=args.title
    )
    options = ChatOptions(show_slack=args.slack, out_dir=Path(args.out), user=user)
    chat = ChatSession(settings, env, console, options)
    with asyncio.Runner() as runner:
        try:
            runner.run(chat.open())
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except Exception as exc:
            runner.run(chat.close())
            console.note(f"ark chat: cannot set up the AWS client: {exc}")
            # botocore's own errors here are configuration (an unknown AWS_PROFILE, say)
            return EXIT_CONFIG if isinstance(exc, botocore.exceptions.BotoCoreError) else EXIT_FATAL
        if interactive:
            with suppress(ImportError):
                import readline  # noqa: F401  (line editing and history for input())
            console.say(
                f"ark chat {__version__}: agent {settings.agent_id}, alias "
                f"{settings.agent_alias_id}, region {chat.region}, as {user.name} "
                f"({user.timezone}). /help for commands; Ctrl-D ends."
            )
        try:
            return _repl(runner, chat, console, stdin, interactive)
        finally:
            with suppress(KeyboardInterrupt):
                runner.run(chat.close())


if __name__ == "__main__":
    sys.exit(main())
