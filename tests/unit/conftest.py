"""Fixtures the unit tests share: the Slack stand-in and a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.local.slack_api import SlackStandIn

SLACK_TOKEN = "xoxb-ok"


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    """The Slack stand-in, started, accepting SLACK_TOKEN."""
    stand_in = SlackStandIn(token=SLACK_TOKEN)
    await stand_in.start()
    yield stand_in
    await stand_in.stop()


@pytest.fixture
def client(slack: SlackStandIn) -> AsyncWebClient:
    """A Slack client of the stand-in with SLACK_TOKEN."""
    return AsyncWebClient(token=SLACK_TOKEN, base_url=slack.base_url)
