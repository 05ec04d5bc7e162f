"""What a conversation leaves behind, in Redis and at the model stand-in: tests of forgetting
look for leftovers with these."""

from __future__ import annotations

import dataclasses

from bot.local.openai_api import OpenAIStandIn
from bot.storage.connection import connect
from bot.storage.keys import DELIVERY_TTL_SECONDS, Keys
from tests.e2e.conftest import Harness
from tests.redis_contents import naming, redis_contents

QUESTION = "Who was Zenobia of Palmyra?"


def stand_in_holdings(openai: OpenAIStandIn) -> str:
    """Everything the model stand-in stores (conversations, responses, threads, runs)."""
    return repr((openai.conversations, openai.response_jobs, openai.threads, openai.runs))


@dataclasses.dataclass
class Remembered:
    """What a conversation left behind: its key and its backend ids."""

    key: str
    ids: list[str]

    @property
    def words(self) -> list[str]:
        return [self.key, *self.ids, QUESTION]


async def remembered(harness: Harness, key: str) -> Remembered:
    keys = Keys(harness.settings.redis_prefix)
    redis = connect(harness.settings.redis_url or "")
    try:
        conversation = await redis.get(keys.conversation(harness.settings.backend.value, key))
        runs = sorted(await redis.smembers(keys.conversation_runs(key)))
    finally:
        await redis.aclose()
    assert conversation and runs, "the conversation was answered"
    return Remembered(key, [conversation, *runs])


async def assert_forgotten(harness: Harness, *conversations: Remembered) -> None:
    """No Redis key or value names them, holds their ids or text; the stand-in neither.
    Delivery markers (Slack ids only) expire within a day."""
    redis = connect(harness.settings.redis_url or "")
    try:
        contents = await redis_contents(redis, harness.settings.redis_prefix)
        for conversation in conversations:
            assert naming(contents, *conversation.words) == {}
        for name in contents:
            if ":seen:" in name:
                assert 0 < await redis.ttl(name) <= DELIVERY_TTL_SECONDS
    finally:
        await redis.aclose()
    held = stand_in_holdings(harness.openai)
    for conversation in conversations:
        assert not [word for word in [*conversation.ids, QUESTION] if word in held]


def dm_answers(harness: Harness, channel: str) -> list[str]:
    texts = [
        harness.slack.visible_text(channel, m.ts) for m in harness.slack.channel_top_level(channel)
    ]
    return [t for t in texts if "Thinking" not in t]
