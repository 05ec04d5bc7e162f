"""`python -m bot` subcommands: when `make run` (`serve --or-local`) starts local mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import build_parser, wants_local
from bot.settings import SPECS, Settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A working folder without .env and an environment without any of our settings."""
    monkeypatch.chdir(tmp_path)
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    return tmp_path


def local(argv: list[str]) -> bool:
    return wants_local(build_parser().parse_args(argv), Settings.load())


def test_local_subcommand_is_always_local(clean_env: Path) -> None:
    assert local(["local"])


def test_serve_or_local_goes_local_only_without_a_bot_token(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert local(["serve", "--or-local"])
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    assert not local(["serve", "--or-local"])


def test_a_bot_token_in_dot_env_counts_as_credentials(clean_env: Path) -> None:
    (clean_env / ".env").write_text("SLACK_BOT_TOKEN=xoxb-1\n")
    assert not local(["serve", "--or-local"])


def test_plain_commands_never_go_local(clean_env: Path) -> None:
    assert not local([])
    assert not local(["serve"])


def test_help_lists_the_local_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "local" in out and "stand-in" in out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    assert "--or-local" in capsys.readouterr().out
