"""Feedback: Slack's thumbs under every answer, stored per turn, a comment after a thumbs-down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.local.slack_api import Message
from bot.settings import BackendKind, StreamingMode
from bot.storage.connection import connect
from bot.storage.keys import Keys
from bot.tutor.feedback import FeedbackStore, Rating
from tests.conftest import RedisServer
from tests.e2e.conftest import Harness, running_harness

pytestmark = pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
CHANNEL = "C900"
USER = "U900"


@pytest.fixture
async def store(harness: Harness) -> AsyncIterator[FeedbackStore]:
    redis: Redis = connect(harness.settings.redis_url or "")
    yield FeedbackStore(redis, Keys(harness.settings.redis_prefix))
    await redis.aclose()


def feedback_buttons(blocks: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The feedback_buttons element of a message's context_actions block."""
    [block] = [b for b in blocks or [] if b["type"] == "context_actions"]
    [element] = block["elements"]
    assert element["type"] == "feedback_buttons"
    return dict(element)


def turn_of(element: dict[str, Any]) -> str:
    up, down = element["positive_button"]["value"], element["negative_button"]["value"]
    assert up.startswith("up:turn_") and down == "down:" + up.removeprefix("up:")
    return str(up.removeprefix("up:"))


async def answer(harness: Harness, question: str, count: int = 1) -> list[Message]:
    _, _, root = await harness.events.mention(CHANNEL, USER, f"<@UBOT> {question}")
    replies = await harness.wait_for_bot_replies(CHANNEL, root, count)
    await harness.wait_idle()
    return replies


async def test_every_message_of_an_answer_carries_feedback_buttons(harness: Harness) -> None:
    replies = await answer(harness, "[long:5000] Tell me about Rome", count=2)
    assert len(replies) == 2, "a long answer in two messages"
    turns = {turn_of(feedback_buttons(reply.blocks)) for reply in replies}
    assert len(turns) == 1, "both name the turn they answer"

    harness.slack.channels_without_bot.add("C_CLOSED")  # answered through the response_url
    await harness.events.slash_command(
        "/tutor", "Who built Petra?", channel_id="C_CLOSED", user_id=USER,
        response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    await harness.wait_idle()
    posts = harness.slack.response_url_posts
    [shown] = [p for p in posts if p.get("response_type") == "in_channel"]
    assert "Who built Petra?" in shown["text"]
    turn_of(feedback_buttons(shown["blocks"]))


async def test_a_natively_streamed_answer_ends_with_feedback_buttons(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> None:
    async with running_harness(
        redis_server.url, redis_prefix, backend, streaming=StreamingMode.NATIVE
    ) as harness:
        root = await harness.mention_streamed(CHANNEL, USER, "<@UBOT> [long:1500] About Rome")
        [reply] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
        await harness.wait_idle()
        [stop] = harness.slack.calls_to("chat.stopStream")
        assert reply.streamed and reply.ts == stop.args["ts"]
        assert turn_of(feedback_buttons(stop.args["blocks"])) == turn_of(
            feedback_buttons(reply.blocks)
        )


async def test_a_click_is_stored_for_its_turn_and_the_last_click_wins(
    harness: Harness, store: FeedbackStore
) -> None:
    [reply] = await answer(harness, "Who was Hannibal")
    buttons = feedback_buttons(reply.blocks)
    turn_id = turn_of(buttons)
    for positive in (True, False, True):
        status, _ = await harness.events.feedback_click(
            buttons, positive=positive, channel=CHANNEL, message_ts=reply.ts, user_id=USER,
            response_url=harness.slack.new_response_url(),
        )  # fmt: skip
        assert status == 200
    stored = await store.of_turn(turn_id)
    assert stored["rating"] == "up" and stored["user"] == USER and stored["channel"] == CHANNEL
    assert await store.counts("T1") == {CHANNEL: {Rating.UP: 1, Rating.DOWN: 0}}, "one answer"


async def test_a_thumbs_down_asks_what_was_wrong_and_keeps_the_comment(
    harness: Harness, store: FeedbackStore
) -> None:
    [reply] = await answer(harness, "When did Carthage fall")
    buttons = feedback_buttons(reply.blocks)
    turn_id = turn_of(buttons)
    await harness.events.feedback_click(
        buttons, positive=False, channel=CHANNEL, message_ts=reply.ts, user_id=USER,
        response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    await harness.slack.wait_for(lambda: bool(harness.slack.response_url_posts))
    [question] = harness.slack.response_url_posts
    assert question["response_type"] == "ephemeral" and not question.get("replace_original")
    [input_block] = [b for b in question["blocks"] if b["type"] == "input"]
    assert input_block["dispatch_action"] and input_block["optional"]
    assert input_block["element"]["type"] == "plain_text_input"

    await harness.events.input_entered(
        input_block, "The year is wrong", channel=CHANNEL, message_ts="1800000000.999999",
        user_id=USER, response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    await harness.slack.wait_for(lambda: len(harness.slack.response_url_posts) == 2)
    thanks = harness.slack.response_url_posts[1]
    assert thanks["replace_original"] and "Thanks" in thanks["text"], "the question gives way"
    stored = await store.of_turn(turn_id)
    assert stored["rating"] == "down" and stored["comment"] == "The year is wrong"
    [latest] = await store.latest_comments("T1", CHANNEL)
    assert latest["comment"] == "The year is wrong" and latest["turn"] == turn_id
