"""The Redis installation and OAuth state stores, against the real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.slack.installation_store import RedisInstallationStore
from bot.slack.oauth_state import RedisStateStore
from bot.storage.keys import Keys


def installation(team_id: str = "T1", **changes: object) -> Installation:
    values: dict[str, object] = {
        "app_id": "A1",
        "team_id": team_id,
        "team_name": f"Team {team_id}",
        "bot_token": f"xoxb-{team_id}",
        "bot_id": f"B{team_id}",
        "bot_user_id": f"U{team_id}BOT",
        "bot_scopes": "chat:write,commands",
        "user_id": "UINSTALLER",
        "token_type": "bot",
    }
    values.update(changes)
    return Installation(**values)  # type: ignore[arg-type]


async def test_an_installation_is_found_per_workspace(redis: Redis, keys: Keys) -> None:
    store = RedisInstallationStore(redis, keys)
    await store.async_save(installation("T1"))
    await store.async_save(installation("T2", enterprise_id="E1"))

    bot = await store.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None
    assert (bot.bot_token, bot.bot_user_id, bot.bot_id) == ("xoxb-T1", "UT1BOT", "BT1")
    assert bot.bot_scopes == ["chat:write", "commands"]
    # A Grid workspace is found with its org's id (Bolt) and without it (a turn).
    for enterprise_id in ("E1", None):
        found = await store.async_find_installation(enterprise_id=enterprise_id, team_id="T2")
        assert found is not None and found.bot_token == "xoxb-T2" and found.enterprise_id == "E1"
    assert await store.async_find_bot(enterprise_id=None, team_id="T3") is None


async def test_a_reinstall_replaces_the_token(redis: Redis, keys: Keys) -> None:
    store = RedisInstallationStore(redis, keys)
    await store.async_save(installation("T1"))
    await store.async_save(installation("T1", bot_token="xoxb-new"))
    bot = await store.async_find_bot(enterprise_id=None, team_id="T1")
    assert bot is not None and bot.bot_token == "xoxb-new"


async def test_installation_times_survive_the_round_trip(redis: Redis, keys: Keys) -> None:
    store = RedisInstallationStore(redis, keys)
    saved = installation("T1", bot_refresh_token="xoxe-1", bot_token_expires_in=3600)
    await store.async_save(saved)
    found = await store.async_find_installation(enterprise_id=None, team_id="T1")
    assert found is not None
    assert found.bot_token_expires_at == saved.bot_token_expires_at
    assert abs(found.installed_at - saved.installed_at) < 1e-3


async def test_only_the_installer_has_a_user_installation(redis: Redis, keys: Keys) -> None:
    store = RedisInstallationStore(redis, keys)
    await store.async_save(installation("T1"))
    assert await store.async_find_installation(
        enterprise_id=None, team_id="T1", user_id="UINSTALLER"
    )
    assert not await store.async_find_installation(
        enterprise_id=None, team_id="T1", user_id="USOMEONE"
    )
    await store.async_delete_installation(enterprise_id=None, team_id="T1", user_id="USOMEONE")
    assert await store.async_find_bot(enterprise_id=None, team_id="T1")


@pytest.mark.parametrize("how", ["delete_all", "delete_bot", "delete_installation"])
async def test_deleting_removes_only_that_workspace(redis: Redis, keys: Keys, how: str) -> None:
    store = RedisInstallationStore(redis, keys)
    await store.async_save(installation("T1"))
    await store.async_save(installation("T2"))
    await getattr(store, f"async_{how}")(enterprise_id=None, team_id="T1")
    assert await store.async_find_bot(enterprise_id=None, team_id="T1") is None
    assert await store.async_find_bot(enterprise_id=None, team_id="T2") is not None


async def test_an_org_wide_installation_has_its_own_key(redis: Redis, keys: Keys) -> None:
    store = RedisInstallationStore(redis, keys)
    org = installation(None, enterprise_id="E1", is_enterprise_install=True, bot_token="xoxb-E1")
    await store.async_save(org)
    assert await redis.exists(keys.org_installation("E1"))
    # Its workspaces find it through the org; a workspace outside it does not.
    found = await store.async_find_bot(enterprise_id="E1", team_id="T9")
    assert found is not None and found.bot_token == "xoxb-E1"
    assert await store.async_find_bot(enterprise_id=None, team_id="T9") is None
    await store.async_delete_all(enterprise_id="E1", team_id=None)
    assert await store.async_find_bot(enterprise_id="E1", team_id=None) is None


async def test_saving_cancels_a_pending_purge(redis: Redis, keys: Keys) -> None:
    store = RedisInstallationStore(redis, keys)
    await redis.zadd(keys.workspace_purges, {"T1": 1.0, "T2": 1.0})
    await store.async_save(installation("T1"))
    assert await redis.zrange(keys.workspace_purges, 0, -1) == ["T2"]


async def test_an_unreadable_record_is_no_installation(redis: Redis, keys: Keys) -> None:
    store = RedisInstallationStore(redis, keys)
    await redis.set(keys.installation("T1"), "{not json")
    assert await store.async_find_bot(enterprise_id=None, team_id="T1") is None


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_state_is_consumed_once(redis: Redis, keys: Keys) -> None:
    states = RedisStateStore(redis, keys, "secret")
    state = await states.async_issue()
    results = await asyncio.gather(*(states.async_consume(state) for _ in range(5)))
    assert results.count(True) == 1, "one of the concurrent redirects wins"
    assert not await states.async_consume(state)


async def test_a_state_expires(redis: Redis, keys: Keys) -> None:
    clock = Clock()
    states = RedisStateStore(redis, keys, "secret", expiration_seconds=600, clock=clock)
    fresh, stale = await states.async_issue(), await states.async_issue()
    clock.now += 600
    assert await states.async_consume(fresh)
    clock.now += 1
    assert not await states.async_consume(stale)
    ttl = await redis.ttl(keys.oauth_state(stale.split(".")[0]))
    assert ttl == -2, "consumed even when expired"


async def test_a_forged_state_is_refused(redis: Redis, keys: Keys) -> None:
    states = RedisStateStore(redis, keys, "secret")
    other = RedisStateStore(redis, keys, "another secret")
    state = await states.async_issue()
    nonce = state.split(".")[0]
    assert not await other.async_consume(state), "signed with another secret"
    assert not await states.async_consume(nonce + ".00"), "a wrong signature"
    assert not await states.async_consume(""), "no state"
    assert await redis.exists(keys.oauth_state(nonce)), "not consumed by the forgeries"
    assert await states.async_consume(state)
