"""Attachments in: media types, the per-message plan, the URL allow-list, the download."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import respx

from ark.errors import FileRejected
from ark.slack.files import (
    MAX_FILES_PER_MESSAGE,
    MAX_TOTAL_FILE_BYTES,
    SUPPORTED_EXTENSIONS,
    SlackFile,
    download_file,
    is_allowed_url,
    media_type_for,
    parse_files,
    plan_files,
)

MB = 1024 * 1024
TOKEN = "bot-token-SECRET-1234"
FILE_URL = "https://files.slack.com/files-pri/T1-F1/download/report.pdf"


def sf(
    name: str, size: int | None = 100, mimetype: str | None = None, url: str | None = FILE_URL
) -> SlackFile:
    return SlackFile(id=f"F-{name}", name=name, mimetype=mimetype, size=size, url=url)


# -- parse_files ---------------------------------------------------------------------------


def test_parse_files_tolerates_junk_and_prefers_download_url() -> None:
    raw = [
        {
            "id": "F1",
            "name": "a.pdf",
            "mimetype": "application/pdf",
            "size": 10,
            "url_private": "https://files.slack.com/p",
            "url_private_download": "https://files.slack.com/d",
        },
        {"id": "F2", "title": "titled", "size": True, "url_private": "https://files.slack.com/p2"},
        {"id": "F3", "size": -5},
        {"name": "no-id.pdf"},
        {"id": ""},
        "junk",
        None,
    ]
    assert parse_files(raw) == [
        SlackFile("F1", "a.pdf", "application/pdf", 10, "https://files.slack.com/d"),
        SlackFile("F2", "titled", None, None, "https://files.slack.com/p2"),
        SlackFile("F3", "F3", None, None, None),
    ]
    assert parse_files(None) == []
    assert parse_files({"id": "F1"}) == []


# -- media types ------------------------------------------------------------------------------


def test_supported_extensions_match_reference_table() -> None:
    assert dict(SUPPORTED_EXTENSIONS) == {
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


@pytest.mark.parametrize(
    ("name", "mimetype", "expected"),
    [
        ("data.csv", None, "text/csv"),
        ("DATA.CSV", None, "text/csv"),
        ("Sheet.XlSx", "application/octet-stream", SUPPORTED_EXTENSIONS[".xlsx"]),
        ("conf.yml", "text/x-yaml", "text/yaml"),
        ("notes.md", "text/plain", "text/markdown"),  # extension wins over mimetype
        ("README", "text/plain", "text/plain"),  # mimetype fallback
        ("report", "application/pdf; charset=binary", "application/pdf"),
        ("blob", "application/octet-stream", None),
        ("blob", "binary", None),
        ("blob.bin", "text/html", "text/html"),
        ("image.png", "image/png", None),
        ("archive.tar.gz", None, None),
        ("noext", None, None),
        (".pdf", None, None),  # a dotfile has no extension
    ],
)
def test_media_type_for(name: str, mimetype: str | None, expected: str | None) -> None:
    assert media_type_for(name, mimetype) == expected


# -- plan_files ----------------------------------------------------------------------------------


def test_plan_keeps_order_and_lists_unsupported() -> None:
    files = [sf("a.pdf"), sf("pic.png"), sf("b.csv"), sf("c.exe")]
    plan = plan_files(files)
    assert [(f.name, t) for f, t in plan.accepted] == [
        ("a.pdf", "application/pdf"),
        ("b.csv", "text/csv"),
    ]
    assert plan.unsupported == ("pic.png", "c.exe")
    assert plan.skipped == ()


def test_plan_caps_file_count() -> None:
    files = [sf(f"f{i}.txt") for i in range(7)] + [sf("x.png")]
    plan = plan_files(files)
    assert len(plan.accepted) == MAX_FILES_PER_MESSAGE
    assert [name for name, _ in plan.skipped] == ["f5.txt", "f6.txt"]
    assert all("5 files" in reason for _, reason in plan.skipped)
    assert plan.unsupported == ("x.png",)


def test_plan_caps_total_bytes() -> None:
    files = [
        sf("a.pdf", 6 * MB),
        sf("huge.pdf", 11 * MB),  # over the cap alone
        sf("b.pdf", 5 * MB),  # would push the total to 11 MB
        sf("c.pdf", 4 * MB),  # fits exactly: 10 MB
        sf("d.txt", None),  # unknown size: checked during download
        sf("e.txt", 1),  # budget exhausted
    ]
    plan = plan_files(files)
    assert [f.name for f, _ in plan.accepted] == ["a.pdf", "c.pdf", "d.txt"]
    assert [name for name, _ in plan.skipped] == ["huge.pdf", "b.pdf", "e.txt"]
    assert all("10 MB" in reason for _, reason in plan.skipped)
    assert sum(f.size or 0 for f, _ in plan.accepted) == MAX_TOTAL_FILE_BYTES


def test_plan_custom_limits() -> None:
    plan = plan_files(
        [sf("a.txt", 3), sf("b.txt", 3), sf("c.txt", 3)], max_files=5, max_total_bytes=6
    )
    assert [f.name for f, _ in plan.accepted] == ["a.txt", "b.txt"]
    assert plan.skipped[0][0] == "c.txt"


# -- is_allowed_url --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        (FILE_URL, True),
        ("https://slack.com/files/x", True),
        ("https://FILES.Slack.COM/files-pri/x", True),
        ("https://files.slack.com:443/files-pri/x", True),
        ("https://files.slack.com/files-pri/a..b.pdf", True),  # dots inside a name are fine
        ("https://files.slack.com/files-pri/100%25.txt", True),
        ("http://files.slack.com/files-pri/x", False),
        ("ftp://files.slack.com/x", False),
        ("https://files.slack.com:8443/x", False),
        ("https://slack.com.evil.com/x", False),
        ("https://evil.com/slack.com", False),
        ("https://evilslack.com/x", False),
        ("https://files.slack.com@evil.com/x", False),
        ("https://user:pw@files.slack.com/x", False),
        ("https://evil.com\\@files.slack.com/x", False),
        ("https://evil.com#@files.slack.com/", False),
        ("https://files.slack.com./x", False),
        ("https://files.slack.com/files-pri/../../evil", False),
        ("https://files.slack.com/files-pri/./x", False),
        ("https://files.slack.com/files-pri/%2e%2e/x", False),
        ("https://files.slack.com/files-pri/%2E%2E/x", False),
        ("https://files.slack.com/files-pri/.%2e/x", False),
        ("https://files.slack.com/files-pri/%252e%252e/x", False),
        ("https://files.slack.com/files-pri%2f..%2fx", False),
        ("https://files.slack.com/files-pri\\..\\x", False),
        ("https://files.slack.com/a b", False),
        ("https://files.slack.com/a\n/../b", False),
        ("https://files.slack.cöm/x", False),
        ("https://", False),
        ("not a url", False),
        ("", False),
    ],
)
def test_is_allowed_url_default(url: str, allowed: bool) -> None:
    assert is_allowed_url(url, ()) is allowed


PREFIXES = ("https://files.example.com/files", "http://127.0.0.1:8080/f/")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://files.example.com/files", True),
        ("https://files.example.com/files/x.pdf", True),
        ("https://FILES.example.com:443/files/x.pdf", True),
        ("https://files.example.com/files-evil/x", False),  # segment boundary
        ("https://files.example.com/other/x", False),
        ("https://files.example.com/files/../other", False),
        ("https://files.example.com/files/%2e%2e/other", False),
        ("http://files.example.com/files/x", False),  # scheme differs from the prefix
        ("https://files.example.com:444/files/x", False),
        ("https://files.example.com.evil.com/files/x", False),
        ("https://files.example.com@evil.com/files/x", False),
        ("https://files.slack.com/files-pri/x", False),  # prefixes replace the default
        ("http://127.0.0.1:8080/f/x", True),
        ("http://127.0.0.1:8081/f/x", False),
        ("http://127.0.0.1/f/x", False),
        ("http://127.0.0.1:8080/fx", False),
    ],
)
def test_is_allowed_url_with_prefixes(url: str, allowed: bool) -> None:
    assert is_allowed_url(url, PREFIXES) is allowed


def test_prefix_with_root_path_admits_whole_host() -> None:
    assert is_allowed_url("https://h.test/any/path", ("https://h.test",))
    assert is_allowed_url("https://h.test/any/path", ("https://h.test/",))
    assert not is_allowed_url("https://h.test/../x", ("https://h.test/",))


# -- download_file ---------------------------------------------------------------------


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


async def fetch(client: httpx.AsyncClient, file: SlackFile, **kw: Any) -> bytes:
    kw.setdefault("token", TOKEN)
    kw.setdefault("prefixes", ())
    kw.setdefault("max_bytes", MAX_TOTAL_FILE_BYTES)
    return await download_file(client, file, **kw)


async def test_download_sends_bearer_and_returns_bytes(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    route = router.get(FILE_URL).mock(
        return_value=httpx.Response(
            200, content=b"%PDF-1.7", headers={"content-type": "application/pdf"}
        )
    )
    assert await fetch(client, sf("report.pdf")) == b"%PDF-1.7"
    assert route.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_download_without_url_rejected(client: httpx.AsyncClient) -> None:
    with pytest.raises(FileRejected) as info:
        await fetch(client, sf("a.pdf", url=None))
    assert info.value.name == "a.pdf"


async def test_download_off_allow_list_makes_no_request(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    route = router.get(url__regex=r".*").mock(return_value=httpx.Response(200, content=b"x"))
    with pytest.raises(FileRejected):
        await fetch(client, sf("a.pdf", url="https://evil.com/a.pdf"))
    assert not route.called


async def test_download_size_cap_aborts_mid_stream(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    yielded = 0
    total_chunks = 100

    async def body() -> AsyncIterator[bytes]:
        nonlocal yielded
        for _ in range(total_chunks):
            yielded += 1
            yield b"x" * 1000

    router.get(FILE_URL).mock(return_value=httpx.Response(200, content=body()))
    with pytest.raises(FileRejected) as info:
        await fetch(client, sf("a.txt"), max_bytes=5_500)
    assert "larger than" in info.value.reason
    assert 6 <= yielded < total_chunks


async def test_download_exactly_at_cap_accepted(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    router.get(FILE_URL).mock(return_value=httpx.Response(200, content=b"y" * 64))
    assert await fetch(client, sf("a.txt"), max_bytes=64) == b"y" * 64


async def test_download_content_length_rejected_before_reading(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    yielded = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal yielded
        yielded += 1
        yield b"x" * 10

    router.get(FILE_URL).mock(
        return_value=httpx.Response(200, content=body(), headers={"content-length": str(20 * MB)})
    )
    with pytest.raises(FileRejected) as info:
        await fetch(client, sf("a.pdf"), max_bytes=10 * MB)
    assert "10 MB" in info.value.reason
    assert yielded == 0


async def test_download_html_sign_in_page_rejected(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    router.get(FILE_URL).mock(
        return_value=httpx.Response(
            200,
            text="<!DOCTYPE html><title>Sign in</title>",
            headers={"content-type": "text/html; charset=utf-8"},
        )
    )
    with pytest.raises(FileRejected) as info:
        await fetch(client, sf("report.pdf"))
    assert "files:read" in info.value.reason


async def test_download_html_file_itself_accepted(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    router.get(FILE_URL).mock(
        return_value=httpx.Response(200, text="<p>hi</p>", headers={"content-type": "text/html"})
    )
    assert await fetch(client, sf("page.html")) == b"<p>hi</p>"


@pytest.mark.parametrize("status", [403, 404, 500])
async def test_download_http_error_rejected(
    client: httpx.AsyncClient, router: respx.MockRouter, status: int
) -> None:
    router.get(FILE_URL).mock(return_value=httpx.Response(status))
    with pytest.raises(FileRejected) as info:
        await fetch(client, sf("a.pdf"))
    assert str(status) in info.value.reason


async def test_download_redirect_to_allowed_url_followed(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    target = "https://files.slack.com/files-tmb/T1-F1/report.pdf"
    first = router.get(FILE_URL).mock(
        return_value=httpx.Response(302, headers={"location": target})
    )
    second = router.get(target).mock(return_value=httpx.Response(200, content=b"data"))
    assert await fetch(client, sf("report.pdf")) == b"data"
    assert first.called
    assert second.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"


async def test_download_relative_redirect_followed(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    router.get(FILE_URL).mock(
        return_value=httpx.Response(301, headers={"location": "/files-pri/other"})
    )
    target = router.get("https://files.slack.com/files-pri/other").mock(
        return_value=httpx.Response(200, content=b"ok")
    )
    assert await fetch(client, sf("a.txt")) == b"ok"
    assert target.called


@pytest.mark.parametrize(
    "location",
    ["https://evil.com/steal", "http://files.slack.com/x", "https://files.slack.com@evil.com/x"],
)
async def test_download_redirect_off_allow_list_refused(
    client: httpx.AsyncClient, router: respx.MockRouter, location: str
) -> None:
    router.get(FILE_URL).mock(return_value=httpx.Response(302, headers={"location": location}))
    anywhere_else = router.route(url__regex=r"^(?!" + FILE_URL.replace(".", r"\.") + "$).*").mock(
        return_value=httpx.Response(200, content=b"stolen")
    )
    with pytest.raises(FileRejected) as info:
        await fetch(client, sf("a.pdf"))
    assert "redirect" in info.value.reason
    assert not anywhere_else.called  # the token never left


async def test_download_redirect_dot_segments_resolved_before_check(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    start = "https://h.test/files/a.pdf"
    router.get(start).mock(
        return_value=httpx.Response(302, headers={"location": "/files/../admin"})
    )
    admin = router.get("https://h.test/admin").mock(return_value=httpx.Response(200, content=b"x"))
    with pytest.raises(FileRejected):
        await fetch(client, sf("a.pdf", url=start), prefixes=("https://h.test/files",))
    assert not admin.called


async def test_download_redirect_loop_bounded(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    route = router.get(FILE_URL).mock(
        return_value=httpx.Response(302, headers={"location": FILE_URL})
    )
    with pytest.raises(FileRejected) as info:
        await fetch(client, sf("a.pdf"))
    assert "too many redirects" in info.value.reason
    assert route.call_count == 4  # the first request and 3 redirects


async def test_download_network_errors_rejected(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    route = router.get(FILE_URL).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(FileRejected) as info:
        await fetch(client, sf("a.pdf"))
    assert "network" in info.value.reason

    route.side_effect = httpx.ReadTimeout("slow")
    with pytest.raises(FileRejected) as info:
        await fetch(client, sf("a.pdf"))
    assert "timed out" in info.value.reason


async def test_download_that_fails_to_decode_is_rejected_not_raised(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    router.get(FILE_URL).mock(
        return_value=httpx.Response(
            200,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/pdf"},
            stream=httpx.ByteStream(b"%PDF not gzip"),
        )
    )
    with pytest.raises(FileRejected) as info:
        await fetch(client, sf("a.pdf"))
    assert "network" in info.value.reason


async def test_download_overall_timeout(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    never = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"x"
        await never.wait()
        yield b"y"

    router.get(FILE_URL).mock(return_value=httpx.Response(200, content=body()))
    with pytest.raises(FileRejected) as info:
        await fetch(client, sf("a.txt"), timeout_s=0.05)
    assert "timed out" in info.value.reason


async def test_download_with_configured_prefix(
    client: httpx.AsyncClient, router: respx.MockRouter
) -> None:
    url = "http://127.0.0.1:9/f/a.txt"
    route = router.get(url).mock(return_value=httpx.Response(200, content=b"local"))
    assert await fetch(client, sf("a.txt", url=url), prefixes=("http://127.0.0.1:9/f",)) == b"local"
    assert route.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"
