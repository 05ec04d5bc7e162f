"""Telling admins that the model shuts down: whom (TUTOR_ADMINS, else the workspace's admins
and owners, page by page), once a day per workspace across processes, and again later when
nobody could be told."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from redis.asyncio import Redis
from slack_sdk.web.async_client import AsyncWebClient

from bot.doctor import admin_notice
from bot.doctor.admin_notice import ShutdownNotice
from bot.doctor.results import ModelShutdown
from bot.local.slack_api import SlackStandIn
from bot.settings import ConfigError, Settings
from bot.storage.keys import Keys

TODAY = date(2026, 12, 1)
GOING = ModelShutdown("gpt-5", date(2026, 12, 11), 10)


def notice(
    slack: SlackStandIn, redis: Redis, keys: Keys, admins: frozenset[str] = frozenset()
) -> ShutdownNotice:
    client = AsyncWebClient(token="xoxb-ok", base_url=slack.base_url)
    return ShutdownNotice(redis, keys, client, admins)


def dm_channels(slack: SlackStandIn) -> list[str]:
    return [call.args["channel"] for call in slack.calls_to("chat.postMessage")]


async def test_two_processes_tell_each_admin_once_a_day(
    slack: SlackStandIn, redis: Redis, keys: Keys
) -> None:
    slack.add_user("UA", is_admin=True)
    first, second = notice(slack, redis, keys), notice(slack, redis, keys)
    assert await first.tell_once_today("T1", GOING, "the model goes", TODAY) == 1
    assert await second.tell_once_today("T1", GOING, "the model goes", TODAY) == 0
    assert dm_channels(slack) == ["DA"]
    assert [m.text for m in slack.channel_top_level("DA")] == ["the model goes"]
    # The next day, and another workspace the same day, are told again.
    tomorrow = date(2026, 12, 2)
    assert await second.tell_once_today("T1", GOING, "the model goes", tomorrow) == 1
    assert await first.tell_once_today("T2", GOING, "the model goes", TODAY) == 1
    assert dm_channels(slack) == ["DA", "DA", "DA"]


async def test_tutor_admins_are_told_without_asking_slack_who_the_admins_are(
    slack: SlackStandIn, redis: Redis, keys: Keys
) -> None:
    slack.add_user("UA", is_admin=True)
    slack.add_user("UX")
    told = await notice(slack, redis, keys, frozenset({"UX"})).tell_once_today(
        "T1", GOING, "text", TODAY
    )
    assert told == 1 and dm_channels(slack) == ["DX"]
    assert not slack.calls_to("users.list")


async def test_the_workspace_admins_and_owners_are_found_page_by_page(
    slack: SlackStandIn, redis: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin_notice, "USERS_PAGE_SIZE", 2)
    slack.add_user("U1")
    slack.add_user("UADMIN", is_admin=True)
    slack.add_user("U2")
    slack.add_user("UAPP", is_admin=True, is_bot=True)
    slack.add_user("UGONE", is_owner=True, deleted=True)
    slack.add_user("UOWNER", is_owner=True)
    assert await notice(slack, redis, keys).admins() == ["UADMIN", "UOWNER"]
    assert len(slack.calls_to("users.list")) == 4


async def test_when_nobody_could_be_told_a_later_check_tries_again(
    slack: SlackStandIn, redis: Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    slack.add_user("UA", is_admin=True)
    slack.fail("users.list", "missing_scope")
    assert await notice(slack, redis, keys).tell_once_today("T1", GOING, "text", TODAY) == 0
    assert "set TUTOR_ADMINS" in caplog.text
    assert await notice(slack, redis, keys).tell_once_today("T1", GOING, "text", TODAY) == 1
    assert dm_channels(slack) == ["DA"]


def test_tutor_admins_are_comma_separated_user_ids(tmp_path: Path) -> None:
    def load(value: str) -> frozenset[str]:
        return Settings.load({"TUTOR_ADMINS": value}, env_file=tmp_path / "none").admins

    assert load("U012AB3CD, W0456EF ,") == frozenset({"U012AB3CD", "W0456EF"})
    assert Settings.load({}, env_file=tmp_path / "none").admins == frozenset()
    with pytest.raises(ConfigError, match=r"TUTOR_ADMINS.*Slack user ids.*alice"):
        load("U012AB3CD,alice")
