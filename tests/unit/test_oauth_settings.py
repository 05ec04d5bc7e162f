"""Many workspaces (OAuth) or one (SLACK_BOT_TOKEN): which the settings choose, and why not."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.__main__ import wants_local
from bot.local.local_mode import local_settings
from bot.settings import ConfigError, Settings

OAUTH = {
    "SLACK_CLIENT_ID": "111.222",
    "SLACK_CLIENT_SECRET": "client-secret",
    "SLACK_STATE_SECRET": "state-secret",
    "SLACK_SIGNING_SECRET": "signing",
}


def test_the_three_settings_turn_on_many_workspaces(tmp_path: Path) -> None:
    settings = Settings.load(OAUTH, env_file=tmp_path / "none")
    assert settings.oauth
    settings.require_slack()  # no SLACK_BOT_TOKEN needed
    assert {"client-secret", "state-secret"} <= set(settings.secrets)
    assert not Settings.load({}, env_file=tmp_path / "none").oauth


def test_a_partial_oauth_setup_is_named(tmp_path: Path) -> None:
    partial = {k: v for k, v in OAUTH.items() if k != "SLACK_STATE_SECRET"}
    settings = Settings.load({**partial, "SLACK_BOT_TOKEN": "xoxb-1"}, env_file=tmp_path / "n")
    assert not settings.oauth
    with pytest.raises(ConfigError, match="missing: SLACK_STATE_SECRET"):
        settings.require_slack()


def test_a_bot_token_beside_oauth_is_refused(tmp_path: Path) -> None:
    settings = Settings.load({**OAUTH, "SLACK_BOT_TOKEN": "xoxb-1"}, env_file=tmp_path / "none")
    with pytest.raises(ConfigError, match="Unset SLACK_BOT_TOKEN"):
        settings.require_slack()


def test_oauth_still_needs_the_signing_secret_over_http(tmp_path: Path) -> None:
    without = {k: v for k, v in OAUTH.items() if k != "SLACK_SIGNING_SECRET"}
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET") as raised:
        Settings.load(without, env_file=tmp_path / "none").require_slack()
    assert "SLACK_BOT_TOKEN" not in str(raised.value).split("\n")[0]


def test_make_run_serves_slack_in_oauth_mode(tmp_path: Path) -> None:
    settings = Settings.load(OAUTH, env_file=tmp_path / "none")
    args = argparse.Namespace(command="serve", or_local=True)
    assert not wants_local(args, settings)
    assert wants_local(args, Settings.load({}, env_file=tmp_path / "none"))


def test_a_redirect_uri_must_be_a_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SLACK_REDIRECT_URI"):
        Settings.load({"SLACK_REDIRECT_URI": "example.com/x"}, env_file=tmp_path / "none")


def test_local_mode_is_one_workspace_whatever_the_environment(tmp_path: Path) -> None:
    settings = Settings.load(OAUTH, env_file=tmp_path / "none")
    local = local_settings(
        settings, slack_url="http://127.0.0.1:1/api/", redis_url="redis://x", session="s",
        model_url=None,
    )  # fmt: skip
    assert not local.oauth
    local.require_slack()
