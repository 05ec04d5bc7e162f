"""Streaming: answers appear as they are written, and end exactly as they would without it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from bot.local.slack_api import Message
from bot.settings import BackendKind, StreamingMode
from tests.conftest import RedisServer
from tests.e2e.conftest import Harness, running_harness

CHANNEL = "C700"
DM = "D700"
USER = "U700"
STREAMING_BACKENDS = list(BackendKind)  # all three stream


@pytest.fixture
async def harness(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> AsyncIterator[Harness]:
    """This module's bot streams natively (the default; the other modules' bots do not)."""
    async with running_harness(
        redis_server.url, redis_prefix, backend, streaming=StreamingMode.NATIVE
    ) as harness:
        yield harness


def bot_messages(harness: Harness, channel: str, root: str) -> list[Message]:
    return [m for m in harness.slack.thread(channel, root) if m.bot_id]


def shown(harness: Harness, channel: str, messages: list[Message]) -> list[str]:
    return [harness.slack.visible_text(channel, m.ts) for m in messages]


async def ask_in_thread(harness: Harness, question: str, count: int = 1) -> list[str]:
    """Mention the bot in a channel; the finished bot messages of the thread, in order."""
    _, _, root = await harness.events.mention(CHANNEL, USER, f"<@UBOT> {question}")
    await harness.wait_for_bot_replies(CHANNEL, root, count, timeout=30)
    await harness.wait_idle()
    return shown(harness, CHANNEL, bot_messages(harness, CHANNEL, root))


@pytest.mark.parametrize("backend", STREAMING_BACKENDS, ids=[b.value for b in STREAMING_BACKENDS])
async def test_in_a_thread_the_answer_streams_natively_and_the_placeholder_goes(
    harness: Harness,
) -> None:
    answer = await ask_in_thread(harness, "[slow:1.5] [long:1500] Tell me about Rome")
    [start] = harness.slack.calls_to("chat.startStream")
    assert start.args["recipient_user_id"] == USER and start.args["recipient_team_id"]
    appends = harness.slack.calls_to("chat.appendStream")
    assert appends, "the answer grew while it was written"
    [placeholder] = harness.slack.calls_to("chat.postMessage")
    [deleted] = harness.slack.calls_to("chat.delete")
    assert deleted.args["ts"] == placeholder.response["ts"]
    assert len(harness.slack.calls_to("chat.stopStream")) == 1
    assert len(answer) == 1, "one message: the streamed answer"
    assert answer[0].startswith("Answer 1: Tell me about Rome") and len(answer[0]) == 1500


@pytest.mark.parametrize("backend", STREAMING_BACKENDS, ids=[b.value for b in STREAMING_BACKENDS])
async def test_a_top_level_dm_shows_the_answer_growing_in_the_placeholder(
    harness: Harness,
) -> None:
    await harness.events.dm(DM, USER, "[slow:1.5] [long:1500] Tell me about Rome")
    await harness.slack.wait_for(
        lambda: any(
            m.bot_id and "Answer 1" in harness.slack.visible_text(DM, m.ts)
            for m in harness.slack.channel_top_level(DM)
        ),
        timeout=20,
    )
    await harness.wait_idle()
    [reply] = [m for m in harness.slack.channel_top_level(DM) if m.bot_id]
    assert not harness.slack.calls_to("chat.startStream"), "no thread: no native stream"
    partial = [e for e in reply.edits if "still writing" in e]
    assert partial, "the placeholder showed the answer while it was written"
    assert partial[0].startswith("Answer 1: Tell me about Rome")
    final = harness.slack.visible_text(DM, reply.ts)
    assert len(final) == 1500 and "Thinking" not in final


@pytest.mark.parametrize("backend", STREAMING_BACKENDS, ids=[b.value for b in STREAMING_BACKENDS])
async def test_streaming_on_and_off_give_the_same_final_text(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> None:
    finals: dict[StreamingMode, list[str]] = {}
    for mode in StreamingMode:
        async with running_harness(
            redis_server.url, f"{redis_prefix}{mode.value}:", backend, streaming=mode
        ) as harness:
            finals[mode] = await ask_in_thread(harness, "[slow:1] [long:3000] The Greeks")
            streamed = bool(harness.slack.calls_to("chat.startStream"))
            assert streamed == (mode is StreamingMode.NATIVE)
    assert finals[StreamingMode.NATIVE] == finals[StreamingMode.EDIT] == finals[StreamingMode.OFF]


async def test_a_45000_character_answer_streams_and_arrives_complete_in_order(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    backend = BackendKind.RESPONSES
    async with running_harness(
        redis_server.url, redis_prefix, backend, streaming=StreamingMode.NATIVE, run_timeout=30.0
    ) as harness:
        parts = await ask_in_thread(harness, "[slow:2] [long:45000] Everything", count=12)
        assert harness.slack.calls_to("chat.startStream"), "it streamed while it could"
    text = "\n\n".join(parts)
    numbers = [int(n) for n in re.findall(r"Paragraph (\d+)\.", text)]
    assert numbers == list(range(1, numbers[-1] + 1)), "every paragraph, in order"
    assert sum(len(p) for p in parts) >= 45000 - 2 * len(parts)
    assert all(len(p) <= 4000 for p in parts)
    assert not any("Thinking" in p for p in parts)


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_broadcasts_are_neutralised_in_a_streamed_answer(
    harness: Harness,
) -> None:
    question = "[slow:1] [echo] <!channel> <!here> <!everyone> <!subteam^S1> <@U999> " + "hi " * 60
    [answer] = await ask_in_thread(harness, question)
    assert harness.slack.calls_to("chat.startStream")
    sent = [c.args.get("markdown_text") or "" for c in harness.slack.calls if "Stream" in c.method]
    for text in [answer, *sent]:
        for dangerous in ("<!channel>", "<!here>", "<!everyone>", "<!subteam^S1>", "<@U999>"):
            assert dangerous not in text


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
@pytest.mark.parametrize(
    "method", ["chat.startStream", "chat.appendStream", "chat.stopStream", "chat.delete"]
)
async def test_slack_refusing_a_stream_call_still_delivers_the_whole_answer_once(
    harness: Harness, method: str
) -> None:
    harness.slack.fail(method, "internal_error", count=5)
    _, _, root = await harness.events.mention(
        CHANNEL, USER, "<@UBOT> [slow:1.5] [long:1500] Tell me about Rome"
    )
    await harness.wait_idle()  # every accepted turn answered
    texts = shown(harness, CHANNEL, bot_messages(harness, CHANNEL, root))
    if method != "chat.stopStream":  # Slack was asked to end every stream it started
        assert not any(m.stream_open for m in bot_messages(harness, CHANNEL, root))
    answers = [t for t in texts if t.startswith("Answer 1: Tell me about Rome")]
    assert len(answers) == 1 and len(answers[0]) == 1500, texts
    assert not any("Thinking" in t for t in texts)
    if method == "chat.delete":  # the placeholder could not go: it points at the answer
        assert texts == ["_Answer below._", answers[0]]
    else:
        assert texts == answers
