"""Text checks of the documentation and the Dockerfile: links resolve, the systemd unit in
docs/deployment/systemd.md is the hardened notify service, the Dockerfile keeps its shape."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SYSTEMD_MD = DOCS / "deployment" / "systemd.md"
DOCKERFILE = ROOT / "Dockerfile"

# [text](target) and [text]: target reference definitions; images too
_INLINE_LINK_RE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE_RE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.MULTILINE)
_FENCE_RE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_CODE_SPAN_RE = re.compile(r"`[^`\n]*`")
_SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def relative_links(path: Path) -> list[str]:
    """Every link target in `path` that is a relative path (no scheme, not a bare anchor),
    outside code blocks and code spans."""
    text = _CODE_SPAN_RE.sub("", _FENCE_RE.sub("", path.read_text(encoding="utf-8")))
    targets = _INLINE_LINK_RE.findall(text) + _REFERENCE_RE.findall(text)
    return [t for t in targets if not _SCHEME_RE.match(t) and not t.startswith("#")]


def test_the_link_extractor_sees_links_and_skips_code(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        'See [a](a.md), [b](sub/b.md#part "title"), ![img](img.png), [web](https://x.y/z),\n'
        "[anchor](#here), `[not](code.md)`.\n\n[ref]: ref.md\n\n"
        "```md\n[fenced](fenced.md)\n```\n",
        encoding="utf-8",
    )
    assert relative_links(page) == ["a.md", "sub/b.md#part", "img.png", "ref.md"]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file(path: Path) -> None:
    """docs/performance.md is produced by the benchmark; it is required like any page."""
    missing = []
    for target in relative_links(path):
        file_part = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if not file_part:
            continue
        if not (path.parent / file_part).resolve().exists():
            missing.append(target)
    assert missing == [], f"{path.relative_to(ROOT)} links to missing files: {missing}"


def test_operations_links_the_doctor_page() -> None:
    assert "doctor.md" in relative_links(DOCS / "operations.md")
    assert (DOCS / "doctor.md").is_file()


# --------------------------------------------------------------------------- systemd


def systemd_unit(markdown: str) -> dict[str, dict[str, list[str]]]:
    """The first ```ini block that holds a [Service] section, as section -> key -> values."""
    for block in re.findall(r"^```ini\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL):
        if "[Service]" not in block:
            continue
        unit: dict[str, dict[str, list[str]]] = {}
        section = ""
        for raw in block.splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                unit.setdefault(section, {})
                continue
            key, sep, value = line.partition("=")
            assert sep, f"not a key=value line: {raw!r}"
            unit[section].setdefault(key.strip(), []).append(value.strip())
        return unit
    raise AssertionError("no systemd unit in the page")


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
}


def test_the_systemd_unit_is_a_hardened_notify_service() -> None:
    unit = systemd_unit(SYSTEMD_MD.read_text(encoding="utf-8"))
    service = unit["Service"]

    def one(key: str) -> str:
        assert key in service, f"{key}= missing from the unit"
        return service[key][-1]

    assert one("Type") == "notify"
    assert one("NotifyAccess") == "main"
    assert int(one("WatchdogSec")) > 0
    assert one("Restart") == "always"
    assert one("ExecStart").endswith("/ark")
    assert any(e.startswith("ARK_HEALTH_FILE=/run/ark/") for e in service["Environment"])
    for key, value in HARDENING.items():
        assert one(key) == value, key
    assert "@system-service" in service["SystemCallFilter"]
    assert set(one("RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_operations_links_the_unit_instead_of_repeating_it() -> None:
    operations = (DOCS / "operations.md").read_text(encoding="utf-8")
    assert "deployment/systemd.md" in operations
    assert "[Service]" not in operations


# --------------------------------------------------------------------------- Dockerfile


def dockerfile_stages(text: str) -> list[list[str]]:
    """The instructions of each stage (continuation lines joined, comments dropped)."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[list[str]] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        assert stages, "an instruction before the first FROM"
        stages[-1].append(line)
    return stages


def _instructions(stage: list[str], name: str) -> list[str]:
    return [line[len(name) :].strip() for line in stage if line.upper().startswith(name + " ")]


def test_the_dockerfile_is_multi_stage_with_a_lean_non_root_final_stage() -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert len(stages) >= 2
    build, final = stages[0], stages[-1]
    assert re.match(r"FROM python:3\.\d+-slim\b", build[0])
    assert re.match(r"FROM python:3\.\d+-slim\b", final[0])
    assert any("pip wheel" in run for run in _instructions(build, "RUN"))

    final_runs = " ".join(_instructions(final, "RUN"))
    for compiler in ("gcc", "g++", "build-essential", "clang", "make ", "apt-get install"):
        assert compiler not in final_runs, compiler
    assert "--no-index" in final_runs  # only the wheels of the build stage
    assert "compileall" in final_runs

    (user,) = _instructions(final, "USER")
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))
    assert _instructions(final, "ENTRYPOINT") == ['["ark"]']
    (healthcheck,) = _instructions(final, "HEALTHCHECK")
    assert re.search(r'CMD \["ark",\s*"health"\]', healthcheck)
    env = " ".join(_instructions(final, "ENV"))
    assert re.search(r"\bMALLOC_ARENA_MAX=\d+", env)
    assert not _instructions(final, "EXPOSE")


def test_the_docker_page_matches_the_dockerfile() -> None:
    page = " ".join((DOCS / "deployment" / "docker.md").read_text(encoding="utf-8").split())
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert "HEALTHCHECK" in dockerfile
    assert "has no `HEALTHCHECK`" not in page
    assert "no HEALTHCHECK" not in page
    assert "docker image ls ark" in page
