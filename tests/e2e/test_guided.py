"""Guided answers: `/tutor mode guided`, the "Show me the answer" button, and its direct answer
in the same place as a new turn of the conversation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.local.slack_api import Message
from bot.settings import BackendKind, StreamingMode
from bot.slack.listeners.reveal import ALREADY
from bot.tutor.instructions import GUIDED_INSTRUCTIONS, reveal_request
from tests.conftest import RedisServer
from tests.e2e.conftest import Harness, running_harness

CHANNEL = "C600"
LEARNER, OTHER = "U600", "U601"
DM = "D600"


@pytest.fixture
async def native(redis_server: RedisServer, redis_prefix: str) -> AsyncIterator[Harness]:
    """A harness whose thread answers stream natively (the reveal button then comes with
    chat.stopStream)."""
    async with running_harness(
        redis_server.url, redis_prefix, BackendKind.RESPONSES, streaming=StreamingMode.NATIVE
    ) as harness:
        yield harness


async def mode_command(harness: Harness, text: str) -> str:
    status, body = await harness.events.slash_command(
        "/tutor", text, channel_id=CHANNEL, user_id=LEARNER,
        response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    assert status == 200
    answer = json.loads(body)
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"])


def reveal_button(message: Message) -> dict[str, Any] | None:
    """The "Show me the answer" button of a message; it sits above the feedback buttons."""
    blocks = message.blocks or []
    found = [
        (index, element)
        for index, block in enumerate(blocks)
        if block["type"] == "actions"
        for element in block["elements"]
        if element.get("action_id") == "reveal_answer"
    ]
    if not found:
        return None
    [(index, element)] = found
    assert blocks[index + 1]["type"] == "context_actions", "just above the feedback buttons"
    assert element["text"]["text"] == "Show me the answer"
    return element


def responses_sent(harness: Harness) -> list[dict[str, Any]]:
    sent = harness.openai.requests
    return [r.json for r in sent if r.method == "POST" and r.path.endswith("/responses")]


def clicked(harness: Harness, message: Message) -> dict[str, Any]:
    """The clicked message's fields that Slack's payload carries."""
    text = harness.slack.visible_text(message.channel, message.ts)
    return {"text": text, "blocks": message.blocks or [], "bot_id": message.bot_id}


async def click(harness: Harness, button: dict[str, Any], message: Message, user: str) -> None:
    status, _ = await harness.events.click(
        channel=message.channel, message_ts=message.ts, user_id=user, action_id="reveal_answer",
        value=button["value"], response_url=harness.slack.new_response_url(),
        thread_ts=message.thread_ts, message=clicked(harness, message),
    )  # fmt: skip
    assert status == 200


async def test_a_guided_answer_then_show_me_the_answer_in_the_same_thread(native: Harness) -> None:
    harness = native
    assert "guided" in await mode_command(harness, "mode guided")
    assert "*guided* (your choice)" in await mode_command(harness, "mode")

    question = "Why does the Moon have phases?"
    root = await harness.mention_streamed(CHANNEL, LEARNER, f"<@UBOT> {question}")
    [guided] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.wait_idle()
    assert guided.streamed, "a thread's answer streams natively"
    [stop] = harness.slack.calls_to("chat.stopStream")
    button = reveal_button(guided)
    assert button is not None and stop.args["blocks"] == guided.blocks, "with chat.stopStream"
    [first] = responses_sent(harness)
    assert first["instructions"].endswith(GUIDED_INSTRUCTIONS)

    # Someone else's click is refused, only to them.
    await click(harness, button, guided, OTHER)
    await harness.slack.wait_for(lambda: bool(harness.slack.response_url_posts))
    [refusal] = harness.slack.response_url_posts
    assert refusal["response_type"] == "ephemeral" and f"<@{LEARNER}>" in refusal["text"]
    assert len(responses_sent(harness)) == 1

    # The asker's click: the same question, answered directly, as a new turn of the thread.
    await click(harness, button, guided, LEARNER)
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 2)
    await harness.wait_idle()
    revealed = replies[-1]
    second = responses_sent(harness)[1]
    guided_text = harness.slack.visible_text(CHANNEL, guided.ts)
    assert second["input"] == [{"role": "user", "content": reveal_request(guided_text)}]
    assert GUIDED_INSTRUCTIONS not in second["instructions"], "direct for this turn"
    assert second["conversation"] == first["conversation"], "the same conversation"
    shown = harness.slack.visible_text(CHANNEL, revealed.ts)
    assert shown.startswith("Answer 2: ") and "Answer 1: Why does the Moon" in shown
    assert reveal_button(revealed) is None, "a direct answer has nothing to reveal"

    # A second click asks nothing twice.
    await click(harness, button, guided, LEARNER)
    await harness.slack.wait_for(lambda: len(harness.slack.response_url_posts) == 2)
    assert harness.slack.response_url_posts[-1]["text"] == ALREADY
    await harness.wait_idle()
    assert len(responses_sent(harness)) == 2


async def test_a_guided_answer_in_a_direct_message_is_revealed_there(native: Harness) -> None:
    harness = native
    await mode_command(harness, "mode guided")
    await harness.events.dm(DM, LEARNER, "What is a prime number?")
    await harness.wait_idle()
    [answer] = [m for m in harness.slack.channel_top_level(DM) if m.bot_id]
    button = reveal_button(answer)
    assert button is not None, "the edited placeholder carries it too"
    await click(harness, button, answer, LEARNER)
    await harness.slack.wait_for(
        lambda: len([m for m in harness.slack.channel_top_level(DM) if m.bot_id]) == 2
    )
    await harness.wait_idle()
    revealed = [m for m in harness.slack.channel_top_level(DM) if m.bot_id][-1]
    assert revealed.thread_ts is None, "top level, where the question was"
    shown = harness.slack.visible_text(DM, revealed.ts)
    assert shown.startswith("Answer 2: Show me the answer to the question you just guided me")
    assert 'began: "Answer 1: What is a prime number?' in shown, "names the guided reply"
    assert "direct" in await mode_command(harness, "mode direct")
