"""Conversation map and delivery dedup against the real redis-server."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from bot.storage.keys import Keys
from bot.turns.conversations import ConversationStore
from bot.turns.dedup import DeliveryDeduplicator


async def test_concurrent_first_messages_create_one_conversation(redis: Redis, keys: Keys) -> None:
    created: list[str] = []

    async def create(key: str) -> str:
        await asyncio.sleep(0.05)  # widen the race window on purpose
        created.append(key)
        return f"conv-{len(created)}"

    stores = [ConversationStore(redis, keys, "x") for _ in range(5)]
    ids = await asyncio.gather(*(s.find_or_create("T:C:1", create) for s in stores))
    assert created == ["T:C:1"]
    assert set(ids) == {"conv-1"}
    assert await stores[0].forget("T:C:1")
    assert await stores[0].find("T:C:1") is None


async def test_backends_have_separate_maps(redis: Redis, keys: Keys) -> None:
    async def create(key: str) -> str:
        return "same"

    await ConversationStore(redis, keys, "a").find_or_create("k", create)
    assert await ConversationStore(redis, keys, "b").find("k") is None


async def test_a_delivery_is_accepted_once(redis: Redis, keys: Keys) -> None:
    dedup = DeliveryDeduplicator(redis, keys)
    results = await asyncio.gather(*(dedup.first_delivery("Ev1", "C1", "1.1") for _ in range(10)))
    assert results.count(True) == 1


async def test_the_same_message_under_another_event_id_is_a_repeat(
    redis: Redis, keys: Keys
) -> None:
    dedup = DeliveryDeduplicator(redis, keys)
    assert await dedup.first_delivery("Ev1", "C1", "1.1")
    assert not await dedup.first_delivery("Ev2", "C1", "1.1")
    assert await dedup.first_delivery("Ev3", "C1", "2.2")
