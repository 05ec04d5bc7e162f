from pathlib import Path

import pytest

import bot.__main__ as bot_main
from bot.__main__ import build_parser, main
from bot.settings import SPECS, BackendKind, ConfigError, Settings, read_env_file
from bot.storage.managed_server import check_data_dir


def test_defaults_match_the_contract(tmp_path: Path) -> None:
    settings = Settings.load({}, env_file=tmp_path / "none")
    assert settings.backend is BackendKind.RESPONSES
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.port == 3000
    assert settings.redis_prefix == "tutor:"
    assert settings.redis_url is None
    assert "history tutor" in settings.tutor_instructions


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nexport PORT=4000\nTUTOR_NAME='Ada'\nTUTOR_MODEL=m # note\n")
    settings = Settings.load({"PORT": "5000"}, env_file=env_file)
    assert settings.port == 5000
    assert settings.tutor_name == "Ada"
    assert settings.tutor_model == "m"


def test_every_malformed_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.load(
            {"PORT": "x", "TUTOR_BACKEND": "bard", "REDIS_URL": "http://x"},
            env_file=tmp_path / "none",
        )
    message = str(raised.value)
    assert "PORT" in message and "REDIS_URL" in message
    assert "responses, assistants, chat" in message


def test_missing_slack_credentials_are_explained() -> None:
    with pytest.raises(ConfigError, match=r"SLACK_BOT_TOKEN.*SLACK_SIGNING_SECRET"):
        Settings().require_slack()
    Settings(slack_bot_token="xoxb-1", slack_app_token="xapp-1").require_slack()
    with pytest.raises(ConfigError, match="xoxb-"):
        Settings(slack_bot_token="token", slack_signing_secret="s").require_slack()


def test_help_lists_subcommands_and_every_setting(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "serve" in out
    for spec in SPECS:
        assert spec.env in out


def test_main_without_credentials_exits_plainly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    # Logging set up on this test's captured stderr would outlive it (a closed stream).
    monkeypatch.setattr(bot_main, "configure_logging", lambda *args, **kwargs: None)
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN" in err and "manifest.yml" in err
    assert "Traceback" not in err


def test_env_file_parsing(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text('A="x y"\nB=1\n\nnot a line\n')
    assert read_env_file(path) == {"A": "x y", "B": "1"}


@pytest.mark.parametrize(
    ("env", "value", "problem"),
    [
        ("PORT", "abc", "must be a port number (0-65535)"),
        ("PORT", "70000", "must be a port number (0-65535)"),
        ("TUTOR_OPENAI_MAX_RETRIES", "-1", "must be 0 or more"),
        ("TUTOR_OPENAI_MAX_RETRIES", "two", "must be a whole number"),
        ("TUTOR_RUN_TIMEOUT", "soon", "must be a number"),
        ("TUTOR_CONCURRENCY", "1.5", "must be a whole number"),
    ],
)
def test_numbers_are_explained_in_plain_words(
    tmp_path: Path, env: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.load({env: value}, env_file=tmp_path / "none")
    assert str(raised.value) == f"{env}={value!r} is not valid: {problem}."


def test_zero_retries_are_allowed(tmp_path: Path) -> None:
    settings = Settings.load({"TUTOR_OPENAI_MAX_RETRIES": "0"}, env_file=tmp_path / "none")
    assert settings.openai_max_retries == 0


@pytest.mark.parametrize(
    ("inside_the_file", "problem"),
    [("", "it is a file, not a folder"), ("sub", "a part of its path is a file")],
    ids=["a file", "under a file"],
)
def test_an_unusable_data_dir_is_explained(
    tmp_path: Path, inside_the_file: str, problem: str
) -> None:
    (tmp_path / "file").touch()
    data_dir = tmp_path / "file" / inside_the_file
    with pytest.raises(ConfigError) as raised:
        check_data_dir(data_dir)
    message = str(raised.value)
    assert message.startswith(f"TUTOR_DATA_DIR={data_dir} cannot hold the private Redis data")
    assert problem in message and "REDIS_URL" in message
    assert len(message.splitlines()) == 1


def test_a_missing_data_dir_is_created(tmp_path: Path) -> None:
    check_data_dir(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == [], "the write probe leaves nothing"


def test_the_context_budget_takes_off_and_its_former_name(tmp_path: Path) -> None:
    none = tmp_path / "none"
    assert Settings.load({}, env_file=none).context_tokens == 6000
    assert Settings.load({"TUTOR_CONTEXT_TOKENS": "off"}, env_file=none).context_tokens == 0
    assert Settings.load({"TUTOR_CONTEXT_TOKENS": "0"}, env_file=none).context_tokens == 0
    former = {"TUTOR_CHAT_TOKEN_BUDGET": "12000"}
    assert Settings.load(former, env_file=none).context_tokens == 12000
    both = {**former, "TUTOR_CONTEXT_TOKENS": "8000"}
    assert Settings.load(both, env_file=none).context_tokens == 8000
    with pytest.raises(ConfigError, match=r"TUTOR_CHAT_TOKEN_BUDGET='500'.*at least 1000"):
        Settings.load({"TUTOR_CHAT_TOKEN_BUDGET": "500"}, env_file=none)


def test_every_setting_has_a_row_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [spec.env for spec in SPECS if f"| `{spec.env}` |" not in readme]
    assert missing == [], "add them to README.md's settings table"
