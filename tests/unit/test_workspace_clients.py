"""Slack clients per workspace (OAuth): each call with that workspace's current token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from redis.asyncio import Redis
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.local.slack_api import SlackStandIn
from bot.slack.client import slack_error_code
from bot.slack.installation_store import RedisInstallationStore
from bot.slack.workspaces import NOT_INSTALLED, InstallationTokens, InstalledWorkspaces
from bot.storage.keys import Keys


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    stand_in = SlackStandIn()
    stand_in.add_workspace("TA", channels=("CA",))
    stand_in.add_workspace("TB", channels=("CB",))
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


async def install(slack: SlackStandIn, store: RedisInstallationStore, team_id: str) -> None:
    """What the OAuth flow does: Slack grants a token, the bot saves it."""
    code = slack.grant(team_id)
    async with aiohttp.ClientSession() as session:
        auth = aiohttp.encode_basic_auth(slack.client_id, slack.client_secret)
        async with session.post(
            slack.base_url + "oauth.v2.access",
            data={"code": code},
            headers={"Authorization": auth},
        ) as response:
            granted = await response.json()
    assert granted["ok"], granted
    await store.async_save(
        Installation(
            team_id=granted["team"]["id"],
            bot_token=granted["access_token"],
            bot_user_id=granted["bot_user_id"],
            user_id=granted["authed_user"]["id"],
        )
    )


async def test_each_workspace_posts_with_its_own_token(
    slack: SlackStandIn, redis: Redis, keys: Keys
) -> None:
    store = RedisInstallationStore(redis, keys)
    await install(slack, store, "TA")
    await install(slack, store, "TB")
    async with aiohttp.ClientSession() as session:
        clients = InstalledWorkspaces(InstallationTokens(store), slack.base_url, session=session)
        for team_id, channel in (("TA", "CA"), ("TB", "CB")):
            await clients.for_team(team_id).chat_postMessage(channel=channel, text="hi")
            who = await clients.for_team(team_id).auth_test()
            assert who["team_id"] == team_id and who["user_id"] == f"U{team_id}BOT"
        with pytest.raises(SlackApiError) as wrong:
            await clients.for_team("TA").chat_postMessage(channel="CB", text="hi")
        assert slack_error_code(wrong.value) == "channel_not_found"
    assert [(c.team, c.args["channel"]) for c in slack.calls_to("chat.postMessage")] == [
        ("TA", "CA"),
        ("TB", "CB"),
    ]


async def test_a_workspace_without_installation_gets_no_call(
    slack: SlackStandIn, redis: Redis, keys: Keys
) -> None:
    store = RedisInstallationStore(redis, keys)
    async with aiohttp.ClientSession() as session:
        clients = InstalledWorkspaces(InstallationTokens(store), slack.base_url, session=session)
        with pytest.raises(SlackApiError) as refused:
            await clients.for_team("TA").chat_postMessage(channel="CA", text="hi")
    assert slack_error_code(refused.value) == NOT_INSTALLED
    assert slack.calls == []


async def test_a_reinstall_is_used_as_soon_as_slack_refuses_the_old_token(
    slack: SlackStandIn, redis: Redis, keys: Keys
) -> None:
    store = RedisInstallationStore(redis, keys)
    await install(slack, store, "TA")
    async with aiohttp.ClientSession() as session:
        tokens = InstallationTokens(store, cache_seconds=3600)
        client = InstalledWorkspaces(tokens, slack.base_url, session=session).for_team("TA")
        await client.chat_postMessage(channel="CA", text="one")
        await install(slack, store, "TA")  # a new token; this process still holds the old one
        with pytest.raises(SlackApiError) as revoked:
            await client.chat_postMessage(channel="CA", text="two")
        assert slack_error_code(revoked.value) == "token_revoked"
        await client.chat_postMessage(channel="CA", text="three")
    assert [c.args["text"] for c in slack.calls_to("chat.postMessage")] == ["one", "three"]
