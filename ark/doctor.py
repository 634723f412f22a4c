"""`ark doctor`: preflight checks against the real Slack and AWS, one line per check.

    ark doctor [--env-file F] [--json] [--invoke] [--timeout S]

Reads the same configuration as `ark` (environment over `.env`, the same validation), then
checks, each bounded by `--timeout`:

* the configuration (one failed line per problem; checks needing a bad variable are skipped);
* the bot token (auth.test: team, bot user) and its granted scopes (`x-oauth-scopes`);
* the app token (apps.connections.open) and Socket Mode (a `hello` on a fresh WebSocket,
  closed at once; other open connections are reported);
* AWS: the region, where the credentials come from, who they are (STS GetCallerIdentity);
* the agent alias (bedrock-agent GetAgentAlias) and, with `--invoke`, one real question
  through the gateway's own `BedrockAgent` and client settings;
* the Firehose stream (DescribeDeliveryStream) when FIREHOSE_STREAM_NAME is set.

Exit status 0 when no check failed (warnings allowed), 1 otherwise. `--json` prints
`{"ok": bool, "checks": [{"name", "status", "detail", "fix"}]}`. Secrets never appear in
the output: every text passes through the log redactor. `run_doctor` is the async entry
(tests await it); `main` wraps it for the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import ssl
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

import botocore.exceptions
import orjson
from aiobotocore.session import AioSession

from ark import __version__
from ark.aws import (
    DEFAULT_REGION,
    AwsClients,
    _profile_region,
    client_config,
    profile_problem,
    resolve_region,
    session_profile,
)
from ark.bedrock.agent import BedrockAgent, classify_error
from ark.bedrock.types import AgentRequest, OutputFile, ReturnControl, TextChunk
from ark.config import ConfigError, Settings, load_environment, load_settings
from ark.errors import AgentError, SlackApiError
from ark.health import positive_number
from ark.log import Redactor

Status = Literal["ok", "fail", "warn", "skip"]

DEFAULT_TIMEOUT_S = 10.0
# An agent answer takes longer than a control-plane call: --invoke gets at least this long.
INVOKE_MIN_TIMEOUT_S = 60.0
ANSWER_PREVIEW_CHARS = 200
DOCTOR_QUESTION = (
    "This is a connectivity check from ark doctor. Please answer with one short sentence."
)
CONTROL_PLANE_TOTAL_MAX_ATTEMPTS = 2
WS_CLOSE_TIMEOUT_S = 2.0
MAX_FRAME_BYTES = 8 * 1024 * 1024

# Bot scopes Ark needs, by what the code does (see docs/slack-app-manifest.yaml):
REQUIRED_SCOPES: tuple[str, ...] = (
    "app_mentions:read",  # app_mention events
    "channels:history",  # conversations.replies/history in public channels
    "chat:write",  # chat.postMessage
    "files:read",  # downloading attachments with the bot token
    "files:write",  # files.getUploadURLExternal / files.completeUploadExternal
    "im:history",  # message.im events, conversations.replies/history in DMs
    "reactions:write",  # reactions.add / reactions.remove
    "users:read",  # users.info
)
# In the manifest, but Ark answers without them (only the restored context is missing).
OPTIONAL_SCOPES: tuple[str, ...] = (
    "groups:history",  # conversations.replies in private channels
    "mpim:history",  # conversations.replies in group DMs
)

TITLES: dict[str, str] = {
    "config": "Configuration",
    "slack_auth": "Slack bot token",
    "slack_scopes": "Slack bot scopes",
    "slack_app_token": "Slack app token",
    "socket_mode": "Socket Mode",
    "aws_region": "AWS region",
    "aws_credentials": "AWS credentials",
    "aws_identity": "AWS identity",
    "agent_alias": "Agent alias",
    "agent_invoke": "Agent answer",
    "firehose": "Firehose stream",
}

# What each check reads from the configuration: a problem in one of these skips the check.
_NEEDS: dict[str, frozenset[str]] = {
    "slack_auth": frozenset({"SLACK_BOT_TOKEN", "SLACK_API_URL"}),
    "slack_app_token": frozenset({"SLACK_APP_TOKEN", "SLACK_API_URL"}),
    "agent_alias": frozenset({"BEDROCK_AGENT_ID", "BEDROCK_AGENT_ALIAS_ID"}),
    "agent_invoke": frozenset({"BEDROCK_AGENT_ID", "BEDROCK_AGENT_ALIAS_ID"}),
    "aws_credentials": frozenset({"AWS_PROFILE"}),
}
# Valid stand-ins for bad required variables, so the rest of the configuration still loads.
_PLACEHOLDERS = {
    "SLACK_BOT_TOKEN": "xoxb-placeholder",
    "SLACK_APP_TOKEN": "xapp-placeholder",
    "BEDROCK_AGENT_ID": "PLACEHOLDR",
    "BEDROCK_AGENT_ALIAS_ID": "PLACEHOLDR",
}
_CONFIG_FIXES = {
    "SLACK_BOT_TOKEN": "Set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (OAuth & "
    "Permissions page, starts with xoxb-)",
    "SLACK_APP_TOKEN": "Set SLACK_APP_TOKEN to an app-level token with connections:write "
    "(Basic Information → App-Level Tokens, starts with xapp-)",
    "BEDROCK_AGENT_ID": "Set BEDROCK_AGENT_ID to the agent's 10-character id (Bedrock console "
    "→ Agents)",
    "BEDROCK_AGENT_ALIAS_ID": "Set BEDROCK_AGENT_ALIAS_ID to the alias id from the agent's "
    "Aliases list (TSTALIASID for the working draft)",
    "AWS_PROFILE": "Set AWS_PROFILE to a profile listed by `aws configure list-profiles` "
    "(or unset it to use the role or keys)",
}
_VAR_RE = re.compile(r"^([A-Z][A-Z0-9_]*)\b")
_SECRET_VARS = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_FATAL_TOKEN_CODES = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked"})
_BAD_CREDENTIAL_CODES = frozenset(
    {
        "invalidclienttokenid",
        "unrecognizedclient",
        "signaturedoesnotmatch",
        "invalidsignature",
        "expiredtoken",
        "incompletesignature",
    }
)
# botocore credential provider `method` -> where the credentials came from, for humans.
_CREDENTIAL_SOURCES = {
    "env": "environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
    "explicit": "explicit keys",
    "container-role": "container role (ECS task role)",
    "iam-role": "instance profile (EC2 instance metadata)",
    "assume-role-with-web-identity": "web identity (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE)",
    "boto-config": "boto config file",
    "ec2-credentials-file": "EC2 credentials file",
}
_PROFILE_SOURCES = {
    "shared-credentials-file": "keys in the shared credentials file",
    "config-file": "keys in the config file",
    "assume-role": "assume-role",
    "sso": "SSO",
    "login": "aws login",
    "custom-process": "credential_process",
}

_MARKS = {"ok": "✓", "fail": "✗", "warn": "!", "skip": "-"}
_ASCII_MARKS = {"ok": "+", "fail": "x", "warn": "!", "skip": "-"}
_COLORS = {"ok": "\033[32m", "fail": "\033[31m", "warn": "\033[33m", "skip": "\033[2m"}
_RESET = "\033[0m"
_TITLE_WIDTH = max(len(t) for t in TITLES.values()) + 2


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the checklist. `fix` says, in one sentence, what to do (fail and warn)."""

    name: str
    status: Status
    detail: str
    fix: str = ""


def exit_code(checks: Sequence[Check]) -> int:
    """0 when no check failed (warnings and skips allowed), else 1."""
    return 1 if any(c.status == "fail" for c in checks) else 0


# --------------------------------------------------------------------------- rendering


def render_json(checks: Sequence[Check]) -> str:
    doc = {
        "ok": exit_code(checks) == 0,
        "checks": [
            {"name": c.name, "status": c.status, "detail": c.detail, "fix": c.fix} for c in checks
        ],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


def render_text(checks: Sequence[Check], *, color: bool = False, ascii_only: bool = False) -> str:
    """The checklist: one line per check (mark, title, detail), the fix indented below a
    failure or warning, then a summary line."""
    marks = _ASCII_MARKS if ascii_only else _MARKS
    lines = [f"ark doctor {__version__}"]
    for c in checks:
        mark = marks[c.status]
        if color:
            mark = f"{_COLORS[c.status]}{mark}{_RESET}"
        title = TITLES.get(c.name, c.name)
        lines.append(f"{mark} {title:<{_TITLE_WIDTH}}{c.detail}".rstrip())
        if c.fix and c.status in ("fail", "warn"):
            lines.append(f"  {'':<{_TITLE_WIDTH}}fix: {c.fix}")
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("ok", "warn", "fail", "skip")}
    summary = (
        f"{counts['ok']} ok, {counts['warn']} warning{'s' if counts['warn'] != 1 else ''}, "
        f"{counts['fail']} failed, {counts['skip']} skipped"
    )
    lines.append("")
    lines.append(("FAILED: " if counts["fail"] else "OK: ") + summary)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- helpers


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _preview(text: str, limit: int = ANSWER_PREVIEW_CHARS) -> str:
    flat = _one_line(text)
    return flat if len(flat) <= limit else flat[:limit].rstrip() + "…"


def _aws_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ('' otherwise), lower case without 'exception'."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, Mapping) else {}
        return str(error.get("Code") or "").lower().removesuffix("exception")
    return ""


def _aws_message(exc: BaseException) -> str:
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, Mapping) else {}
        code = str(error.get("Code") or "error")
        message = str(error.get("Message") or "")
        return f"{code}: {_one_line(message)}" if message else code
    return _one_line(f"{type(exc).__name__}: {exc}")


def _is_network_error(exc: BaseException) -> bool:
    return classify_error(exc).kind in ("network", "timeout") and not isinstance(
        exc, botocore.exceptions.ClientError
    )


def _partial_settings(
    env: Mapping[str, str],
) -> tuple[Settings | None, list[str], frozenset[str]]:
    """(settings, problems, bad variables). With problems, the settings are loaded again with
    the bad variables replaced (required ones) or dropped (optional ones: their default), so
    checks that do not need them can still run; None when even that fails."""
    try:
        return load_settings(env), [], frozenset()
    except ConfigError as exc:
        problems = list(exc.problems)
    bad = frozenset(m.group(1) for p in problems if (m := _VAR_RE.match(p)))
    patched = dict(env)
    for var in bad:
        if var in _PLACEHOLDERS:
            patched[var] = _PLACEHOLDERS[var]
        else:
            patched.pop(var, None)
    try:
        settings: Settings | None = load_settings(patched)
    except ConfigError:
        settings = None
    return settings, problems, bad


def _config_fix(problem: str, env_file: str | None) -> str:
    m = _VAR_RE.match(problem)
    var = m.group(1) if m else ""
    where = f"the environment or {env_file}" if env_file else "the environment"
    base = _CONFIG_FIXES.get(var) or (
        f"Correct {var} (see docs/configuration.md)" if var else "Correct the configuration"
    )
    return f"{base}, in {where}."


# --------------------------------------------------------------------------- the checks


class _Doctor:
    """One run of the checks. Holds what later checks need from earlier ones."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        env_file: str | None,
        invoke: bool,
        timeout_s: float,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.env = env
        self.env_file = env_file
        self.invoke = invoke
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context
        self.settings, self.problems, self.bad_vars = _partial_settings(env)
        if self.settings is not None:
            # the same check the gateway makes before it starts (ark/__main__.py)
            problem = profile_problem(self.settings.aws_profile, env)
            if problem is not None:
                self.problems.append(problem)
                self.bad_vars |= {"AWS_PROFILE"}
        self.region = ""
        self.session: AioSession | None = None
        self.account: str | None = None
        self.caller_arn: str | None = None

    # -- plumbing ---------------------------------------------------------------------

    def _skip_for_config(self, name: str) -> Check | None:
        if self.settings is None:
            return Check(name, "skip", "skipped: fix the configuration first")
        bad = sorted(_NEEDS.get(name, frozenset()) & self.bad_vars)
        if bad:
            return Check(name, "skip", f"skipped: fix {', '.join(bad)} first")
        return None

    async def _bounded(
        self,
        name: str,
        check: Callable[[], Awaitable[Check]],
        *,
        timeout_s: float | None = None,
        on_timeout: Check | None = None,
    ) -> Check:
        """Run one check within its timeout; a timeout or an unexpected error is a result,
        never an exception, so one check cannot stop the others."""
        skip = self._skip_for_config(name) if name in _NEEDS or self.settings is None else None
        if skip is not None:
            return skip
        limit = timeout_s or self.timeout_s
        try:
            async with asyncio.timeout(limit):
                return await check()
        except TimeoutError:
            return on_timeout or Check(
                name,
                "fail",
                f"no answer within {limit:g} s",
                "Check the network path to the service (firewall, proxy, VPC endpoints), "
                "or retry with a larger --timeout.",
            )
        except Exception as exc:
            return Check(
                name,
                "fail",
                f"unexpected error: {_one_line(f'{type(exc).__name__}: {exc}')}",
                "Run again with the same settings; if it persists, report this line.",
            )

    # -- configuration ----------------------------------------------------------------

    def check_config(self) -> list[Check]:
        if not self.problems:
            source = (
                f"environment and {self.env_file}"
                if self.env_file and Path(self.env_file).is_file()
                else "environment"
            )
            return [Check("config", "ok", f"valid (read from the {source})")]
        return [
            Check("config", "fail", problem, _config_fix(problem, self.env_file))
            for problem in self.problems
        ]

    # -- Slack ------------------------------------------------------------------------

    async def slack_checks(self) -> list[Check]:
        from ark.app import make_http_client, make_ssl_context
        from ark.slack.web import SlackWeb

        if self.settings is None:
            return [
                Check(n, "skip", "skipped: fix the configuration first")
                for n in ("slack_auth", "slack_scopes", "slack_app_token", "socket_mode")
            ]
        settings = self.settings
        ssl_context = self.ssl_context or make_ssl_context()
        async with make_http_client(ssl_context, 1) as http:
            web = SlackWeb(
                http, token=settings.slack_bot_token, base_url=settings.slack_api_url, max_retries=1
            )
            scopes: list[tuple[str, ...]] = []
            auth = await self._bounded("slack_auth", lambda: self._slack_auth(web, scopes))
            if auth.status == "ok":
                scopes_check = self._slack_scopes(scopes[0])
            else:
                scopes_check = Check("slack_scopes", "skip", "skipped: the bot token check failed")

            urls: list[str] = []
            app = await self._bounded("slack_app_token", lambda: self._slack_app_token(web, urls))
        if app.status == "ok":
            socket = await self._bounded(
                "socket_mode",
                lambda: self._socket_mode(urls[0], ssl_context),
                on_timeout=Check(
                    "socket_mode",
                    "fail",
                    f"no hello from Slack within {self.timeout_s:g} s",
                    "Check that Socket Mode is on (app settings → Socket Mode) and that "
                    "outbound WebSockets to wss-primary.slack.com are allowed.",
                ),
            )
        else:
            socket = Check("socket_mode", "skip", "skipped: the app token check failed")
        return [auth, scopes_check, app, socket]

    async def _slack_auth(self, web: Any, scopes_out: list[tuple[str, ...]]) -> Check:
        try:
            auth = await web.auth_test()
        except SlackApiError as exc:
            return self._slack_error("slack_auth", "SLACK_BOT_TOKEN", exc)
        scopes_out.append(auth.scopes)
        team = f"{auth.team} ({auth.team_id})" if auth.team else auth.team_id
        user = f"@{auth.user} ({auth.user_id})" if auth.user else auth.user_id
        return Check("slack_auth", "ok", f"team {team}, bot user {user}")

    def _slack_error(self, name: str, var: str, exc: SlackApiError) -> Check:
        host = urlsplit(self.settings.slack_api_url if self.settings else "").hostname or "Slack"
        if exc.code in _FATAL_TOKEN_CODES:
            if var == "SLACK_BOT_TOKEN":
                fix = (
                    "Copy the Bot User OAuth Token (xoxb-) from the app's OAuth & Permissions "
                    "page and check that the app is installed in the workspace."
                )
            else:
                fix = (
                    "Create an app-level token with the connections:write scope (Basic "
                    "Information → App-Level Tokens) and set SLACK_APP_TOKEN to it."
                )
            return Check(name, "fail", f"Slack rejected {var} ({exc.code})", fix)
        if exc.code == "not_allowed_token_type":
            kind = "a bot token (xoxb-)" if var == "SLACK_BOT_TOKEN" else "an app-level token"
            return Check(
                name,
                "fail",
                f"{var} is not {kind} (not_allowed_token_type)",
                f"Set {var} to {kind} of this app.",
            )
        if exc.code == "missing_scope" and var == "SLACK_APP_TOKEN":
            return Check(
                name,
                "fail",
                "the app-level token lacks connections:write (missing_scope)",
                "Create an app-level token with the connections:write scope and set "
                "SLACK_APP_TOKEN to it.",
            )
        if exc.code == "network_error" or exc.code.startswith("http_"):
            return Check(
                name,
                "fail",
                f"could not reach the Slack API at {host} ({exc.code})",
                f"Check the network path to {host} (firewall, proxy) and SLACK_API_URL.",
            )
        return Check(
            name,
            "fail",
            f"{exc.method} failed: {exc.code}",
            "Look the error code up in Slack's documentation of the method and retry.",
        )

    def _slack_scopes(self, granted: tuple[str, ...]) -> Check:
        if not granted:
            return Check(
                "slack_scopes",
                "warn",
                "Slack did not report the granted scopes (no x-oauth-scopes header)",
                "Compare the app's Bot Token Scopes with docs/slack-app-manifest.yaml by hand.",
            )
        have = set(granted)
        missing = [s for s in REQUIRED_SCOPES if s not in have]
        optional = [s for s in OPTIONAL_SCOPES if s not in have]
        reinstall = (
            "then reinstall the app to the workspace (new scopes apply only after a reinstall)"
        )
        if missing:
            detail = f"missing {', '.join(missing)}"
            if optional:
                detail += f" (and optional {', '.join(optional)})"
            return Check(
                "slack_scopes",
                "fail",
                detail,
                "Add them under OAuth & Permissions → Bot Token Scopes (or update the app "
                f"from docs/slack-app-manifest.yaml), {reinstall}.",
            )
        if optional:
            return Check(
                "slack_scopes",
                "warn",
                f"required scopes granted; optional {', '.join(optional)} not granted, so "
                "threads in private channels / group DMs get no earlier context",
                f"If Ark is used there, add {', '.join(optional)} to the Bot Token Scopes, "
                f"{reinstall}.",
            )
        return Check("slack_scopes", "ok", f"all {len(REQUIRED_SCOPES + OPTIONAL_SCOPES)} scopes")

    async def _slack_app_token(self, web: Any, urls_out: list[str]) -> Check:
        assert self.settings is not None
        try:
            url = await web.open_socket_url(self.settings.slack_app_token)
        except SlackApiError as exc:
            return self._slack_error("slack_app_token", "SLACK_APP_TOKEN", exc)
        urls_out.append(url)
        host = urlsplit(url).hostname or "?"
        return Check("slack_app_token", "ok", f"apps.connections.open gave a URL on {host}")

    async def _socket_mode(self, url: str, ssl_context: ssl.SSLContext) -> Check:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        host = urlsplit(url).hostname or "?"
        kwargs: dict[str, Any] = {}
        if urlsplit(url).scheme == "wss":
            kwargs["ssl"] = ssl_context
        try:
            ws = await connect(
                url,
                open_timeout=self.timeout_s,
                close_timeout=WS_CLOSE_TIMEOUT_S,
                ping_interval=None,
                max_size=MAX_FRAME_BYTES,
                compression=None,
                user_agent_header=f"ark/{__version__} (doctor)",
                **kwargs,
            )
        except Exception as exc:  # OSError, InvalidHandshake, TimeoutError...
            return Check(
                "socket_mode",
                "fail",
                f"could not open the WebSocket to {host} ({type(exc).__name__})",
                f"Allow outbound HTTPS/WebSocket traffic to {host} on port 443 (firewall, proxy).",
            )
        try:
            hello: dict[str, Any] | None = None
            try:
                async for raw in ws:
                    try:
                        frame = orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        continue
                    if not isinstance(frame, dict):
                        continue
                    if frame.get("type") == "hello":
                        hello = frame
                        break
                    if frame.get("type") == "disconnect":
                        return self._disconnect_before_hello(str(frame.get("reason") or ""))
                    # an envelope before hello is not acked here: Slack redelivers it
            except ConnectionClosed:
                pass
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(WS_CLOSE_TIMEOUT_S):
                    await ws.close()
        if hello is None:
            return Check(
                "socket_mode",
                "fail",
                f"Slack closed the WebSocket to {host} before saying hello",
                "Check that Socket Mode is on (app settings → Socket Mode) and retry.",
            )
        return self._hello_check(hello, host)

    @staticmethod
    def _disconnect_before_hello(reason: str) -> Check:
        if reason == "link_disabled":
            return Check(
                "socket_mode",
                "fail",
                "Slack refused the connection: Socket Mode is turned off (link_disabled)",
                "Turn Socket Mode on in the app settings (Settings → Socket Mode).",
            )
        if reason == "too_many_websockets":
            return Check(
                "socket_mode",
                "fail",
                "Slack refused the connection: too many connections for this app",
                "Stop the processes holding this app's connections (at most 10 are allowed).",
            )
        return Check(
            "socket_mode",
            "fail",
            f"Slack disconnected before hello ({reason or 'no reason'})",
            "Retry; if it persists, check the app's Socket Mode settings.",
        )

    @staticmethod
    def _hello_check(hello: Mapping[str, Any], host: str) -> Check:
        info = hello.get("connection_info")
        app_id = info.get("app_id") if isinstance(info, Mapping) else None
        app = f" (app {app_id})" if isinstance(app_id, str) and app_id else ""
        num = hello.get("num_connections")
        if isinstance(num, int) and not isinstance(num, bool) and num > 1:
            others = num - 1
            return Check(
                "socket_mode",
                "warn",
                f"hello received from {host}{app}; {num} connections are open for this app, "
                f"this check's included, so {others} other "
                + ("processes receive" if others > 1 else "process receives")
                + " a share of the events",
                "If the gateway is running, one other connection is expected (it holds one, "
                "two briefly while it refreshes); otherwise stop the other consumers of this "
                "app token (a stray `ark` on a laptop, an extra task): each event goes to only "
                "one connection.",
            )
        return Check("socket_mode", "ok", f"hello received from {host}{app}; no other connection")

    # -- AWS --------------------------------------------------------------------------

    async def aws_checks(self) -> list[Check]:
        if self.settings is None:
            names = ["aws_region", "aws_credentials", "aws_identity", "agent_alias"]
            names += ["agent_invoke", "firehose"]
            return [Check(n, "skip", "skipped: fix the configuration first") for n in names]
        region = self._region_check()
        creds = await self._bounded("aws_credentials", self._credentials)
        if creds.status != "ok":
            why = "skipped: no usable AWS credentials"
            rest = [Check(n, "skip", why) for n in ("aws_identity", "agent_alias")]
            invoke = (
                Check("agent_invoke", "skip", why) if self.invoke else self._invoke_not_requested()
            )
            return [
                region,
                creds,
                *rest,
                invoke,
                self._firehose_skip() or Check("firehose", "skip", why),
            ]
        identity, alias, firehose = await asyncio.gather(
            self._bounded(
                "aws_identity",
                self._identity,
                on_timeout=Check(
                    "aws_identity",
                    "warn",
                    f"STS did not answer within {self.timeout_s:g} s",
                    "Allow outbound access to STS (or add an STS VPC endpoint); Ark itself does "
                    "not call STS, so only the caller's identity is unknown.",
                ),
            ),
            self._bounded(
                "agent_alias",
                self._agent_alias,
                on_timeout=Check(
                    "agent_alias",
                    "warn",
                    f"bedrock-agent did not answer within {self.timeout_s:g} s",
                    "Allow access to the bedrock-agent endpoint to check the alias here; Ark "
                    "itself only needs bedrock-agent-runtime (try --invoke).",
                ),
            ),
            self._firehose_check(),
        )
        if not self.invoke:
            invoke = self._invoke_not_requested()
        elif alias.status == "fail" and alias.detail.startswith("not found"):
            invoke = Check("agent_invoke", "skip", "skipped: the agent alias was not found")
        else:
            invoke = await self._bounded(
                "agent_invoke",
                self._invoke,
                timeout_s=max(self.timeout_s, INVOKE_MIN_TIMEOUT_S),
            )
        return [region, creds, identity, alias, invoke, firehose]

    def _region_check(self) -> Check:
        assert self.settings is not None
        s, env = self.settings, self.env
        self.region = resolve_region(s.aws_region, s.aws_profile, env)
        profile = (s.aws_profile or env.get("AWS_PROFILE") or "").strip()
        if (s.aws_region or env.get("AWS_REGION") or "").strip():
            source = "AWS_REGION"
        elif profile and _profile_region(profile, env.get("AWS_CONFIG_FILE")) == self.region:
            source = f"profile {profile}"
        elif (env.get("AWS_DEFAULT_REGION") or "").strip():
            source = "AWS_DEFAULT_REGION"
        else:
            source = f"default {DEFAULT_REGION}: AWS_REGION is not set"
        return Check("aws_region", "ok", f"{self.region} (from {source})")

    def _profile_name(self) -> str:
        assert self.settings is not None
        return (self.settings.aws_profile or self.env.get("AWS_PROFILE") or "default").strip()

    async def _credentials(self) -> Check:
        assert self.settings is not None
        profile = session_profile(self.settings.aws_profile, self.env)
        try:
            session = AioSession(profile=profile) if profile else AioSession()
            creds = await session.get_credentials()
            if creds is not None:
                await creds.get_frozen_credentials()
        except botocore.exceptions.BotoCoreError as exc:
            fix = "Fix the profile in ~/.aws/config (or AWS_PROFILE)"
            if "sso" in str(exc).lower() or "token" in str(exc).lower():
                fix = f"Run `aws sso login --profile {self._profile_name()}` and retry"
            return Check(
                "aws_credentials",
                "fail",
                f"credentials could not be loaded: {_one_line(str(exc))}",
                fix + ".",
            )
        if creds is None:
            return Check(
                "aws_credentials",
                "fail",
                "no AWS credentials found (environment, profile, container role, "
                "instance profile all tried)",
                "Give the ECS task or EC2 instance a role, or set AWS_PROFILE (SSO: run `aws sso "
                "login`), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
            )
        self.session = session
        method = str(getattr(creds, "method", "") or "unknown")
        source = _CREDENTIAL_SOURCES.get(method)
        if source is None:
            kind = _PROFILE_SOURCES.get(method, method)
            source = f"profile {self._profile_name()} ({kind})"
        return Check("aws_credentials", "ok", f"from {source}")

    def _client(self, service: str) -> Any:
        assert self.session is not None
        config = client_config(
            1,
            total_max_attempts=CONTROL_PLANE_TOTAL_MAX_ATTEMPTS,
            read_timeout_s=self.timeout_s,
            connect_timeout_s=self.timeout_s,
        )
        return self.session.create_client(service, region_name=self.region, config=config)

    async def _identity(self) -> Check:
        try:
            async with self._client("sts") as sts:
                answer = await sts.get_caller_identity()
        except Exception as exc:
            code = _aws_code(exc)
            if code in _BAD_CREDENTIAL_CODES or code == "accessdenied":
                fix = (
                    "Refresh the credentials (`aws sso login`, new temporary keys, or restart "
                    "to pick up the role's)."
                    if code == "expiredtoken"
                    else "Replace the credentials: the keys are wrong, deleted or deactivated."
                )
                return Check(
                    "aws_identity",
                    "fail",
                    f"AWS rejected the credentials ({_aws_message(exc)})",
                    fix,
                )
            if _is_network_error(exc):
                return Check(
                    "aws_identity",
                    "warn",
                    f"STS not reachable ({_aws_message(exc)})",
                    "Allow outbound access to STS (or add an STS VPC endpoint); Ark itself "
                    "does not call STS, so only the caller's identity is unknown.",
                )
            return Check(
                "aws_identity",
                "fail",
                f"GetCallerIdentity failed ({_aws_message(exc)})",
                "Check the credentials above and the network path to STS.",
            )
        self.account = str(answer.get("Account") or "") or None
        self.caller_arn = str(answer.get("Arn") or "") or None
        return Check("aws_identity", "ok", f"account {self.account}, caller {self.caller_arn}")

    def _alias_arn(self) -> str:
        assert self.settings is not None
        account = self.account or "<account>"
        return (
            f"arn:aws:bedrock:{self.region}:{account}:agent-alias/"
            f"{self.settings.agent_id}/{self.settings.agent_alias_id}"
        )

    def _wrong_ids_fix(self) -> str:
        return (
            "Check BEDROCK_AGENT_ID and BEDROCK_AGENT_ALIAS_ID (Bedrock console → Agents → the "
            f"agent → Aliases) and that {self.region} is the agent's region (AWS_REGION)."
        )

    async def _agent_alias(self) -> Check:
        assert self.settings is not None
        agent_id, alias_id = self.settings.agent_id, self.settings.agent_alias_id
        try:
            async with self._client("bedrock-agent") as client:
                answer = await client.get_agent_alias(agentId=agent_id, agentAliasId=alias_id)
        except botocore.exceptions.ParamValidationError as exc:
            return Check(
                "agent_alias",
                "fail",
                f"not a valid Bedrock id: {_one_line(str(exc))}",
                "Bedrock agent and alias ids are exactly 10 letters or digits: "
                + self._wrong_ids_fix(),
            )
        except Exception as exc:
            code = _aws_code(exc)
            if code == "accessdenied":
                return Check(
                    "agent_alias",
                    "warn",
                    "not allowed to read the alias (bedrock:GetAgentAlias denied)",
                    f"Allow bedrock:GetAgentAlias on {self._alias_arn()} to check it here; Ark "
                    "itself needs only bedrock:InvokeAgent (try --invoke).",
                )
            if code == "resourcenotfound":
                return Check(
                    "agent_alias",
                    "fail",
                    f"not found: agent {agent_id}, alias {alias_id} in {self.region}",
                    self._wrong_ids_fix(),
                )
            if code in _BAD_CREDENTIAL_CODES:
                return Check(
                    "agent_alias",
                    "fail",
                    f"AWS rejected the credentials ({_aws_message(exc)})",
                    "Replace or refresh the credentials (see AWS credentials above).",
                )
            if _is_network_error(exc):
                return Check(
                    "agent_alias",
                    "warn",
                    f"bedrock-agent not reachable ({_aws_message(exc)})",
                    "Allow access to the bedrock-agent endpoint to check the alias here; Ark "
                    "itself only needs bedrock-agent-runtime (try --invoke).",
                )
            return Check(
                "agent_alias",
                "fail",
                f"GetAgentAlias failed ({_aws_message(exc)})",
                self._wrong_ids_fix(),
            )
        return self._alias_status(answer.get("agentAlias") or {})

    def _alias_status(self, alias: Mapping[str, Any]) -> Check:
        name = alias.get("agentAliasName") or "?"
        status = str(alias.get("agentAliasStatus") or "UNKNOWN")
        routing = alias.get("routingConfiguration") or []
        version = (
            routing[0].get("agentVersion") if routing and isinstance(routing[0], dict) else None
        )
        detail = f"{name} ({alias.get('agentAliasId', '?')}): {status}"
        if version:
            detail += f", agent version {version}"
        if alias.get("aliasInvocationState") == "REJECT_INVOCATIONS":
            return Check(
                "agent_alias",
                "fail",
                detail + ", rejecting invocations (REJECT_INVOCATIONS)",
                "Let the alias accept invocations again (Bedrock console or "
                "UpdateAgentAlias aliasInvocationState=ACCEPT_INVOCATIONS).",
            )
        if status == "PREPARED":
            return Check("agent_alias", "ok", detail)
        if status in ("CREATING", "UPDATING"):
            return Check(
                "agent_alias",
                "warn",
                detail,
                "Wait until the alias is PREPARED, then run ark doctor again.",
            )
        reasons = "; ".join(str(r) for r in alias.get("failureReasons") or ())
        return Check(
            "agent_alias",
            "fail",
            detail + (f" ({_one_line(reasons)})" if reasons else ""),
            "Prepare the agent and point the alias at a working version, or use another alias.",
        )

    @staticmethod
    def _invoke_not_requested() -> Check:
        return Check("agent_invoke", "skip", "not run (add --invoke to ask the agent one question)")

    async def _invoke(self) -> Check:
        assert self.settings is not None
        s = self.settings
        chunks: list[str] = []
        files = 0
        returned_control = False
        started = time.monotonic()
        first_text_s: float | None = None
        try:
            async with AwsClients(
                region=self.region,
                profile=s.aws_profile,
                max_concurrency=s.max_concurrent_requests,
                firehose=False,
                env=self.env,
            ) as aws:
                agent = BedrockAgent(
                    aws.agent_runtime, agent_id=s.agent_id, agent_alias_id=s.agent_alias_id
                )
                request = AgentRequest(
                    session_id=f"ark-doctor-{uuid.uuid4().hex}", input_text=DOCTOR_QUESTION
                )
                async for event in agent.invoke(request):
                    if isinstance(event, TextChunk) and event.text:
                        if first_text_s is None:
                            first_text_s = time.monotonic() - started
                        chunks.append(event.text)
                    elif isinstance(event, OutputFile):
                        files += 1
                    elif isinstance(event, ReturnControl):
                        returned_control = True
        except AgentError as exc:
            return self._invoke_error(exc)
        total_s = time.monotonic() - started
        answer = "".join(chunks)
        timing = f"in {total_s:.2f} s"
        if first_text_s is not None:
            timing += f" (first text after {first_text_s:.2f} s)"
        if not answer.strip():
            what = "asked to return control" if returned_control else "sent no text"
            return Check(
                "agent_invoke",
                "warn",
                f"the agent {what} {timing}",
                "Check the agent's instructions and the version the alias points at "
                "(Bedrock console → the agent → Test).",
            )
        extra = f", {files} file{'s' if files != 1 else ''}" if files else ""
        return Check("agent_invoke", "ok", f"answered {timing}{extra}: {_preview(answer)!r}")

    def _invoke_error(self, exc: AgentError) -> Check:
        code = (exc.code or "").lower().removesuffix("exception")
        if exc.kind == "access_denied" and code == "accessdenied":
            who = f" to {self.caller_arn}" if self.caller_arn else ""
            return Check(
                "agent_invoke",
                "fail",
                "InvokeAgent denied (bedrock:InvokeAgent)",
                f"Allow bedrock:InvokeAgent on {self._alias_arn()}{who} (the task or instance "
                "role's policy).",
            )
        if exc.kind == "access_denied":
            return Check(
                "agent_invoke",
                "fail",
                f"AWS rejected the credentials ({exc})",
                "Replace or refresh the credentials (see AWS credentials above).",
            )
        if exc.kind == "not_found":
            return Check("agent_invoke", "fail", f"not found ({exc})", self._wrong_ids_fix())
        if exc.kind == "throttling":
            return Check(
                "agent_invoke",
                "warn",
                f"throttled ({exc})",
                "Retry later; if it lasts, ask for a higher Bedrock quota.",
            )
        return Check(
            "agent_invoke",
            "fail",
            f"InvokeAgent failed ({exc})",
            "Test the agent in the Bedrock console; a 'validation' or 'server' error there "
            "is the agent's own.",
        )

    def _firehose_skip(self) -> Check | None:
        assert self.settings is not None
        if not self.settings.firehose_stream_name:
            return Check("firehose", "skip", "not configured (FIREHOSE_STREAM_NAME is not set)")
        return None

    async def _firehose_check(self) -> Check:
        skip = self._firehose_skip()
        if skip is not None:
            return skip
        return await self._bounded("firehose", self._firehose)

    async def _firehose(self) -> Check:
        assert self.settings is not None
        name = self.settings.firehose_stream_name or ""
        try:
            async with self._client("firehose") as client:
                answer = await client.describe_delivery_stream(DeliveryStreamName=name)
        except Exception as exc:
            code = _aws_code(exc)
            if code == "accessdenied":
                return Check(
                    "firehose",
                    "warn",
                    f"not allowed to describe {name} (firehose:DescribeDeliveryStream denied)",
                    "Allow firehose:DescribeDeliveryStream to check the stream here; Ark itself "
                    "needs only firehose:PutRecord on it (PutRecordBatch preferred: fewer calls).",
                )
            if code == "resourcenotfound":
                return Check(
                    "firehose",
                    "fail",
                    f"stream {name} not found in {self.region}",
                    f"Create the stream in {self.region} or correct FIREHOSE_STREAM_NAME "
                    "(the name, not the ARN).",
                )
            if code in _BAD_CREDENTIAL_CODES:
                return Check(
                    "firehose",
                    "fail",
                    f"AWS rejected the credentials ({_aws_message(exc)})",
                    "Replace or refresh the credentials (see AWS credentials above).",
                )
            return Check(
                "firehose",
                "fail",
                f"DescribeDeliveryStream failed ({_aws_message(exc)})",
                "Check the network path to Firehose (firewall, VPC endpoint) and retry.",
            )
        description = answer.get("DeliveryStreamDescription") or {}
        status = str(description.get("DeliveryStreamStatus") or "UNKNOWN")
        stream_type = str(description.get("DeliveryStreamType") or "")
        detail = f"{name}: {status}" + (f" ({stream_type})" if stream_type else "")
        if status == "ACTIVE" and stream_type not in ("", "DirectPut"):
            return Check(
                "firehose",
                "fail",
                detail + ", which does not accept direct puts",
                "Point FIREHOSE_STREAM_NAME at a Direct PUT stream (Ark sends PutRecordBatch, "
                "or PutRecord when that is denied).",
            )
        if status == "ACTIVE":
            return Check("firehose", "ok", detail)
        if status == "CREATING":
            return Check(
                "firehose", "warn", detail, "Wait until the stream is ACTIVE and run again."
            )
        return Check(
            "firehose",
            "fail",
            detail,
            "Recreate the stream (or pick another FIREHOSE_STREAM_NAME): Ark cannot send to it.",
        )


async def run_doctor(
    env: Mapping[str, str],
    *,
    env_file: str | None = None,
    invoke: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    ssl_context: ssl.SSLContext | None = None,
) -> list[Check]:
    """Run every check against the configuration in `env` and return them in display order.

    botocore reads AWS_* (credentials, AWS_ENDPOINT_URL_*) from `os.environ` itself, so `env`
    should agree with it (`main` exports the `.env` values first). `env_file` only names the
    file in the texts. Never raises for a failed check; secrets are redacted from every text.
    """
    doctor = _Doctor(
        env, env_file=env_file, invoke=invoke, timeout_s=timeout_s, ssl_context=ssl_context
    )
    config = doctor.check_config()
    slack, aws = await asyncio.gather(doctor.slack_checks(), doctor.aws_checks())
    redact = Redactor(env.get(var, "") for var in _SECRET_VARS)
    return [replace(c, detail=redact(c.detail), fix=redact(c.fix)) for c in (*config, *slack, *aws)]


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ark doctor",
        description="Preflight checks: configuration, Slack tokens and scopes, Socket Mode, "
        "AWS credentials, the agent alias and the Firehose stream. Exit 0 when nothing failed.",
    )
    parser.add_argument(
        "--env-file", default=".env", help="dotenv file to read (default: ./.env if present)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--invoke", action="store_true", help="also ask the agent one short real question"
    )
    parser.add_argument(
        "--timeout",
        type=positive_number,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"seconds each check may take (default {DEFAULT_TIMEOUT_S:g}; "
        f"--invoke gets at least {INVOKE_MIN_TIMEOUT_S:g})",
    )
    return parser


def _can_encode(stream: IO[str], text: str) -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _use_color(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not environ.get("NO_COLOR")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from ark.log import configure_logging

    try:
        env = load_environment(dotenv_path=args.env_file)
    except ConfigError as exc:
        checks = [Check("config", "fail", problem, "Correct the file.") for problem in exc.problems]
        sys.stdout.write(render_json(checks) + "\n" if args.json else render_text(checks))
        return exit_code(checks)
    # botocore reads AWS_* (keys, profile, endpoints) from the process environment itself
    for key, value in env.items():
        os.environ.setdefault(key, value)
    # the checklist is the output: library warnings would only repeat it
    configure_logging("error", "text", tuple(env.get(v, "") for v in _SECRET_VARS if env.get(v)))
    try:
        checks = asyncio.run(
            run_doctor(env, env_file=args.env_file, invoke=args.invoke, timeout_s=args.timeout)
        )
    except KeyboardInterrupt:
        return 1
    out = sys.stdout
    if args.json:
        out.write(render_json(checks) + "\n")
    else:
        out.write(
            render_text(
                checks,
                color=_use_color(out, os.environ),
                ascii_only=not _can_encode(out, "".join(_MARKS.values()) + "→…"),
            )
        )
    out.flush()
    return exit_code(checks)
