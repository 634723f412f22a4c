"""Tests for ark.config: validation of every variable at once, .env parsing, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from ark.config import (
    DEFAULT_SESSION_TTL_MINUTES,
    DEFAULT_SLACK_API_URL,
    ConfigError,
    Settings,
    default_health_file,
    load_environment,
    load_settings,
    parse_dotenv,
)

BOT_TOKEN = "xoxb-1111-2222-abcdefSECRETbot"
APP_TOKEN = "xapp-1-A111-3333-fedcbaSECRETapp"
REQUIRED = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "BEDROCK_AGENT_ID", "BEDROCK_AGENT_ALIAS_ID")


def _env(**overrides: str) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "BEDROCK_AGENT_ID": "AGENT12345",
        "BEDROCK_AGENT_ALIAS_ID": "ALIAS1",
    }
    env.update(overrides)
    return env


def _problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value.problems


def _problems_naming(env: dict[str, str], name: str) -> list[str]:
    return [p for p in _problems(env) if name in p]


# --- load_settings -------------------------------------------------------------------------


def test_minimal_valid_env_gives_defaults() -> None:
    s = load_settings(_env())
    assert s.slack_bot_token == BOT_TOKEN
    assert s.slack_app_token == APP_TOKEN
    assert s.agent_id == "AGENT12345"
    assert s.agent_alias_id == "ALIAS1"
    assert s.session_ttl_minutes == DEFAULT_SESSION_TTL_MINUTES == 55
    assert s.session_ttl_s == 55 * 60.0
    assert s.log_level == "info"
    assert s.log_format == "text"
    assert s.max_concurrent_requests == 10
    assert s.dm_replies == "thread"
    assert s.slack_api_url == DEFAULT_SLACK_API_URL
    assert s.slack_file_url_prefixes == ()
    assert s.aws_region is None
    assert s.firehose_stream_name is None
    assert s.analytics_enabled is False


def test_optional_aws_values_are_read() -> None:
    s = load_settings(
        _env(AWS_REGION="eu-west-1", AWS_PROFILE="prof", FIREHOSE_STREAM_NAME="stream")
    )
    assert s.aws_region == "eu-west-1"
    assert s.aws_profile == "prof"
    assert s.firehose_stream_name == "stream"
    assert s.analytics_enabled is True


def test_every_missing_required_variable_is_named_at_once() -> None:
    problems = _problems({})
    text = "\n".join(problems)
    for name in REQUIRED:
        assert name in text
    assert len(problems) == 4


def test_config_error_message_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({})
    message = str(info.value)
    for name in REQUIRED:
        assert name in message


def test_blank_required_values_count_as_missing() -> None:
    problems = _problems(_env(SLACK_BOT_TOKEN="   ", BEDROCK_AGENT_ID=""))
    assert any("SLACK_BOT_TOKEN" in p for p in problems)
    assert any("BEDROCK_AGENT_ID" in p for p in problems)


def test_wrong_token_prefixes_are_named_without_the_value() -> None:
    user_token = "xoxp-9999-8888-userSECRETvalue"
    bot_as_app = "xoxb-7777-6666-botSECRETvalue"
    with pytest.raises(ConfigError) as info:
        load_settings(_env(SLACK_BOT_TOKEN=user_token, SLACK_APP_TOKEN=bot_as_app))
    problems = info.value.problems
    assert any("SLACK_BOT_TOKEN" in p and "xoxb-" in p for p in problems)
    assert any("SLACK_APP_TOKEN" in p and "xapp-" in p for p in problems)
    everything = str(info.value) + "\n".join(problems) + repr(info.value)
    for secret in (user_token, bot_as_app, "userSECRETvalue", "botSECRETvalue"):
        assert secret not in everything


@pytest.mark.parametrize("raw", ["0", "61", "abc", "-5"])
def test_session_ttl_out_of_range_or_not_a_number_is_a_problem(raw: str) -> None:
    assert _problems_naming(_env(SESSION_TTL_MINUTES=raw), "SESSION_TTL_MINUTES")


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("60", 60), (" 30 ", 30), ("", 55)])
def test_session_ttl_in_range_is_accepted(raw: str, expected: int) -> None:
    assert load_settings(_env(SESSION_TTL_MINUTES=raw)).session_ttl_minutes == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("debug", "debug"),
        ("info", "info"),
        ("warn", "warn"),
        ("error", "error"),
        ("warning", "warn"),
        ("DEBUG", "debug"),
        ("Warning", "warn"),
    ],
)
def test_log_levels_are_accepted(raw: str, expected: str) -> None:
    assert load_settings(_env(LOG_LEVEL=raw)).log_level == expected


def test_unknown_log_level_is_a_problem() -> None:
    assert _problems_naming(_env(LOG_LEVEL="verbose"), "LOG_LEVEL")


@pytest.mark.parametrize(
    ("raw", "expected"), [("text", "text"), ("json", "json"), ("JSON", "json")]
)
def test_log_format_is_accepted(raw: str, expected: str) -> None:
    assert load_settings(_env(LOG_FORMAT=raw)).log_format == expected


def test_unknown_log_format_is_a_problem() -> None:
    assert _problems_naming(_env(LOG_FORMAT="xml"), "LOG_FORMAT")


def test_warning_alias_is_only_for_log_level() -> None:
    assert _problems_naming(_env(LOG_FORMAT="warning"), "LOG_FORMAT")


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("25", 25), ("1000", 1000)])
def test_max_concurrent_requests_accepted(raw: str, expected: int) -> None:
    s = load_settings(_env(MAX_CONCURRENT_REQUESTS=raw))
    assert s.max_concurrent_requests == expected
    assert s.max_queued_requests == 2 * expected


@pytest.mark.parametrize("raw", ["0", "-1", "1001", "ten"])
def test_max_concurrent_requests_rejected(raw: str) -> None:
    assert _problems_naming(_env(MAX_CONCURRENT_REQUESTS=raw), "MAX_CONCURRENT_REQUESTS")


@pytest.mark.parametrize("mode", ["thread", "flat", "FLAT"])
def test_dm_replies_modes(mode: str) -> None:
    assert load_settings(_env(DM_REPLIES=mode)).dm_replies == mode.lower()


def test_dm_replies_unknown_mode_is_a_problem() -> None:
    assert _problems_naming(_env(DM_REPLIES="threaded"), "DM_REPLIES")


def test_slack_api_url_gets_a_trailing_slash() -> None:
    s = load_settings(_env(SLACK_API_URL="http://127.0.0.1:8080/api"))
    assert s.slack_api_url == "http://127.0.0.1:8080/api/"
    s = load_settings(_env(SLACK_API_URL="http://127.0.0.1:8080/api/"))
    assert s.slack_api_url == "http://127.0.0.1:8080/api/"


def test_slack_api_url_must_be_http() -> None:
    assert _problems_naming(_env(SLACK_API_URL="ftp://example/api"), "SLACK_API_URL")


def test_slack_file_url_prefixes_parsed() -> None:
    s = load_settings(
        _env(SLACK_FILE_URL_PREFIXES=" https://files.slack.com/ ,, http://127.0.0.1:9/files/ ,")
    )
    assert s.slack_file_url_prefixes == ("https://files.slack.com/", "http://127.0.0.1:9/files/")


def test_slack_file_url_prefixes_invalid_scheme_is_a_problem() -> None:
    problems = _problems_naming(
        _env(SLACK_FILE_URL_PREFIXES="https://files.slack.com/,file:///etc/"),
        "SLACK_FILE_URL_PREFIXES",
    )
    assert len(problems) == 1
    assert "file:///etc/" in problems[0]


@pytest.mark.parametrize("name", ["BEDROCK_AGENT_ID", "BEDROCK_AGENT_ALIAS_ID"])
@pytest.mark.parametrize("value", ["ABCDEFGHIJK", "ABC-DEF", "abc def", "AB_C"])
def test_bad_agent_ids_are_problems(name: str, value: str) -> None:
    assert _problems_naming(_env(**{name: value}), name)


def test_ten_character_agent_id_is_accepted() -> None:
    s = load_settings(_env(BEDROCK_AGENT_ID="A1B2C3D4E5", BEDROCK_AGENT_ALIAS_ID="TSTALIASID"))
    assert s.agent_id == "A1B2C3D4E5"
    assert s.agent_alias_id == "TSTALIASID"


def test_several_problems_reported_together() -> None:
    problems = _problems(_env(SESSION_TTL_MINUTES="0", LOG_LEVEL="loud", DM_REPLIES="x"))
    text = "\n".join(problems)
    assert "SESSION_TTL_MINUTES" in text
    assert "LOG_LEVEL" in text
    assert "DM_REPLIES" in text


# --- Settings --------------------------------------------------------------------------------


def test_settings_repr_hides_secrets() -> None:
    s = load_settings(
        _env(AWS_SECRET_ACCESS_KEY="awsSECRETkey/abc+def", AWS_SESSION_TOKEN="awsSESSIONtoken")
    )
    text = repr(s) + str(s)
    assert BOT_TOKEN not in text
    assert APP_TOKEN not in text
    assert "awsSECRETkey" not in text
    assert "awsSESSIONtoken" not in text
    assert "AGENT12345" in text  # the repr is still useful


def test_secrets_lists_tokens_and_aws_secrets() -> None:
    s = load_settings(
        _env(AWS_SECRET_ACCESS_KEY="awsSECRETkey/abc+def", AWS_SESSION_TOKEN="awsSESSIONtoken")
    )
    assert set(s.secrets()) == {BOT_TOKEN, APP_TOKEN, "awsSECRETkey/abc+def", "awsSESSIONtoken"}


def test_secrets_skips_absent_values() -> None:
    s = Settings(
        slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN, agent_id="A", agent_alias_id="B"
    )
    assert s.secrets() == (BOT_TOKEN, APP_TOKEN)


def test_settings_is_frozen() -> None:
    s = load_settings(_env())
    with pytest.raises(AttributeError):
        s.agent_id = "OTHER"  # type: ignore[misc]


# --- parse_dotenv ----------------------------------------------------------------------------


def test_parse_dotenv_handles_the_usual_forms() -> None:
    text = "\n".join(
        [
            "# a comment",
            "",
            "   ",
            "PLAIN=value",
            "export EXPORTED=yes",
            'DOUBLE="quoted value # not a comment"',
            "SINGLE='single quoted'",
            "INLINE=value # trailing comment",
            "HASHED=abc#def",
            "  SPACED  =  padded  ",
            "EMPTY=",
            "URL=https://example.com/a?b=c",
            "this line is malformed",
            "1BAD=starts with a digit",
            "=novalue",
            "  # indented comment",
        ]
    )
    assert parse_dotenv(text) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "DOUBLE": "quoted value # not a comment",
        "SINGLE": "single quoted",
        "INLINE": "value",
        "HASHED": "abc#def",
        "SPACED": "padded",
        "EMPTY": "",
        "URL": "https://example.com/a?b=c",
    }


def test_parse_dotenv_quoted_value_with_inline_comment() -> None:
    assert parse_dotenv("A=\"x y\" # note\nB='z'  # note") == {"A": "x y", "B": "z"}


def test_parse_dotenv_later_lines_win_and_crlf_is_fine() -> None:
    assert parse_dotenv("A=1\r\nA=2\r\n") == {"A": "2"}


# --- load_environment ------------------------------------------------------------------------


def test_load_environment_shell_values_win_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("A=from_file\nB=from_file\n# C=commented\n", encoding="utf-8")
    env = load_environment({"A": "from_shell", "D": "shell_only"}, dotenv)
    assert env == {"A": "from_shell", "B": "from_file", "D": "shell_only"}


def test_load_environment_without_dotenv_file(tmp_path: Path) -> None:
    env = load_environment({"A": "1"}, tmp_path / "missing.env")
    assert env == {"A": "1"}
    assert load_environment({"A": "1"}, None) == {"A": "1"}


def test_load_environment_does_not_mutate_the_input(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("B=2\n", encoding="utf-8")
    source = {"A": "1"}
    load_environment(source, dotenv)
    assert source == {"A": "1"}


def test_load_environment_then_settings_from_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        f"SLACK_BOT_TOKEN={BOT_TOKEN}\nSLACK_APP_TOKEN={APP_TOKEN}\n"
        "BEDROCK_AGENT_ID=FILEAGENT\nBEDROCK_AGENT_ALIAS_ID=FILEALIAS\n",
        encoding="utf-8",
    )
    s = load_settings(load_environment({"BEDROCK_AGENT_ID": "SHELLAGENT"}, dotenv))
    assert s.agent_id == "SHELLAGENT"
    assert s.agent_alias_id == "FILEALIAS"


# --- operations settings --------------------------------------------------------------------


def test_operations_defaults() -> None:
    import tempfile

    s = load_settings(_env())
    assert s.max_inflight_file_mb == 64
    assert s.metrics_namespace == "Ark"
    assert s.health_file == str(Path(tempfile.gettempdir()) / "ark-health.json")


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("256", 256), ("100000", 100_000)])
def test_inflight_file_budget_accepted(raw: str, expected: int) -> None:
    assert load_settings(_env(ARK_MAX_INFLIGHT_FILE_MB=raw)).max_inflight_file_mb == expected


@pytest.mark.parametrize("raw", ["0", "-5", "100001", "lots"])
def test_inflight_file_budget_rejected(raw: str) -> None:
    assert _problems_naming(_env(ARK_MAX_INFLIGHT_FILE_MB=raw), "ARK_MAX_INFLIGHT_FILE_MB")


def test_metrics_namespace_and_health_file_are_read() -> None:
    s = load_settings(_env(ARK_METRICS_NAMESPACE=" Team/Ark ", ARK_HEALTH_FILE="/run/ark/h"))
    assert s.metrics_namespace == "Team/Ark"
    assert s.health_file == "/run/ark/h"
    assert _problems_naming(_env(ARK_METRICS_NAMESPACE="x" * 256), "ARK_METRICS_NAMESPACE")
    assert load_settings(_env(ARK_METRICS_NAMESPACE="x" * 255)).metrics_namespace == "x" * 255


@pytest.mark.parametrize(
    "name",
    ["Ark", "Team/Ark", "my-app_1.prod", "Ark #2: blue", "A", "x" * 255, "aws/lowercase"],
)
def test_metrics_namespace_allowed_by_cloudwatch(name: str) -> None:
    assert load_settings(_env(ARK_METRICS_NAMESPACE=name)).metrics_namespace == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("AWS/Ark", "AWS/"),
        ("AWS/", "AWS/"),
        ("Ark$", "'$'"),
        ("Ärk", "'Ä'"),
        ("Ark\tTeam", "'\\t'"),
        ("Ark*?", "'*?'"),
        ("x" * 256, "1 to 255 characters"),
    ],
)
def test_metrics_namespace_rejected_as_cloudwatch_would(name: str, why: str) -> None:
    problems = _problems_naming(_env(ARK_METRICS_NAMESPACE=name), "ARK_METRICS_NAMESPACE")
    assert len(problems) == 1
    assert why in problems[0]


def test_health_file_default_needs_no_writable_temp_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a read-only root file system (ECS readonlyRootFilesystem) tempfile.gettempdir()
    raises FileNotFoundError; the settings must still load."""
    import tempfile

    def no_temp_dir() -> str:
        raise FileNotFoundError("No usable temporary directory found")

    monkeypatch.setattr(tempfile, "gettempdir", no_temp_dir)
    monkeypatch.setattr(tempfile, "tempdir", None)
    for var in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.delenv(var, raising=False)
    assert load_settings(_env()).health_file == "/tmp/ark-health.json"
    monkeypatch.setenv("TMPDIR", "/run/ark-tmp")
    assert load_settings(_env()).health_file == "/run/ark-tmp/ark-health.json"
    assert default_health_file({"TMPDIR": "/var/tmp"}) == "/var/tmp/ark-health.json"
    monkeypatch.setattr(tempfile, "tempdir", "/scratch")
    assert default_health_file({}) == "/scratch/ark-health.json"


def test_dotenv_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(b"SLACK_BOT_TOKEN=xoxb-1\nBEDROCK_AGENT_ID=caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_environment({}, dotenv_path=dotenv)
    assert len(info.value.problems) == 1
    assert str(dotenv) in info.value.problems[0]
    assert "not valid UTF-8" in info.value.problems[0]
