"""What an installation asks Slack for matches manifest.yml."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.slack.oauth import REDIRECT_PATH, authorization_url

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


def test_an_installation_asks_for_no_user_token() -> None:
    # The bot scopes it asks for are REQUIRED_BOT_SCOPES, held equal to the manifest's by
    # tests/unit/test_doctor_checks.py.
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert "user" not in manifest["oauth_config"]["scopes"], "no user tokens to keep"


def test_the_manifest_names_the_redirect_url_and_uninstall_events() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert all(url.endswith(REDIRECT_PATH) for url in manifest["oauth_config"]["redirect_urls"])
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"app_uninstalled", "tokens_revoked"} <= set(events)


def test_slacks_approval_page_is_beside_its_api() -> None:
    assert authorization_url("https://slack.com/api/") == "https://slack.com/oauth/v2/authorize"
    assert authorization_url("http://127.0.0.1:8/api/") == "http://127.0.0.1:8/oauth/v2/authorize"
