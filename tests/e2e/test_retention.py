"""The retention sweep: conversations idle past TUTOR_RETENTION_DAYS are forgotten by the bot
itself, once each however many processes sweep, also after a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest
from redis.asyncio import Redis

from bot.settings import BackendKind
from bot.slack.conversation_keys import TOP_LEVEL, thread_key
from bot.storage.connection import connect
from bot.storage.keys import Keys
from tests.conftest import RedisServer
from tests.e2e.conftest import Harness, running_harness, start_bot
from tests.e2e.leftovers import QUESTION, assert_forgotten, dm_answers, remembered

CHANNEL = "C810"
USER = "U810"
DAY = 24 * 60 * 60


async def test_two_processes_sweep_idle_conversations_once_each(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    async with running_harness(
        redis_server.url, redis_prefix, BackendKind.RESPONSES, worker_name="one"
    ) as harness:
        second, second_events, _ = await start_bot(
            dataclasses.replace(harness.settings, worker_name="two")
        )
        try:
            roots = []
            for index, sender in enumerate((harness.events, second_events, harness.events)):
                _, _, root = await sender.mention(CHANNEL, USER, f"<@UBOT> {QUESTION} {index}")
                roots.append(root)
            for root in roots:
                await harness.wait_for_bot_replies(CHANNEL, root, 1)
            await harness.wait_idle()
            await second.worker.wait_idle()
            conversations = [
                await remembered(harness, thread_key("T1", CHANNEL, root)) for root in roots
            ]
            sweepers = (harness.bot.retention, second.retention)
            now = time.time()
            assert sum(await asyncio.gather(*(s.sweep(now + 29 * DAY) for s in sweepers))) == 0
            assert sum(await asyncio.gather(*(s.sweep(now + 31 * DAY) for s in sweepers))) == 3
            for conversation in conversations:
                conversation_id = conversation.ids[0]
                assert harness.openai.count("DELETE", rf"/conversations/{conversation_id}$") == 1
            await assert_forgotten(harness, *conversations)
        finally:
            await second.stop(grace_seconds=1)
            await second_events.close()


@pytest.mark.parametrize("backend", [BackendKind.CHAT], ids=["chat"])
async def test_a_restarted_bot_sweeps_what_stayed_idle_past_the_retention(
    harness: Harness,
) -> None:
    dm = "D803"
    await harness.events.dm(dm, USER, QUESTION)
    await harness.slack.wait_for(lambda: len(dm_answers(harness, dm)) == 1)
    await harness.wait_idle()
    conversation = await remembered(harness, thread_key("T1", dm, TOP_LEVEL))
    await harness.restart(retention_days=1 / DAY)  # one second
    redis = connect(harness.settings.redis_url or "")
    try:
        await until_gone(
            redis, Keys(harness.settings.redis_prefix).chat_history(conversation.ids[0])
        )
    finally:
        await redis.aclose()
    await assert_forgotten(harness, conversation)


async def until_gone(redis: Redis, key: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while await redis.exists(key):
        assert time.monotonic() < deadline, f"{key} is still there"
        await asyncio.sleep(0.05)
