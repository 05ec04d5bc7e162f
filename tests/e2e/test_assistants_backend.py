"""The assistants backend's own promises: one assistant however many turns start at once,
and answers read whatever shape a server gives their text."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.backends.assistants import AssistantsBackend, text_parts
from bot.backends.base import BackendError
from bot.backends.openai_client import make_client, read_reply
from bot.local.openai_api import OpenAIStandIn
from bot.local.openai_assistants import TextShape
from bot.local.slack_api import SlackStandIn
from bot.settings import BackendKind, StreamingMode
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


@pytest.mark.parametrize("shape", [TextShape.TEXT_AS_STRING, TextShape.PLAIN_STRING])
@pytest.mark.parametrize("streaming", [StreamingMode.OFF, StreamingMode.EDIT])
async def test_answers_in_other_text_shapes_are_read(
    redis_server: RedisServer, redis_prefix: str, shape: TextShape, streaming: StreamingMode
) -> None:
    """Servers that put the text in a block as a string, or send the content as the text."""
    async with running_harness(
        redis_server.url, redis_prefix, BackendKind.ASSISTANTS, streaming=streaming
    ) as harness:
        harness.openai.assistant_text_shape = shape
        _, _, root = await harness.events.mention("C410", USER, "<@UBOT> Who was Solon?")
        await harness.events.mention("C410", USER, "<@UBOT> And then?", thread_ts=root)
        [first, second] = await harness.wait_for_bot_replies("C410", root, 2)
        assert harness.slack.visible_text("C410", first.ts) == "Answer 1: Who was Solon?"
        assert harness.slack.visible_text("C410", second.ts) == "Answer 2: And then?"


def test_a_reply_of_no_known_shape_is_the_servers_mistake() -> None:
    with pytest.raises(BackendError) as raised, read_reply("fetch answer"):
        text_parts(42)
    assert raised.value.user_message.startswith(
        "Sorry, the model server sent a reply the tutor could not read."
    )


def test_text_parts_read_every_shape_seen() -> None:
    block = {"type": "text", "text": {"value": "a", "annotations": []}}
    image = {"type": "image_file", "image_file": {"file_id": "f"}}
    assert text_parts([block, image, {"type": "text", "text": "b"}]) == [("a", []), ("b", [])]
    assert text_parts("c") == [("c", [])]
    assert text_parts(None) == []
