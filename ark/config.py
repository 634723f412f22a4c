"""Settings: the operator's contract, read from the environment and a `.env` file.

Every variable is validated at once, so a bad deployment gets one message naming all of
its problems (`ConfigError.problems`), never a traceback. Secrets are held here and nowhere
else; `Settings.secrets()` lists them for the log redactor.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SESSION_TTL_MINUTES = 55
MIN_SESSION_TTL_MINUTES = 1
MAX_SESSION_TTL_MINUTES = 60
DEFAULT_MAX_CONCURRENT_REQUESTS = 10
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_SHUTDOWN_DEADLINE_S = 25.0
DEFAULT_MAX_INFLIGHT_FILE_MB = 64
DEFAULT_METRICS_NAMESPACE = "Ark"
HEALTH_FILE_NAME = "ark-health.json"
LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("text", "json")
DM_REPLY_MODES = ("thread", "flat")

_AGENT_ID_RE = re.compile(r"^[0-9a-zA-Z]{1,10}$")
_ENV_LINE_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_QUOTED_VALUE_RE = re.compile(r"^(['\"])(.*?)\1\s*(?:#.*)?$")
# CloudWatch namespaces: alphanumerics (ASCII) and . - _ / # : and space
_NAMESPACE_CHAR_RE = re.compile(r"^[A-Za-z0-9.\-_/#: ]$")
MAX_METRICS_NAMESPACE_CHARS = 255


class ConfigError(Exception):
    """The configuration is unusable; `problems` names every bad variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class Settings:
    slack_bot_token: str = field(repr=False)
    slack_app_token: str = field(repr=False)
    agent_id: str
    agent_alias_id: str
    aws_region: str | None = None
    aws_profile: str | None = None
    firehose_stream_name: str | None = None
    session_ttl_minutes: int = DEFAULT_SESSION_TTL_MINUTES
    log_level: str = "info"
    log_format: str = "text"
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    max_queued_requests: int = 2 * DEFAULT_MAX_CONCURRENT_REQUESTS
    dm_replies: str = "thread"
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_file_url_prefixes: tuple[str, ...] = ()
    shutdown_deadline_s: float = DEFAULT_SHUTDOWN_DEADLINE_S
    max_inflight_file_mb: int = DEFAULT_MAX_INFLIGHT_FILE_MB
    health_file: str = ""
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)

    @property
    def session_ttl_s(self) -> float:
        return self.session_ttl_minutes * 60.0

    @property
    def analytics_enabled(self) -> bool:
        return bool(self.firehose_stream_name)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value this process knows, for the log redactor."""
        values = (
            self.slack_bot_token,
            self.slack_app_token,
            self.aws_secret_access_key,
            self.aws_session_token,
        )
        return tuple(v for v in values if v)


def parse_dotenv(text: str) -> dict[str, str]:
    """Parse `.env` text: KEY=VALUE lines, `export` allowed, `#` comments, optional quotes."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _ENV_LINE_RE.match(line)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        quoted = _QUOTED_VALUE_RE.match(value)
        if quoted:
            # a quoted value may be followed by an inline comment
            value = quoted.group(2)
        else:
            # an unquoted value ends at an inline comment
            hash_at = value.find(" #")
            if hash_at >= 0:
                value = value[:hash_at].rstrip()
        out[key] = value
    return out


def load_environment(
    environ: Mapping[str, str] | None = None, dotenv_path: Path | str | None = ".env"
) -> dict[str, str]:
    """The environment merged over `.env` (values already in the environment win)."""
    env = dict(os.environ if environ is None else environ)
    if dotenv_path is not None:
        path = Path(dotenv_path)
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(
                    [f"{path} is not valid UTF-8 (byte {exc.start}): save it as UTF-8 text"]
                ) from None
            except OSError as exc:
                raise ConfigError([f"{path} cannot be read ({exc.strerror or exc})"]) from None
            for key, value in parse_dotenv(text).items():
                env.setdefault(key, value)
    return env


def _int(env: Mapping[str, str], name: str, default: int, problems: list[str]) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        problems.append(f"{name} must be a whole number, got {raw!r}")
        return default


def _float(env: Mapping[str, str], name: str, default: float, problems: list[str]) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name} must be a number, got {raw!r}")
        return default
    if value <= 0:
        problems.append(f"{name} must be greater than 0, got {raw!r}")
        return default
    return value


def _choice(
    env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str, problems: list[str]
) -> str:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if name == "LOG_LEVEL" and raw == "warning":
        raw = "warn"
    if raw not in choices:
        problems.append(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return default
    return raw


def _token(env: Mapping[str, str], name: str, prefix: str, problems: list[str]) -> str:
    value = env.get(name, "").strip()
    if not value:
        problems.append(f"{name} is required ({prefix}...)")
    elif not value.startswith(prefix):
        # never echo the value: it is a secret even when it is the wrong one
        problems.append(f"{name} must start with {prefix!r}")
    return value


def _agent_id(env: Mapping[str, str], name: str, problems: list[str]) -> str:
    value = env.get(name, "").strip()
    if not value:
        problems.append(f"{name} is required")
    elif not _AGENT_ID_RE.match(value):
        problems.append(f"{name} must be 1 to 10 letters or digits, got {value!r}")
    return value


def _url_prefixes(raw: str, problems: list[str]) -> tuple[str, ...]:
    prefixes = tuple(p.strip() for p in raw.split(",") if p.strip())
    for p in prefixes:
        if not p.startswith(("https://", "http://")):
            problems.append(f"SLACK_FILE_URL_PREFIXES entries must be http(s) URLs, got {p!r}")
    return prefixes


def metrics_namespace_problem(namespace: str) -> str | None:
    """Why CloudWatch would reject `namespace` (None when it is fine): 1 to 255 characters
    from letters, digits and `. - _ / # : ` and space, not starting with `AWS/` (reserved)."""
    if not 1 <= len(namespace) <= MAX_METRICS_NAMESPACE_CHARS:
        return (
            f"ARK_METRICS_NAMESPACE must be 1 to {MAX_METRICS_NAMESPACE_CHARS} characters, "
            f"got {len(namespace)}"
        )
    if namespace.startswith("AWS/"):
        return f"ARK_METRICS_NAMESPACE must not start with 'AWS/' (reserved), got {namespace!r}"
    bad = sorted({c for c in namespace if not _NAMESPACE_CHAR_RE.match(c)})
    if bad:
        return (
            "ARK_METRICS_NAMESPACE may contain only letters, digits, space and . - _ / # :, "
            f"got {''.join(bad)!r} in {namespace!r}"
        )
    return None


def default_health_file(environ: Mapping[str, str] | None = None) -> str:
    """Where the heartbeat goes when ARK_HEALTH_FILE is unset: the temp dir.

    The directory is named, never probed: `tempfile.gettempdir()` creates and deletes a test
    file and raises FileNotFoundError when no candidate is writable (a read-only root file
    system), which would stop the gateway (and `ark health`) before they start. The writer
    reports an unwritable file itself, once, and keeps serving."""
    import tempfile

    env = os.environ if environ is None else environ
    directory = (
        env.get("TMPDIR", "").strip()
        or env.get("TEMP", "").strip()
        or env.get("TMP", "").strip()
        or tempfile.tempdir
        or "/tmp"
    )
    return str(Path(directory) / HEALTH_FILE_NAME)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Validate `env` into Settings, or raise ConfigError naming every problem."""
    problems: list[str] = []
    bot = _token(env, "SLACK_BOT_TOKEN", "xoxb-", problems)
    app = _token(env, "SLACK_APP_TOKEN", "xapp-", problems)
    agent_id = _agent_id(env, "BEDROCK_AGENT_ID", problems)
    alias_id = _agent_id(env, "BEDROCK_AGENT_ALIAS_ID", problems)

    ttl = _int(env, "SESSION_TTL_MINUTES", DEFAULT_SESSION_TTL_MINUTES, problems)
    if not MIN_SESSION_TTL_MINUTES <= ttl <= MAX_SESSION_TTL_MINUTES:
        problems.append(
            f"SESSION_TTL_MINUTES must be between {MIN_SESSION_TTL_MINUTES} and "
            f"{MAX_SESSION_TTL_MINUTES}, got {ttl}"
        )
    concurrency = _int(env, "MAX_CONCURRENT_REQUESTS", DEFAULT_MAX_CONCURRENT_REQUESTS, problems)
    if not 1 <= concurrency <= 1000:
        problems.append(f"MAX_CONCURRENT_REQUESTS must be between 1 and 1000, got {concurrency}")
    queued = _int(env, "ARK_MAX_QUEUED_REQUESTS", 2 * max(concurrency, 1), problems)
    if not 0 <= queued <= 10000:
        problems.append(f"ARK_MAX_QUEUED_REQUESTS must be between 0 and 10000, got {queued}")

    inflight_mb = _int(env, "ARK_MAX_INFLIGHT_FILE_MB", DEFAULT_MAX_INFLIGHT_FILE_MB, problems)
    if not 1 <= inflight_mb <= 100_000:
        problems.append(f"ARK_MAX_INFLIGHT_FILE_MB must be between 1 and 100000, got {inflight_mb}")
    namespace = env.get("ARK_METRICS_NAMESPACE", "").strip() or DEFAULT_METRICS_NAMESPACE
    namespace_problem = metrics_namespace_problem(namespace)
    if namespace_problem:
        problems.append(namespace_problem)

    api_url = env.get("SLACK_API_URL", "").strip() or DEFAULT_SLACK_API_URL
    if not api_url.startswith(("https://", "http://")):
        problems.append(f"SLACK_API_URL must be an http(s) URL, got {api_url!r}")
    if not api_url.endswith("/"):
        api_url += "/"

    settings = Settings(
        slack_bot_token=bot,
        slack_app_token=app,
        agent_id=agent_id,
        agent_alias_id=alias_id,
        aws_region=env.get("AWS_REGION", "").strip() or None,
        aws_profile=env.get("AWS_PROFILE", "").strip() or None,
        firehose_stream_name=env.get("FIREHOSE_STREAM_NAME", "").strip() or None,
        session_ttl_minutes=ttl,
        log_level=_choice(env, "LOG_LEVEL", LOG_LEVELS, "info", problems),
        log_format=_choice(env, "LOG_FORMAT", LOG_FORMATS, "text", problems),
        max_concurrent_requests=concurrency,
        max_queued_requests=queued,
        dm_replies=_choice(env, "DM_REPLIES", DM_REPLY_MODES, "thread", problems),
        slack_api_url=api_url,
        slack_file_url_prefixes=_url_prefixes(env.get("SLACK_FILE_URL_PREFIXES", ""), problems),
        shutdown_deadline_s=_float(
            env, "ARK_SHUTDOWN_DEADLINE_S", DEFAULT_SHUTDOWN_DEADLINE_S, problems
        ),
        max_inflight_file_mb=inflight_mb,
        health_file=env.get("ARK_HEALTH_FILE", "").strip() or default_health_file(),
        metrics_namespace=namespace,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        aws_session_token=env.get("AWS_SESSION_TOKEN") or None,
    )
    if problems:
        raise ConfigError(problems)
    return settings
