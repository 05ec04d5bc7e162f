"""Fixtures the unit tests share: the Slack stand-in and a client of it, the OpenAI
stand-in, and Redis as one server or as a cluster (`where`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from slack_sdk.web.async_client import AsyncWebClient

from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.storage.connection import connect
from bot.storage.keys import Keys
from tests.cluster import RedisCluster
from tests.conftest import RedisServer

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


@pytest.fixture
async def stand_in() -> AsyncIterator[OpenAIStandIn]:
    """The OpenAI stand-in, started, with its default pacing (a module may override it)."""
    server = OpenAIStandIn()
    await server.start()
    yield server
    await server.stop()


# Queue shards of `where`'s keys: several, so that a conversation's shard is not always 0.
WHERE_SHARDS = 4


@pytest.fixture(params=["one-redis", "cluster"])
async def where(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Redis, Keys]]:
    """A client and keys (queue shards: WHERE_SHARDS) on one Redis, then on the session's
    cluster, for the steps that must stay in one slot there."""
    if request.param == "cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        client = connect(cluster.url, cluster=True)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        client = connect(server.url)
    prefix = f"test-{uuid.uuid4().hex[:10]}:"
    yield client, Keys(prefix, WHERE_SHARDS, request.param == "cluster")
    await client.aclose()
