"""Typed failures, one class per failure family, and the user-facing texts in one place."""

from __future__ import annotations

# What the user reads. Kept byte-identical to the reference: history formatting drops
# exactly these texts from restored context.
ERROR_REPLY = "Sorry, I encountered an error processing your request."
BUSY_REPLY = "I'm currently handling too many requests. Please try again in a moment."
UNSUPPORTED_FILE_REPLY = (
    "I can't process this file type. Supported formats: CSV, PDF, Excel, Word, JSON, YAML, "
    "HTML, Markdown, and plain text."
)
SHUTDOWN_REPLY = "I'm restarting and couldn't finish this answer. Please ask again in a minute."


class ArkError(Exception):
    """Base of Ark's own errors."""


class SlackApiError(ArkError):
    """A Slack Web API call failed: `code` is Slack's error code (`ok: false`) or an HTTP
    condition such as `http_500`, `ratelimited`, `network_error`."""

    def __init__(self, method: str, code: str, status: int | None = None) -> None:
        self.method = method
        self.code = code
        self.status = status
        super().__init__(f"{method} failed: {code}")


class SocketModeFatal(ArkError):
    """Socket Mode cannot continue (bad app token, Socket Mode disabled): do not retry."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"socket mode stopped: {reason}")


class FileRejected(ArkError):
    """An attachment was refused: `reason` is short and safe to show the user."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


class AgentError(ArkError):
    """The agent call failed. `kind` is a short code (`throttling`, `access_denied`,
    `timeout`, `server`, `validation`, ...); `retryable` says whether the same request may
    succeed later; `code` is the service's own error code when there is one."""

    def __init__(self, kind: str, message: str, *, retryable: bool, code: str | None = None):
        self.kind = kind
        self.retryable = retryable
        self.code = code
        super().__init__(f"{kind}: {message}")
