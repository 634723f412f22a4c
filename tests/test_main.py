"""Tests for the `ark` command line, run as a real process (`python -m ark`).

Every run here has an incomplete or invalid configuration, so the process exits before it
would open any connection.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ark import __version__

RUN_TIMEOUT_S = 20
EXIT_CONFIG = 2
REQUIRED = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "BEDROCK_AGENT_ID", "BEDROCK_AGENT_ALIAS_ID")
BOT_TOKEN = "xoxb-1111-2222-validBOTsecret"
APP_TOKEN = "xapp-1-A1-3333-validAPPsecret"


def _run(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {"PATH": os.environ.get("PATH", "")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ark", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def _named(stderr: str) -> set[str]:
    return {name for name in REQUIRED if name in stderr}


def test_version(tmp_path: Path) -> None:
    result = _run(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ark {__version__}"
    assert __version__ == "0.1.0"


def test_no_configuration_exits_2_naming_every_variable(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == EXIT_CONFIG
    assert _named(result.stderr) == set(REQUIRED)
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout


def test_bad_token_prefix_never_printed(tmp_path: Path) -> None:
    user_token = "xoxp-9999-8888-userSECRETvalue"
    wrong_app = "xoxb-7777-6666-botINappSECRET"
    result = _run(
        tmp_path,
        env={
            "SLACK_BOT_TOKEN": user_token,
            "SLACK_APP_TOKEN": wrong_app,
            "BEDROCK_AGENT_ID": "AGENT1",
        },
    )
    assert result.returncode == EXIT_CONFIG
    assert "SLACK_BOT_TOKEN" in result.stderr
    assert "SLACK_APP_TOKEN" in result.stderr
    assert "BEDROCK_AGENT_ALIAS_ID" in result.stderr
    output = result.stdout + result.stderr
    for secret in (user_token, wrong_app, "userSECRETvalue", "botINappSECRET"):
        assert secret not in output
    assert "Traceback" not in output


def test_dotenv_in_cwd_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "# written by the test\n"
        f"SLACK_BOT_TOKEN={BOT_TOKEN}\nexport SLACK_APP_TOKEN='{APP_TOKEN}'\n"
        "BEDROCK_AGENT_ID=AGENT1\n",
        encoding="utf-8",
    )
    result = _run(tmp_path)
    assert result.returncode == EXIT_CONFIG
    assert _named(result.stderr) == {"BEDROCK_AGENT_ALIAS_ID"}
    assert "Traceback" not in result.stderr


def test_shell_value_wins_over_dotenv(tmp_path: Path) -> None:
    # the file's bot token is wrong; the shell's is right, so only the alias is missing
    (tmp_path / ".env").write_text(
        f"SLACK_BOT_TOKEN=xoxp-wrong-kind\nSLACK_APP_TOKEN={APP_TOKEN}\nBEDROCK_AGENT_ID=AGENT1\n",
        encoding="utf-8",
    )
    result = _run(tmp_path, env={"SLACK_BOT_TOKEN": BOT_TOKEN})
    assert result.returncode == EXIT_CONFIG
    assert _named(result.stderr) == {"BEDROCK_AGENT_ALIAS_ID"}


def test_shell_value_wins_even_when_it_is_the_bad_one(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"SLACK_BOT_TOKEN={BOT_TOKEN}\nSLACK_APP_TOKEN={APP_TOKEN}\nBEDROCK_AGENT_ID=AGENT1\n",
        encoding="utf-8",
    )
    result = _run(tmp_path, env={"BEDROCK_AGENT_ID": "not-valid-id"})
    assert result.returncode == EXIT_CONFIG
    assert _named(result.stderr) == {"BEDROCK_AGENT_ID", "BEDROCK_AGENT_ALIAS_ID"}
    assert "not-valid-id" in result.stderr


def test_env_file_option(tmp_path: Path) -> None:
    (tmp_path / "other.env").write_text(
        f"SLACK_BOT_TOKEN={BOT_TOKEN}\nSLACK_APP_TOKEN={APP_TOKEN}\nBEDROCK_AGENT_ALIAS_ID=ALIAS1\n",
        encoding="utf-8",
    )
    result = _run(tmp_path, "--env-file", "other.env")
    assert result.returncode == EXIT_CONFIG
    assert _named(result.stderr) == {"BEDROCK_AGENT_ID"}


def test_invalid_optional_value_is_reported(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        env={
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "BEDROCK_AGENT_ID": "AGENT1",
            "SESSION_TTL_MINUTES": "0",
            "LOG_LEVEL": "verbose",
        },
    )
    assert result.returncode == EXIT_CONFIG
    assert "SESSION_TTL_MINUTES" in result.stderr
    assert "LOG_LEVEL" in result.stderr
    assert BOT_TOKEN not in result.stderr
    assert APP_TOKEN not in result.stderr


def test_unknown_aws_profile_is_a_configuration_error(tmp_path: Path) -> None:
    aws = tmp_path / "aws"
    aws.mkdir()
    (aws / "config").write_text("[profile dev]\nregion = eu-west-1\n")
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "BEDROCK_AGENT_ID": "AGENT1",
        "BEDROCK_AGENT_ALIAS_ID": "ALIAS1",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(aws / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(aws / "credentials"),
        "AWS_PROFILE": "nope",
    }
    result = _run(tmp_path, env=env)
    assert result.returncode == EXIT_CONFIG
    assert "AWS_PROFILE=nope is not a profile" in result.stderr
    assert "Traceback" not in result.stderr
    assert BOT_TOKEN not in result.stderr


def test_dotenv_that_is_not_utf8_exits_2_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"SLACK_BOT_TOKEN=xoxb-\xff\xfe\n")
    result = _run(tmp_path)
    assert result.returncode == EXIT_CONFIG
    assert ".env is not valid UTF-8" in result.stderr
    assert "Traceback" not in result.stderr


def test_health_does_not_import_asyncio(tmp_path: Path) -> None:
    """`ark health` runs every few seconds as a container health check: it stays light."""
    code = (
        "import sys\n"
        "from ark.__main__ import main\n"
        f"rc = main(['health', '--env-file', {str(tmp_path / 'absent.env')!r}])\n"
        "print(rc, 'asyncio' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "ARK_HEALTH_FILE": str(tmp_path / "hb.json")},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert result.stdout.split() == ["1", "False"], result.stderr
    assert "no heartbeat" in result.stderr
