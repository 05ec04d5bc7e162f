"""Every turn ends, in its place, whatever the model server or Slack does (issue 9, 1–11)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import BackendKind, StreamingMode
from bot.slack.placeholder import STOP_ACTION
from bot.slack.render import MESSAGE_LIMIT, split_message
from bot.storage.connection import connect
from bot.storage.keys import Keys
from bot.turns.models import Turn, TurnSource
from tests.conftest import RedisServer
from tests.e2e.conftest import BOT_TOKEN, Harness, harness_with_own_redis, running_harness
from tests.e2e.test_durability import queue_resumed
from tests.redis_contents import redis_contents

CHANNEL = "C700"
USER = "U700"
RESPONSES = [BackendKind.RESPONSES]
OUTAGE_SECONDS = 3.0


def thinking_left(harness: Harness) -> list[str]:
    return [
        text
        for (channel, ts), _ in harness.slack.messages.items()
        if "thinking" in (text := harness.slack.visible_text(channel, ts)).lower()
    ]


async def ask(harness: Harness, text: str, thread_ts: str | None = None) -> str:
    _, _, ts = await harness.events.mention(CHANNEL, USER, f"<@UBOT> {text}", thread_ts=thread_ts)
    return thread_ts or ts


@pytest.mark.parametrize("backend", RESPONSES, ids=["responses"])
async def test_a_stream_of_keep_alives_ends_the_turn_and_the_next_question_goes_on(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> None:
    """The server answers the streamed create with 200, then only keep-alive comments."""
    async with running_harness(
        redis_server.url, redis_prefix, backend,
        streaming=StreamingMode.NATIVE, openai_timeout=1.0, run_timeout=20.0,
    ) as harness:  # fmt: skip
        harness.openai.stall_streams(r"/responses$")
        started = time.monotonic()
        root = await ask(harness, "Who was Pericles?")
        replies = await harness.wait_for_bot_replies(CHANNEL, root, 1, timeout=15)
        assert time.monotonic() - started < 10, "bounded by TUTOR_OPENAI_TIMEOUT, not the run's"
        assert "did not start answering" in harness.slack.visible_text(CHANNEL, replies[0].ts)
        await ask(harness, "And Aspasia?", thread_ts=root)
        await harness.slack.wait_for(lambda: "Answer" in " ".join(harness.bot_texts(CHANNEL, root)))
        await harness.wait_idle()
        assert harness.bot_texts(CHANNEL, root)[-1].endswith("And Aspasia?")
        assert thinking_left(harness) == []


STATUS_CHECK = {
    BackendKind.RESPONSES: r"/responses/resp_",
    BackendKind.ASSISTANTS: r"/threads/[^/]+/runs/run_",
}


@pytest.mark.parametrize("backend", list(STATUS_CHECK), ids=[b.value for b in STATUS_CHECK])
async def test_hung_status_checks_still_show_a_streamed_answer(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> None:
    """The model finished, but every status check hangs: the stream's end says so."""
    async with running_harness(
        redis_server.url, redis_prefix, backend, streaming=StreamingMode.EDIT, run_timeout=60.0
    ) as harness:
        harness.openai.hold("GET", STATUS_CHECK[backend])
        root = await ask(harness, "Who was Solon?")
        # Long before the run's deadline, which is all a hung check could wait for.
        replies = await harness.wait_for_bot_replies(CHANNEL, root, 1, timeout=8)
        assert harness.slack.visible_text(CHANNEL, replies[0].ts) == "Answer 1: Who was Solon?"


@pytest.mark.parametrize("backend", RESPONSES, ids=["responses"])
async def test_hung_status_checks_end_the_turn_within_the_run_timeout(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> None:
    """Without a stream nothing says the run ended: the turn ends on time, told plainly."""
    run_timeout = 2.0
    async with running_harness(
        redis_server.url, redis_prefix, backend, run_timeout=run_timeout, openai_timeout=30.0
    ) as harness:
        harness.openai.hold("GET", r"/responses/resp_")
        started = time.monotonic()
        root = await ask(harness, "Who was Draco?")
        replies = await harness.wait_for_bot_replies(CHANNEL, root, 1, timeout=30)
        assert time.monotonic() - started < run_timeout + 15
        assert "longer than 2 seconds" in harness.slack.visible_text(CHANNEL, replies[0].ts)


async def test_a_placeholder_slack_will_not_edit_is_replaced_by_the_answer(
    harness: Harness,
) -> None:
    harness.slack.fail("chat.update", "cant_update_message", count=50)
    root = await ask(harness, "Who was Cleon?")
    await harness.slack.wait_for(lambda: "Answer" in " ".join(harness.bot_texts(CHANNEL, root)))
    await harness.wait_idle()
    assert harness.bot_texts(CHANNEL, root) == ["Answer 1: Who was Cleon?"]
    assert len(harness.slack.calls_to("chat.delete")) == 1
    assert thinking_left(harness) == []


@pytest.mark.parametrize("backend", RESPONSES, ids=["responses"])
@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "is_archived"])
async def test_a_permanent_slack_error_ends_the_turn_once_and_others_go_on(
    harness: Harness, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    harness.slack.fail("chat.postMessage", error)
    caplog.set_level(logging.INFO)
    root = await ask(harness, "Who was Nicias?")
    await harness.wait_idle()
    assert harness.bot_texts(CHANNEL, root) == []
    dropped = [r for r in caplog.records if "turn dropped" in r.getMessage()]
    assert len(dropped) == 1 and error in dropped[0].getMessage()
    assert harness.openai.requests == [], "no run for a turn that cannot be answered"
    assert not any("giving up" in r.getMessage() for r in caplog.records)
    root = await ask(harness, "Who was Alcibiades?", thread_ts=root)
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    assert "Alcibiades" in harness.slack.visible_text(CHANNEL, replies[0].ts)


@pytest.mark.parametrize("backend", RESPONSES, ids=["responses"])
async def test_a_chunk_slack_refuses_ends_the_turn_and_the_thread_goes_on(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    harness.slack.fail("chat.postMessage", "msg_too_long", after=1)  # the second message
    root = await ask(harness, "[long:9000] Tell me everything.")
    await harness.wait_idle()
    dropped = [r for r in caplog.records if "turn dropped" in r.getMessage()]
    assert len(dropped) == 1 and "msg_too_long" in dropped[0].getMessage()
    await ask(harness, "Shorter, please.", thread_ts=root)
    await harness.slack.wait_for(lambda: "Shorter" in harness.bot_texts(CHANNEL, root)[-1])


async def test_a_short_redis_outage_during_a_turn_looks_like_a_pause(
    tmp_path: Path, redis_prefix: str, backend: BackendKind
) -> None:
    """Redis goes away for a few seconds while the model answers; it keeps its data. (The run
    may take 30 s: the outage, Redis loading its data again, and a loaded machine.)"""
    async with harness_with_own_redis(
        tmp_path, redis_prefix, backend, persistent=True, run_timeout=30.0
    ) as (
        harness,
        own_redis,
    ):
        root = await ask(harness, "[slow:1] Who was Themistocles?")
        await harness.slack.wait_for(lambda: bool(harness.bot_texts(CHANNEL, root)))
        own_redis.stop()
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for something
        own_redis.start()
        try:
            await harness.slack.wait_for(
                lambda: "Answer" in " ".join(harness.bot_texts(CHANNEL, root)), timeout=40
            )
        except TimeoutError:  # what Redis holds of the turn, in the failure's report
            redis = connect(own_redis.url)
            contents = await redis_contents(redis, redis_prefix)
            groups = await redis.xinfo_groups(Keys(redis_prefix).ready_stream(0))
            await redis.aclose()
            print("redis:", contents, "\ngroups:", groups, "\nslack:", harness.slack.calls)
            raise
        await harness.wait_idle()
        assert harness.bot_texts(CHANNEL, root) == ["Answer 1: Who was Themistocles?"]
        shown = [harness.slack.visible_text(c.args["channel"], c.args["ts"])
                 for c in harness.slack.calls_to("chat.update")]  # fmt: skip
        assert not any("Sorry" in text or "wrong" in text for text in shown)


@pytest.mark.parametrize("backend", RESPONSES, ids=["responses"])
async def test_a_command_that_cannot_be_recorded_is_refused_in_its_ack(
    tmp_path: Path, redis_prefix: str, backend: BackendKind
) -> None:
    """Slack never redelivers a command: it is recorded before the ack, or refused in it."""
    async with harness_with_own_redis(tmp_path, redis_prefix, backend) as (harness, own_redis):
        own_redis.stop()
        status, body = await harness.events.slash_command(
            "/tutor", "Who was Lycurgus?", channel_id=CHANNEL, user_id=USER,
            response_url=harness.slack.new_response_url(),
        )  # fmt: skip
        assert status == 200 and "can't take questions" in body
        assert harness.slack.calls_to("chat.postMessage") == []


@pytest.mark.parametrize("backend", RESPONSES, ids=["responses"])
async def test_a_stop_that_cannot_be_recorded_is_said_so_to_the_asker(
    tmp_path: Path, redis_prefix: str, backend: BackendKind
) -> None:
    """Slack never resends a click: the Stop is acked within its bound and the asker told."""
    async with harness_with_own_redis(tmp_path, redis_prefix, backend) as (harness, own_redis):
        own_redis.stop()
        status, _ = await harness.events.click(
            channel=CHANNEL, message_ts="1700000000.000100", user_id=USER,
            action_id=STOP_ACTION, value=f"turn_x|{USER}",
            response_url=harness.slack.new_response_url(),
        )  # fmt: skip
        assert status == 200
        await harness.slack.wait_for(lambda: bool(harness.slack.response_url_posts))
        assert "couldn't stop" in harness.slack.response_url_posts[0]["text"]


@pytest.mark.parametrize("backend", RESPONSES, ids=["responses"])
async def test_a_command_is_recorded_when_acked_and_a_replay_is_answered_once(
    harness: Harness,
) -> None:
    keys = Keys(harness.settings.redis_prefix)
    redis = connect(harness.settings.redis_url or "")
    try:
        for _ in range(2):  # the same signed request, replayed
            status, _ = await harness.events.slash_command(
                "/tutor", "Who was Cimon?", channel_id=CHANNEL, user_id=USER,
                response_url=harness.slack.new_response_url(), trigger_id="13345.replayed",
            )  # fmt: skip
            assert status == 200
            recorded = [key async for key in redis.scan_iter(keys.turn("*"))]
            assert len(recorded) == 1, "the question is in Redis when Slack gets the ack"
    finally:
        await redis.aclose()
    await harness.slack.wait_for(lambda: bool(harness.slack.channel_top_level(CHANNEL)))
    root = harness.slack.channel_top_level(CHANNEL)[0]
    await harness.wait_for_text(CHANNEL, root.ts, lambda t: "Answer 1" in t)
    await harness.wait_idle()
    assert len(harness.slack.channel_top_level(CHANNEL)) == 1
    assert harness.openai.count("POST", r"/responses$") == 1


@pytest.mark.parametrize("backend", RESPONSES, ids=["responses"])
async def test_a_resumed_turn_posts_only_the_rest_of_a_long_answer(harness: Harness) -> None:
    """A process died after posting two of the answer's messages, before it was delivered."""
    question = "[long:9000] Everything about Athens."
    openai = AsyncOpenAI(api_key="sk-test", base_url=harness.openai.base_url)
    conversation = await openai.conversations.create()
    response = await openai.responses.create(
        model="gpt-test", conversation=conversation.id, input=question
    )
    await openai.close()
    parts = split_message(response.output_text, MESSAGE_LIMIT)
    assert len(parts) >= 3
    _, _, root = await harness.events.channel_message(CHANNEL, USER, "Tell me about Athens")
    turn = Turn(f"T1:{CHANNEL}:{root}", "T1", CHANNEL, root, USER, question, TurnSource.MENTION)
    client = AsyncWebClient(token=BOT_TOKEN, base_url=harness.slack.base_url)
    placeholder = (await client.chat_postMessage(channel=CHANNEL, thread_ts=root, text="x"))["ts"]
    progress = {
        "place": "message", "placeholder_ts": placeholder, "conversation_id": conversation.id,
        "message_id": "", "run_id": response.id, "chunks_delivered": "2", "attempts": "1",
    }  # fmt: skip
    await queue_resumed(harness, turn, progress, conversation.id)
    await harness.wait_idle()
    bot_posts = [c for c in harness.slack.calls_to("chat.postMessage") if c.args.get("text") != "x"]
    assert len(bot_posts) == len(parts) - 2, "only the messages not yet shown"
    assert harness.slack.calls_to("chat.update") == [], "the first message was shown already"
