"""AWS client construction: region resolution, client configuration and the clients' owner.

Signing, credentials (explicit keys > container role > profile/SSO > instance profile) and
endpoint overrides (`AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME`, `AWS_ENDPOINT_URL_FIREHOSE`)
are botocore's job; this module only chooses the region and the connection settings and
keeps one client per service alive for the life of the process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import botocore.exceptions
import botocore.session
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from ark import __version__
from ark.log import get_logger

DEFAULT_REGION = "us-east-1"
# botocore's 60 s per read is too short for slow agents (code interpreter, long retrievals).
AGENT_READ_TIMEOUT_S = 300.0
CONNECT_TIMEOUT_S = 10.0
# One pooled connection per open InvokeAgent stream, plus a few for anything else.
POOL_HEADROOM_CONNECTIONS = 4
# Total attempts (first call included). Note botocore's `retries["max_attempts"]` counts
# RETRIES (it adds one), so the config uses `total_max_attempts`.
BOTOCORE_TOTAL_MAX_ATTEMPTS = 3
# BedrockAgent owns retries of InvokeAgent (bounded, logged, only before the first event):
# botocore retrying underneath as well would multiply the attempts.
AGENT_RUNTIME_BOTOCORE_TOTAL_MAX_ATTEMPTS = 1
FIREHOSE_POOL_CONNECTIONS = 4
FIREHOSE_READ_TIMEOUT_S = 30.0
AGENT_RUNTIME_SERVICE = "bedrock-agent-runtime"
FIREHOSE_SERVICE = "firehose"
USER_AGENT_EXTRA = f"ark/{__version__}"

log = get_logger("ark.aws")


def _profile_region(profile: str, config_file: str | None) -> str | None:
    """The region of `profile` in the shared config file, or None (missing or broken)."""
    try:
        session = botocore.session.Session(profile=profile)
        if config_file:
            session.set_config_variable("config_file", config_file)
        # Only the profile's own section: get_config_variable("region") would let
        # AWS_DEFAULT_REGION win over the profile, which is not the contract.
        region = session.get_scoped_config().get("region")
    except (botocore.exceptions.BotoCoreError, OSError, ValueError) as exc:
        log.warning("aws_profile_unreadable", profile=profile, error=type(exc).__name__)
        return None
    if isinstance(region, str) and region.strip():
        return region.strip()
    return None


def resolve_region(aws_region: str | None, aws_profile: str | None, env: Mapping[str, str]) -> str:
    """The region to call: AWS_REGION; else the profile's region when AWS_PROFILE is set;
    else AWS_DEFAULT_REGION; else us-east-1. Never raises."""
    explicit = (aws_region or env.get("AWS_REGION") or "").strip()
    if explicit:
        return explicit
    profile = (aws_profile or env.get("AWS_PROFILE") or "").strip()
    if profile:
        region = _profile_region(profile, env.get("AWS_CONFIG_FILE"))
        if region:
            return region
    default = (env.get("AWS_DEFAULT_REGION") or "").strip()
    return default or DEFAULT_REGION


def client_config(
    max_concurrency: int,
    *,
    total_max_attempts: int = BOTOCORE_TOTAL_MAX_ATTEMPTS,
    read_timeout_s: float = AGENT_READ_TIMEOUT_S,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
) -> AioConfig:
    """Connection settings for a client serving up to `max_concurrency` concurrent calls
    (each open InvokeAgent stream holds one pooled connection). `total_max_attempts`
    counts botocore's attempts including the first (1 = botocore never retries)."""
    return AioConfig(
        max_pool_connections=max(1, max_concurrency) + POOL_HEADROOM_CONNECTIONS,
        read_timeout=read_timeout_s,
        connect_timeout=connect_timeout_s,
        retries={"mode": "standard", "total_max_attempts": max(1, total_max_attempts)},
        user_agent_extra=USER_AGENT_EXTRA,
    )


def session_profile(profile: str | None, env: Mapping[str, str]) -> str | None:
    """The profile to hand to the botocore session, or None.

    botocore ignores AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when a profile is passed
    explicitly; the contract is "explicit keys > container role > profile", so with both
    keys in the environment the profile is left out (it still chose the region).
    """
    if not profile:
        return None
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return None
    return profile


def profile_problem(profile: str | None, env: Mapping[str, str]) -> str | None:
    """One line naming the problem when AWS_PROFILE (as `session_profile` would use it)
    names a profile the shared AWS config files lack, else None. botocore would otherwise
    raise ProfileNotFound deep inside client creation."""
    chosen = session_profile(profile, env)
    if not chosen:
        return None
    try:
        available = botocore.session.Session().available_profiles
    except (botocore.exceptions.BotoCoreError, OSError, ValueError) as exc:
        return f"AWS_PROFILE={chosen}: the AWS config files cannot be read ({type(exc).__name__})"
    if chosen in available:
        return None
    return (
        f"AWS_PROFILE={chosen} is not a profile in the AWS config files (~/.aws/config, "
        "~/.aws/credentials, or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE)"
    )


class AwsClients:
    """Owns one aiobotocore session and one client per service for the life of the process.

    `agent_runtime` is the bedrock-agent-runtime client; `firehose` is the Firehose client,
    or None when analytics is off. Use as `async with AwsClients(...) as aws:`; the clients
    exist only inside the block. `profile` is passed to the session unless explicit keys
    are in `env` (default os.environ), see `session_profile`. Creating clients raises
    botocore errors for an unknown profile; credentials are resolved on the first call.
    """

    def __init__(
        self,
        *,
        region: str,
        profile: str | None,
        max_concurrency: int,
        firehose: bool,
        endpoint_url: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._region = region
        self._profile = session_profile(profile, os.environ if env is None else env)
        self._max_concurrency = max_concurrency
        self._want_firehose = firehose
        # Tests only: production endpoints come from botocore's AWS_ENDPOINT_URL_* handling.
        self._endpoint_url = endpoint_url
        self._stack: AsyncExitStack | None = None
        self._agent_runtime: Any = None
        self.firehose: Any = None

    @property
    def region(self) -> str:
        return self._region

    @property
    def agent_runtime(self) -> Any:
        if self._agent_runtime is None:
            raise RuntimeError("AwsClients used outside its `async with` block")
        return self._agent_runtime

    async def __aenter__(self) -> AwsClients:
        session = AioSession(profile=self._profile) if self._profile else AioSession()
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            self._agent_runtime = await stack.enter_async_context(
                session.create_client(
                    AGENT_RUNTIME_SERVICE,
                    region_name=self._region,
                    endpoint_url=self._endpoint_url,
                    config=client_config(
                        self._max_concurrency,
                        total_max_attempts=AGENT_RUNTIME_BOTOCORE_TOTAL_MAX_ATTEMPTS,
                    ),
                )
            )
            if self._want_firehose:
                self.firehose = await stack.enter_async_context(
                    session.create_client(
                        FIREHOSE_SERVICE,
                        region_name=self._region,
                        endpoint_url=self._endpoint_url,
                        config=client_config(
                            FIREHOSE_POOL_CONNECTIONS, read_timeout_s=FIREHOSE_READ_TIMEOUT_S
                        ),
                    )
                )
        except BaseException:
            await stack.aclose()
            self._agent_runtime = None
            self.firehose = None
            raise
        self._stack = stack
        log.info("aws_clients_ready", region=self._region, firehose=self.firehose is not None)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        self._agent_runtime = None
        self.firehose = None
        if stack is not None:
            await stack.aclose()
