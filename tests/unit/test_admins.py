"""Who is an admin: TUTOR_ADMINS, and the workspace's admins and owners as users.info says."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.local.slack_api import SlackStandIn
from bot.slack.admins import WorkspaceAdmins
from bot.slack.workspaces import OneWorkspace
from tests.unit.test_manifest import load_manifest


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    stand_in = SlackStandIn(token="xoxb-ok")
    stand_in.workspace_admins.add("UADMIN")
    stand_in.workspace_owners.add("UOWNER")
    stand_in.primary_owner = "UPRIMARY"
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def admins(
    slack: SlackStandIn, clock: Clock, configured: frozenset[str] = frozenset()
) -> WorkspaceAdmins:
    client = AsyncWebClient(token="xoxb-ok", base_url=slack.base_url)
    return WorkspaceAdmins(OneWorkspace(client), configured, cache_seconds=60, clock=clock)


async def test_admins_and_owners_by_slack_and_configured_ones(slack: SlackStandIn) -> None:
    check = admins(slack, Clock(), frozenset({"UCONFIGURED"}))
    for user in ("UADMIN", "UOWNER", "UPRIMARY", "UCONFIGURED"):
        assert await check.is_admin("T1", user), user
    assert not await check.is_admin("T1", "UMEMBER")
    asked = {call.args["user"] for call in slack.calls_to("users.info")}
    assert asked == {"UADMIN", "UOWNER", "UPRIMARY", "UMEMBER"}, "configured: no lookup"


async def test_slack_is_asked_again_only_after_a_few_minutes(slack: SlackStandIn) -> None:
    clock = Clock()
    check = admins(slack, clock)
    assert not await check.is_admin("T1", "U1")
    slack.workspace_admins.add("U1")
    clock.now = 59
    assert not await check.is_admin("T1", "U1"), "cached"
    clock.now = 61
    assert await check.is_admin("T1", "U1")
    assert len(slack.calls_to("users.info")) == 2


async def test_a_failed_lookup_is_no_admin_and_is_not_cached(slack: SlackStandIn) -> None:
    check = admins(slack, Clock())
    slack.fail("users.info", "missing_scope")
    assert not await check.is_admin("T1", "UADMIN")
    assert await check.is_admin("T1", "UADMIN"), "asked again"


async def test_the_stand_in_answers_users_info_as_slack_documents(slack: SlackStandIn) -> None:
    client = AsyncWebClient(token="xoxb-ok", base_url=slack.base_url)
    owner = (await client.users_info(user="UPRIMARY"))["user"]
    assert owner["id"] == "UPRIMARY" and owner["team_id"] == "T1"
    assert owner["is_admin"] and owner["is_owner"] and owner["is_primary_owner"]
    member = (await client.users_info(user="UMEMBER"))["user"]
    flags = ("is_admin", "is_owner", "is_primary_owner", "is_restricted", "is_bot", "deleted")
    assert {flag: member[flag] for flag in flags} == dict.fromkeys(flags, False)


def test_the_manifest_asks_for_users_read() -> None:
    assert "users:read" in load_manifest()["oauth_config"]["scopes"]["bot"]
