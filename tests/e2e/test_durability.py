"""Nothing lost, nothing twice: redelivery, bursts, shutdown, several processes, SIGKILL."""

from __future__ import annotations

import asyncio
import dataclasses
import re

import pytest
from openai import AsyncOpenAI
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import TutorBot
from bot.settings import BackendKind
from bot.slack.placeholder import PLACEHOLDER_EVENT
from bot.storage.connection import connect
from bot.storage.keys import Keys
from bot.turns.models import Turn, TurnSource
from bot.turns.queue import TurnQueue
from tests.conftest import RedisServer
from tests.e2e.conftest import BOT_TOKEN, Harness, running_harness, start_bot

CHANNEL = "C300"
USER = "U300"


async def test_messages_sent_while_a_run_works_are_answered_after_it_in_order(
    harness: Harness,
) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> [slow:0.5] first")
    for text in ("second", "third", "fourth"):
        await harness.events.mention(CHANNEL, USER, f"<@UBOT> {text}", thread_ts=root)
    await harness.wait_for_bot_replies(CHANNEL, root, 4)
    assert harness.bot_texts(CHANNEL, root) == [
        "Answer 1: first",
        "Answer 2: second",
        "Answer 3: third",
        "Answer 4: fourth",
    ]


@pytest.mark.parametrize("backend", [BackendKind.ASSISTANTS], ids=["assistants"])
async def test_sigterm_hands_turns_back_and_the_next_process_finishes_them(
    harness: Harness,
) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> [slow:1.5] long one")
    await harness.slack.wait_for(lambda: harness.openai.count("POST", r"/runs$") == 1)
    await harness.bot.stop(grace_seconds=0.1)
    [placeholder] = [m for m in harness.slack.thread(CHANNEL, root) if m.bot_id]
    assert "thinking" in harness.slack.visible_text(CHANNEL, placeholder.ts).lower()

    harness.bot, harness.events, harness.base_url = await start_bot(harness.settings)
    text = await harness.wait_for_text(CHANNEL, placeholder.ts, lambda t: "Answer" in t)
    assert text == "Answer 1: long one"
    assert len(harness.slack.calls_to("chat.postMessage")) == 1, "the same placeholder"
    assert harness.openai.count("POST", r"/messages$") == 1
    assert harness.openai.count("POST", r"/runs$") == 1, "the run was followed, not restarted"


async def test_two_processes_share_the_work_without_duplicates(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    async with running_harness(
        redis_server.url, redis_prefix, BackendKind.RESPONSES, worker_name="one"
    ) as harness:
        settings = dataclasses.replace(harness.settings, worker_name="two")
        second, second_events, _ = await start_bot(settings)
        try:
            roots = []
            for index in range(12):
                sender = harness.events if index % 2 else second_events
                _, _, root = await sender.mention(CHANNEL, USER, f"<@UBOT> q{index}")
                await sender.mention(CHANNEL, USER, f"<@UBOT> f{index}", thread_ts=root)
                roots.append(root)
            for index, root in enumerate(roots):
                await harness.wait_for_bot_replies(CHANNEL, root, 2, timeout=20)
                assert harness.bot_texts(CHANNEL, root) == [
                    f"Answer 1: q{index}",
                    f"Answer 2: f{index}",
                ]
            await second.worker.wait_idle()
            await harness.wait_idle()
            assert len(harness.slack.calls_to("chat.postMessage")) == 24
            assert harness.openai.count("POST", r"/responses$") == 24
        finally:
            await second.stop(grace_seconds=1)
            await second_events.close()


async def stop_abruptly(bot: TutorBot) -> None:
    """As close to SIGKILL as one process allows: tasks die, nothing is tidied or recorded."""
    await bot.worker.stop(grace_seconds=0)
    if bot._runner is not None:
        await bot._runner.cleanup()


def answer_number(text: str) -> int:
    match = re.match(r"Answer (\d+):", text)
    return int(match.group(1)) if match else -1


async def test_a_redelivered_burst_is_answered_once_each(harness: Harness) -> None:
    roots = []
    for index in range(5):
        event_id = f"Ev_burst_{index}"
        status, _, root = await harness.events.mention(
            CHANNEL, USER, f"<@UBOT> burst {index}", event_id=event_id
        )
        assert status == 200
        await asyncio.gather(
            *(
                harness.events.mention(
                    CHANNEL, USER, f"<@UBOT> burst {index}", ts=root, event_id=event_id,
                    retry_num=retry,
                )
                for retry in (1, 2, 3)
            )
        )  # fmt: skip
        roots.append(root)
    for root in roots:
        await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.wait_idle()
    for index, root in enumerate(roots):
        assert harness.bot_texts(CHANNEL, root) == [f"Answer 1: burst {index}"]


def interrupted_turn(harness: Harness, text: str = "Who?") -> Turn:
    """A mention turn in a new thread, as a crashed process would have left it."""
    root = harness.events.next_ts()
    return Turn(f"T1:{CHANNEL}:{root}", "T1", CHANNEL, root, USER, text, TurnSource.MENTION)


async def post_placeholder_of(harness: Harness, turn: Turn) -> str:
    """A placeholder of `turn` posted by a process that never recorded it; its ts."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=harness.slack.base_url)
    metadata = {"event_type": PLACEHOLDER_EVENT, "event_payload": {"turn_id": turn.turn_id}}
    posted = await client.chat_postMessage(
        channel=CHANNEL, thread_ts=turn.thread_ts, text="_Thinking…_", metadata=metadata
    )
    return str(posted["ts"])


async def queue_resumed(
    harness: Harness, turn: Turn, progress: dict[str, str], conversation_id: str | None = None
) -> None:
    """Queue `turn` with the steps an earlier attempt recorded (and its conversation)."""
    keys = Keys(harness.settings.redis_prefix)
    redis = connect(harness.settings.redis_url or "")
    try:
        if conversation_id is not None:
            key = keys.conversation(harness.settings.backend.value, turn.conversation_key)
            await redis.set(key, conversation_id)
        await redis.hset(keys.turn(turn.turn_id), mapping=progress)
        await TurnQueue(redis, keys).enqueue(turn, None, None)
    finally:
        await redis.aclose()


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_a_placeholder_posted_just_before_a_crash_is_found_and_completed(
    harness: Harness,
) -> None:
    """The process died after Slack created the placeholder but before its ts was recorded."""
    turn = interrupted_turn(harness)
    orphan = await post_placeholder_of(harness, turn)
    await queue_resumed(harness, turn, {"posting_placeholder": "1"})
    text = await harness.wait_for_text(CHANNEL, orphan, lambda t: "Answer" in t)
    assert text == "Answer 1: Who?"
    assert len(harness.slack.calls_to("chat.postMessage")) == 1


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_a_response_created_just_before_a_crash_is_followed_not_repeated(
    harness: Harness,
) -> None:
    """The process died after OpenAI accepted the create but before the id was recorded."""
    turn = interrupted_turn(harness, "[slow:0.3] Who?")
    openai = AsyncOpenAI(api_key="sk-test", base_url=harness.openai.base_url)
    conversation = await openai.conversations.create()
    await openai.responses.create(
        model="gpt-test", conversation=conversation.id, background=True, store=True,
        input=[{"role": "user", "content": turn.text}],
    )  # fmt: skip
    await openai.close()
    progress = {"conversation_id": conversation.id, "starting_run": "1"}
    await queue_resumed(harness, turn, progress, conversation.id)
    await harness.wait_for_bot_replies(CHANNEL, turn.thread_ts or "", 1)
    assert harness.bot_texts(CHANNEL, turn.thread_ts or "") == ["Answer 1: Who?"]
    assert harness.openai.count("POST", r"/responses$") == 1, "no second response was created"


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_a_placeholder_that_landed_after_the_takeover_is_removed(
    harness: Harness,
) -> None:
    """A stalled process lost the turn, then its placeholder post still reached Slack."""
    turn = interrupted_turn(harness)
    for _ in range(2):  # one found and completed, one stray
        await post_placeholder_of(harness, turn)
    await queue_resumed(harness, turn, {"posting_placeholder": "1", "attempts": "1"})
    await harness.wait_for_bot_replies(CHANNEL, turn.thread_ts or "", 1)
    await harness.wait_idle()
    assert harness.bot_texts(CHANNEL, turn.thread_ts or "") == ["Answer 1: Who?"]
    assert len(harness.slack.calls_to("chat.delete")) == 1
