"""The assistants backend's own promises: one assistant however many turns start at once."""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

from bot.backends.assistants import AssistantsBackend
from bot.backends.openai_client import make_client
from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.settings import BackendKind
from bot.storage.connection import connect
from bot.storage.keys import Keys
from tests.conftest import RedisServer
from tests.e2e.conftest import Harness, running_harness

USER = "U400"


async def ask_at_once(harness: Harness, events: list, count: int, tag: str) -> list[tuple]:
    """`count` first questions in as many channels, sent concurrently through `events`."""
    sent = await asyncio.gather(
        *(
            events[index % len(events)].mention(f"C4{tag}{index}", USER, f"<@UBOT> q{index}")
            for index in range(count)
        )
    )
    return [(f"C4{tag}{index}", ts) for index, (_, _, ts) in enumerate(sent)]


async def test_turns_starting_at_once_create_one_assistant(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    async with running_harness(redis_server.url, redis_prefix, BackendKind.ASSISTANTS) as harness:
        roots = await ask_at_once(harness, [harness.events], 5, "a")
        for channel, root in roots:
            await harness.wait_for_bot_replies(channel, root, 1)
        assert harness.openai.count("POST", r"/assistants$") == 1
        assert harness.openai.count("DELETE", r"/assistants/") == 0
        assert len(harness.openai.assistants) == 1


def assistants_backend(openai_url: str, redis: Redis, keys: Keys) -> AssistantsBackend:
    """One process's backend: its own client and in-process lock, the shared Redis."""
    client = make_client(api_key="sk-test", base_url=openai_url, timeout=5, max_retries=0)
    return AssistantsBackend(
        client, redis, keys, assistant_id=None, assistant_name="Tutor", model="m",
        instructions="Teach.", max_output_tokens=100,
    )  # fmt: skip


def report_lock_attempts(redis: Redis, trying: asyncio.Event) -> None:
    """Make `redis.lock(...).acquire()` set `trying` first: the wait becomes observable."""
    make_lock = redis.lock

    def lock(*args: Any, **kwargs: Any) -> Any:
        created = make_lock(*args, **kwargs)
        acquire = created.acquire

        async def reporting_acquire(*a: Any, **kw: Any) -> bool:
            trying.set()
            return await acquire(*a, **kw)

        created.acquire = reporting_acquire  # type: ignore[method-assign]
        return created

    redis.lock = lock  # type: ignore[method-assign]


async def test_a_second_process_waits_for_the_assistant_the_first_creates(
    redis_server: RedisServer, keys: Keys, stand_ins: tuple[SlackStandIn, OpenAIStandIn]
) -> None:
    _, openai = stand_ins
    first_redis, second_redis = connect(redis_server.url), connect(redis_server.url)
    first = assistants_backend(openai.base_url, first_redis, keys)
    second = assistants_backend(openai.base_url, second_redis, keys)
    second_waits = asyncio.Event()
    report_lock_attempts(second_redis, second_waits)
    release = openai.hold("POST", r"/assistants$")
    try:
        creating = asyncio.create_task(first.assistant_id())
        await openai.wait_for(lambda: openai.count("POST", r"/assistants$") == 1)
        waiting = asyncio.create_task(second.assistant_id())
        await asyncio.wait_for(second_waits.wait(), timeout=5)
        release.set()
        ids = await asyncio.gather(creating, waiting)
    finally:
        release.set()
        await first.close()
        await second.close()
        await first_redis.aclose()
        await second_redis.aclose()
    assert ids[0] == ids[1]
    assert openai.count("POST", r"/assistants$") == 1
    assert openai.count("DELETE", r"/assistants/") == 0
