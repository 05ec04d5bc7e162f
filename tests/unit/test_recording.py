"""Recording a message before the ack: bounded, and a failure noticed once per message."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from typing import Any, cast

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.background import BackgroundTasks
from bot.slack.listeners.recording import (
    NOT_ACCEPTING,
    Attempt,
    Delivery,
    MessageRecording,
    NotRecorded,
)
from bot.turns.models import Turn, TurnSource

MENTION = Turn("T1:C1:1.1", "T1", "C1", "1.1", "U1", "hi", TurnSource.MENTION)


class FakeClient:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []

    async def chat_postMessage(self, **args: Any) -> None:
        self.posts.append(args)


def attempt(
    recording: MessageRecording, client: FakeClient, event_id: str, ts: str, *, notify: bool
) -> AbstractAsyncContextManager[Attempt]:
    return recording.attempt(
        cast(AsyncWebClient, client), MENTION, Delivery(event_id, ts), notify=notify
    )


async def test_a_redis_that_does_not_answer_is_given_up_on_at_the_deadline() -> None:
    background, client = BackgroundTasks(), FakeClient()
    recording = MessageRecording(background, seconds=0.2)
    started = time.monotonic()
    with pytest.raises(NotRecorded):
        async with attempt(recording, client, "Ev1", "1.1", notify=True):
            await asyncio.Event().wait()  # a Redis command that never returns
    assert time.monotonic() - started < 1
    await background.drain(1)
    assert client.posts == [{"channel": "C1", "thread_ts": "1.1", "text": NOT_ACCEPTING}]


async def test_one_notice_per_message_however_often_it_fails() -> None:
    background, client = BackgroundTasks(), FakeClient()
    recording = MessageRecording(background)
    for event_id, ts in [("Ev1", "1.1"), ("Ev1", "1.1"), ("Ev2", "1.1"), ("Ev3", "2.2")]:
        with pytest.raises(NotRecorded):
            async with attempt(recording, client, event_id, ts, notify=True):
                raise RedisConnectionError("refused")
    await background.drain(1)
    assert len(client.posts) == 2, "message 1.1 (as Ev1 and Ev2) and message 2.2"


async def test_no_notice_unless_the_message_is_for_the_bot() -> None:
    background, client = BackgroundTasks(), FakeClient()
    recording = MessageRecording(background)
    with pytest.raises(NotRecorded):
        async with attempt(recording, client, "Ev1", "1.1", notify=False):
            raise RedisConnectionError("refused")
    await background.drain(1)
    assert client.posts == []


async def test_no_notice_when_slacks_redelivery_got_the_message_recorded_meanwhile() -> None:
    """A Redis only slow for a moment: the redelivery is recorded, the notice is dropped."""
    background, client = BackgroundTasks(), FakeClient()
    asked: list[tuple[str, str]] = []

    async def recorded(turn: Turn, delivery: Delivery) -> bool:
        asked.append((turn.channel_id, delivery.message_ts))
        return True

    recording = MessageRecording(background, recorded=recorded, notice_delay=0.01)
    with pytest.raises(NotRecorded):
        async with attempt(recording, client, "Ev1", "1.1", notify=True):
            raise TimeoutError
    await background.drain(5)
    assert asked == [("C1", "1.1")] and client.posts == []


async def test_the_notice_comes_when_redis_cannot_say_the_message_was_recorded() -> None:
    background, client = BackgroundTasks(), FakeClient()

    async def still_away(turn: Turn, delivery: Delivery) -> bool:
        raise RedisConnectionError("refused")

    recording = MessageRecording(background, recorded=still_away, notice_delay=0.01)
    with pytest.raises(NotRecorded):
        async with attempt(recording, client, "Ev1", "1.1", notify=True):
            raise RedisConnectionError("refused")
    await background.drain(5)
    assert client.posts == [{"channel": "C1", "thread_ts": "1.1", "text": NOT_ACCEPTING}]
