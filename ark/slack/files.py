"""Attachments coming in: which files to accept, where they may be fetched from, the fetch.

Pure parts (`parse_files`, `media_type_for`, `plan_files`, `is_allowed_url`) decide; the one
I/O function, `download_file`, fetches a single file with the bot token through the
`httpx.AsyncClient` it is given and raises `ark.errors.FileRejected` with a short reason that
is safe to show the user. The upload of agent output lives in `SlackWeb.upload_file`.

The limits: at most 5 files per message and 10 MB for all files of one invocation (Bedrock
rejects more), 30 s per download, and only URLs on Slack's own hosts (or the operator's
configured prefixes) ever see the bot token.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

import httpx

from ark.errors import FileRejected

MAX_FILES_PER_MESSAGE = 5
MAX_TOTAL_FILE_BYTES = 10 * 1024 * 1024  # Bedrock's cap for all files of one invocation
DOWNLOAD_TIMEOUT_S = 30.0
MAX_OUTPUT_FILE_BYTES = 50 * 1024 * 1024  # agent files we upload back
MAX_DOWNLOAD_REDIRECTS = 3

SUPPORTED_EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {
        ".csv": "text/csv",
        ".xls": "application/vnd.ms-excel",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".json": "application/json",
        ".yaml": "text/yaml",
        ".yml": "text/yaml",
        ".doc": "application/msword",
        ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".html": "text/html",
        ".md": "text/markdown",
        ".txt": "text/plain",
        ".pdf": "application/pdf",
    }
)
_SUPPORTED_MEDIA_TYPES = frozenset(SUPPORTED_EXTENSIONS.values())
_IGNORED_MIMETYPES = frozenset({"binary", "application/octet-stream"})
_SLACK_HOST = "slack.com"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_UNQUOTE_ROUNDS = 4
_ENCODED_SEPARATORS = ("%2f", "%5c")


@dataclass(frozen=True, slots=True)
class SlackFile:
    """One attachment as Slack describes it; `url` is url_private_download or url_private."""

    id: str
    name: str
    mimetype: str | None
    size: int | None
    url: str | None


@dataclass(frozen=True, slots=True)
class FilePlan:
    """What to do with a message's files: `accepted` (file, media type) in order, the names
    of files of an `unsupported` type, and `skipped` (name, short reason) over the limits."""

    accepted: tuple[tuple[SlackFile, str], ...]
    unsupported: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


def _nonempty_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_files(raw: Any) -> list[SlackFile]:
    """The `files` list of a Slack message event as SlackFiles; junk and entries without an
    id are skipped, never raised on."""
    if not isinstance(raw, list):
        return []
    out: list[SlackFile] = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        file_id = _nonempty_str(entry.get("id"))
        if file_id is None:
            continue
        size = entry.get("size")
        valid_size = isinstance(size, int) and not isinstance(size, bool) and size >= 0
        name = _nonempty_str(entry.get("name")) or _nonempty_str(entry.get("title"))
        url = _nonempty_str(entry.get("url_private_download")) or _nonempty_str(
            entry.get("url_private")
        )
        out.append(
            SlackFile(
                id=file_id,
                name=name or file_id,
                mimetype=_nonempty_str(entry.get("mimetype")),
                size=size if valid_size else None,
                url=url,
            )
        )
    return out


def media_type_for(name: str, mimetype: str | None) -> str | None:
    """The media type Bedrock gets for a file: by extension (case-insensitive) first, then
    Slack's mimetype when it is a supported one (`binary` and `application/octet-stream`
    say nothing); None when the file is not supported."""
    by_extension = SUPPORTED_EXTENSIONS.get(posixpath.splitext(name)[1].lower())
    if by_extension is not None:
        return by_extension
    if not mimetype:
        return None
    normalised = mimetype.split(";", 1)[0].strip().lower()
    if normalised in _IGNORED_MIMETYPES or normalised not in _SUPPORTED_MEDIA_TYPES:
        return None
    return normalised


def format_size(num_bytes: int) -> str:
    """`10 MB`, `2.5 MB`, `512 KB`, `12 bytes` (binary units, as Bedrock counts them)."""
    mib, kib = 1024 * 1024, 1024
    if num_bytes >= mib:
        return f"{num_bytes // mib} MB" if num_bytes % mib == 0 else f"{num_bytes / mib:.1f} MB"
    if num_bytes >= kib:
        return f"{num_bytes // kib} KB"
    return f"{num_bytes} bytes"


def plan_files(
    files: Sequence[SlackFile],
    *,
    max_files: int = MAX_FILES_PER_MESSAGE,
    max_total_bytes: int = MAX_TOTAL_FILE_BYTES,
) -> FilePlan:
    """Sort a message's files into accepted, unsupported and skipped, in order.

    Supported files are accepted while fewer than `max_files` are accepted and the declared
    sizes stay within `max_total_bytes` in total; a file that would break either limit is
    skipped with a reason naming it. A file of unknown size is accepted here: the download
    enforces the remaining budget."""
    accepted: list[tuple[SlackFile, str]] = []
    unsupported: list[str] = []
    skipped: list[tuple[str, str]] = []
    total_bytes = 0
    total_limit = format_size(max_total_bytes)
    for file in files:
        media_type = media_type_for(file.name, file.mimetype)
        if media_type is None:
            unsupported.append(file.name)
            continue
        if len(accepted) >= max_files:
            skipped.append((file.name, f"only {max_files} files can be read per message"))
            continue
        size = file.size or 0
        if size > max_total_bytes:
            skipped.append((file.name, f"larger than the {total_limit} limit for files"))
            continue
        if total_bytes + size > max_total_bytes:
            skipped.append((file.name, f"the files of one message may total at most {total_limit}"))
            continue
        total_bytes += size
        accepted.append((file, media_type))
    return FilePlan(tuple(accepted), tuple(unsupported), tuple(skipped))


def planned_bytes(plan: FilePlan, *, max_total_bytes: int = MAX_TOTAL_FILE_BYTES) -> int:
    """The bytes the accepted files of `plan` will occupy once downloaded, before any
    download: the sum of their declared sizes, or `max_total_bytes` (the most a message's
    downloads may read) when any size is unknown."""
    if not plan.accepted:
        return 0
    if any(file.size is None for file, _ in plan.accepted):
        return max_total_bytes
    return min(max_total_bytes, sum(file.size or 0 for file, _ in plan.accepted))


# -- where a file may come from -------------------------------------------------------


def _printable_ascii(url: str) -> bool:
    return all(0x21 <= ord(c) < 0x7F for c in url)


def _has_dot_segment_or_separator_tricks(path: str) -> bool:
    """True for `.`/`..` segments (also percent-encoded, even several times over),
    backslashes, and encoded `/` or `\\` anywhere in the path."""
    current = path
    for _ in range(_MAX_UNQUOTE_ROUNDS + 1):
        lowered = current.lower()
        if "\\" in current or any(sep in lowered for sep in _ENCODED_SEPARATORS):
            return True
        if any(segment in (".", "..") for segment in current.split("/")):
            return True
        decoded = unquote(current)
        if decoded == current:
            return False
        current = decoded
    return True  # still changing after several rounds: refuse rather than guess


def _parse_safe(url: str) -> tuple[SplitResult, str, int] | None:
    """Split `url` when it is an http(s) URL without userinfo, odd characters or path tricks;
    return (parts, lowercase host, effective port), or None. httpx must read the same
    scheme, host and port, so no parser difference can send the request elsewhere."""
    if not _printable_ascii(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
        ours = httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or host.endswith("."):
        return None
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        return None
    if _has_dot_segment_or_separator_tricks(parts.path):
        return None
    effective_port = port if port is not None else _DEFAULT_PORTS[scheme]
    if (ours.scheme, ours.host, ours.port or _DEFAULT_PORTS[scheme], ours.userinfo) != (
        scheme,
        host,
        effective_port,
        b"",
    ):
        return None
    return parts, host, effective_port


def _is_slack_host(host: str) -> bool:
    return host == _SLACK_HOST or host.endswith("." + _SLACK_HOST)


def _matches_prefix(parts: SplitResult, host: str, port: int, prefix: str) -> bool:
    parsed = _parse_safe(prefix)
    if parsed is None:
        return False
    p_parts, p_host, p_port = parsed
    if (p_parts.scheme.lower(), p_host, p_port) != (parts.scheme.lower(), host, port):
        return False
    base = p_parts.path.rstrip("/")
    return not base or parts.path == base or parts.path.startswith(base + "/")


def is_allowed_url(url: str, prefixes: Sequence[str]) -> bool:
    """May the bot token be sent to `url`?

    Without prefixes: only https on slack.com or a subdomain, port 443. With prefixes: the
    scheme, host and port must equal one prefix's and the path must lie under its path, a
    whole segment at a time (`/files` admits `/files/x`, never `/files-evil/x`). Always
    refused: userinfo (`user@host`), `.`/`..` segments (also percent-encoded), backslashes,
    encoded slashes, non-printable or non-ASCII characters."""
    parsed = _parse_safe(url)
    if parsed is None:
        return False
    parts, host, port = parsed
    if not prefixes:
        return parts.scheme.lower() == "https" and port == 443 and _is_slack_host(host)
    return any(_matches_prefix(parts, host, port, prefix) for prefix in prefixes)


# -- the download ---------------------------------------------------------------------


def _is_html(content_type: str | None) -> bool:
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == "text/html"


async def download_file(
    client: httpx.AsyncClient,
    file: SlackFile,
    *,
    token: str,
    prefixes: Sequence[str],
    max_bytes: int,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
) -> bytes:
    """Fetch `file` with the bot token, at most `max_bytes`, within `timeout_s` overall.

    Redirects are followed by hand, at most `MAX_DOWNLOAD_REDIRECTS`, and only to allowed
    URLs: the token never leaves the allow-list. Raises `FileRejected` (reason safe for the
    user) for: no URL, a URL off the allow-list, too many redirects, an HTTP status other
    than 200, an HTML sign-in page instead of the file (missing files:read), a body larger
    than `max_bytes` (refused by Content-Length or aborted mid-stream), a timeout, a network
    error."""
    if not file.url:
        raise FileRejected(file.name, "Slack gave no download link for it")
    try:
        async with asyncio.timeout(timeout_s):
            return await _fetch(client, file, file.url, token, prefixes, max_bytes)
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise FileRejected(file.name, "the download timed out") from exc
    except httpx.HTTPError as exc:  # transport, a body that fails to decode, ...
        raise FileRejected(file.name, "the download failed (network error)") from exc


async def _fetch(
    client: httpx.AsyncClient,
    file: SlackFile,
    url: str,
    token: str,
    prefixes: Sequence[str],
    max_bytes: int,
) -> bytes:
    headers = {"Authorization": f"Bearer {token}"}
    for hop in range(MAX_DOWNLOAD_REDIRECTS + 1):
        if not is_allowed_url(url, prefixes):
            reason = "it redirected away from Slack" if hop else "its link is not a Slack file URL"
            raise FileRejected(file.name, reason)
        async with client.stream("GET", url, headers=headers, follow_redirects=False) as response:
            if response.status_code in _REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise FileRejected(file.name, "the download failed (bad redirect)")
                try:
                    url = str(response.url.join(location))
                except httpx.InvalidURL as exc:
                    raise FileRejected(file.name, "the download failed (bad redirect)") from exc
                continue
            return await _read_body(response, file, max_bytes)
    raise FileRejected(file.name, "the download failed (too many redirects)")


async def _read_body(response: httpx.Response, file: SlackFile, max_bytes: int) -> bytes:
    if response.status_code != 200:
        raise FileRejected(file.name, f"the download failed (HTTP {response.status_code})")
    if _is_html(response.headers.get("content-type")) and (
        media_type_for(file.name, file.mimetype) != "text/html"
    ):
        raise FileRejected(
            file.name,
            "Slack sent a sign-in page instead of the file: the app may lack the files:read scope",
        )
    too_large = f"it is larger than {format_size(max_bytes)}"
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise FileRejected(file.name, too_large)
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > max_bytes:
            raise FileRejected(file.name, too_large)
        chunks.append(chunk)
    return b"".join(chunks)
