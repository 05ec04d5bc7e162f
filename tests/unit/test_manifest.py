"""manifest.yml is valid for Slack and declares what the bot listens to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource

from bot.slack.listeners.forget import FORGET_SHORTCUT
from bot.slack.listeners.quiz import QUIZ_SHORTCUT
from bot.slack.scopes import REQUIRED_BOT_SCOPES

REPO = Path(__file__).resolve().parents[2]
# A copy of the official schema (MIT, slackapi/manifest-schema) kept with the tests.
SCHEMAS = REPO / "tests" / "slack-manifest-schema"
# The official top-level schema refers to the versioned ones by these URLs.
SCHEMA_URL = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/{name}"


def load_manifest() -> dict[str, Any]:
    return yaml.safe_load((REPO / "manifest.yml").read_text(encoding="utf-8"))


def official_validator() -> jsonschema.Draft7Validator:
    assert SCHEMAS.is_dir(), f"the official manifest schema is expected in {SCHEMAS}"
    resources = []
    for name in ("manifest.schema.1.0.0.json", "manifest.schema.2.0.0.json"):
        contents = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
        resources.append((SCHEMA_URL.format(name=name), Resource.from_contents(contents)))
    top = json.loads((SCHEMAS / "manifest.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(top, registry=Registry().with_resources(resources))


def test_manifest_validates_against_the_official_schema() -> None:
    errors = sorted(official_validator().iter_errors(load_manifest()), key=str)
    assert not errors, "\n".join(error.message for error in errors)


def test_the_validator_rejects_a_broken_manifest() -> None:
    broken = load_manifest()
    broken["features"]["slash_commands"][0]["command"] = "tutor"  # no leading slash
    assert list(official_validator().iter_errors(broken))


def test_manifest_declares_what_the_bot_handles() -> None:
    manifest = load_manifest()
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.im", "agent_session_stopped"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"app_mentions:read", "chat:write", "commands", "im:history"} <= scopes
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == ["/tutor"]
    shortcuts = {(s["type"], s["callback_id"]) for s in manifest["features"]["shortcuts"]}
    assert shortcuts == {("message", QUIZ_SHORTCUT), ("message", FORGET_SHORTCUT)}
    urls = {
        manifest["settings"]["event_subscriptions"]["request_url"],
        manifest["settings"]["interactivity"]["request_url"],
        manifest["features"]["slash_commands"][0]["url"],
    }
    assert all(url.endswith("/slack/events") for url in urls), "one URL for everything"


def test_the_scopes_in_code_are_those_the_manifest_asks_for() -> None:
    """`doctor` checks the token against bot.slack.scopes: it must not drift from the manifest."""
    in_manifest = load_manifest()["oauth_config"]["scopes"]["bot"]
    assert sorted(REQUIRED_BOT_SCOPES) == sorted(in_manifest)
