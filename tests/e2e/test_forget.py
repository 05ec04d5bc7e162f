"""Forgetting conversations: `/tutor forget` in a DM and the *Forget this conversation*
shortcut leave nothing of a conversation in Redis or at the model server."""

from __future__ import annotations

import pytest

from bot.settings import BackendKind
from bot.slack.conversation_keys import TOP_LEVEL, thread_key
from bot.slack.listeners.forget import FORGET_SHORTCUT
from bot.storage.connection import connect
from bot.storage.keys import Keys
from tests.e2e.conftest import Harness
from tests.e2e.leftovers import (
    QUESTION,
    assert_forgotten,
    dm_answers,
    remembered,
    stand_in_holdings,
)

CHANNEL = "C800"
USER = "U800"


async def forget_dm(harness: Harness, dm: str, user: str = USER) -> str:
    status, body = await harness.events.slash_command(
        "/tutor", "forget", channel_id=dm, user_id=user,
        response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    assert status == 200
    return body


async def test_tutor_forget_deletes_the_dm_conversation_everywhere(harness: Harness) -> None:
    dm = "D800"
    await harness.events.dm(dm, USER, QUESTION)
    await harness.slack.wait_for(lambda: len(dm_answers(harness, dm)) == 1)
    await harness.events.dm(dm, USER, "And how did her revolt end?")
    await harness.slack.wait_for(lambda: len(dm_answers(harness, dm)) == 2)
    await harness.wait_idle()
    conversation = await remembered(harness, thread_key("T1", dm, TOP_LEVEL))
    if harness.settings.backend is not BackendKind.CHAT:
        assert QUESTION in stand_in_holdings(harness.openai)

    assert "Done" in await forget_dm(harness, dm)
    await assert_forgotten(harness, conversation)
    if harness.settings.backend is BackendKind.RESPONSES:
        assert harness.openai.count("DELETE", r"/responses/resp_[^/]+$") == 2

    await harness.events.dm(dm, USER, "Who was Odaenathus?")
    await harness.slack.wait_for(lambda: len(dm_answers(harness, dm)) == 3)
    assert dm_answers(harness, dm)[2] == "Answer 1: Who was Odaenathus?", "a fresh conversation"
    assert "nothing for me to forget" in await forget_dm(harness, "D801")
    assert "direct messages" in await forget_dm(harness, CHANNEL)


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_a_conversation_still_answering_is_forgotten_once_the_answer_is_in(
    harness: Harness,
) -> None:
    dm = "D802"
    await harness.events.dm(dm, USER, f"[slow:1] {QUESTION}")
    await harness.openai.wait_for(lambda: harness.openai.count("POST", r"/responses$") == 1)
    assert "still answering" in await forget_dm(harness, dm)
    await harness.slack.wait_for(lambda: dm_answers(harness, dm) == [f"Answer 1: {QUESTION}"])
    await harness.wait_idle()
    conversation = await remembered(harness, thread_key("T1", dm, TOP_LEVEL))
    assert "Done" in await forget_dm(harness, dm)
    await assert_forgotten(harness, conversation)


@pytest.mark.parametrize(
    "backend", [BackendKind.RESPONSES, BackendKind.CHAT], ids=["responses", "chat"]
)
async def test_the_shortcut_forgets_a_thread_for_those_who_asked_in_it(harness: Harness) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, f"<@UBOT> {QUESTION}")
    [answer] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.wait_idle()
    conversation = await remembered(harness, thread_key("T1", CHANNEL, root))
    posts = harness.slack.response_url_posts

    # `/tutor forget` typed in the thread arrives as a message: a hint, nothing asked.
    await harness.events.channel_message(CHANNEL, USER, "/tutor forget", thread_ts=root)
    await harness.slack.wait_for(lambda: bool(harness.slack.calls_to("chat.postEphemeral")))
    [hint] = harness.slack.calls_to("chat.postEphemeral")
    assert "*Forget this conversation*" in hint.args["text"]
    await harness.wait_idle()
    assert len(await harness.wait_for_bot_replies(CHANNEL, root, 1)) == 1

    status, _ = await harness.events.message_shortcut(
        FORGET_SHORTCUT, channel=CHANNEL, message_ts=answer.ts, thread_ts=root,
        user_id="U_OTHER", response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    assert status == 200
    await harness.slack.wait_for(lambda: len(posts) == 1)
    assert "Only the people who asked" in posts[0]["text"]
    assert posts[0]["response_type"] == "ephemeral"
    assert await remembered(harness, conversation.key) == conversation, "nothing was deleted"

    await harness.events.message_shortcut(
        FORGET_SHORTCUT, channel=CHANNEL, message_ts=root, thread_ts=root, user_id=USER,
        response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    await harness.slack.wait_for(lambda: len(posts) == 2)
    assert "Done" in posts[1]["text"] and posts[1]["response_type"] == "ephemeral"
    await assert_forgotten(harness, conversation)

    await harness.events.mention(CHANNEL, USER, "<@UBOT> Where did she rule?", thread_ts=root)
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 2)
    assert harness.slack.visible_text(CHANNEL, replies[1].ts) == "Answer 1: Where did she rule?"


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_the_shortcut_forgets_a_tutor_command_thread_with_its_alias(
    harness: Harness,
) -> None:
    await harness.events.slash_command(
        "/tutor", QUESTION, channel_id=CHANNEL, user_id=USER,
        response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    await harness.slack.wait_for(lambda: bool(harness.slack.channel_top_level(CHANNEL)))
    root = harness.slack.channel_top_level(CHANNEL)[0]
    await harness.wait_for_text(CHANNEL, root.ts, lambda t: "Answer 1" in t)
    await harness.wait_idle()
    keys = Keys(harness.settings.redis_prefix)
    alias = keys.command_thread(thread_key("T1", CHANNEL, root.ts))
    redis = connect(harness.settings.redis_url or "")
    key = await redis.get(alias)
    assert key
    conversation = await remembered(harness, key)

    await harness.events.message_shortcut(
        FORGET_SHORTCUT, channel=CHANNEL, message_ts=root.ts, user_id=USER,
        response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    await harness.slack.wait_for(lambda: bool(harness.slack.response_url_posts))
    assert "Done" in harness.slack.response_url_posts[-1]["text"]
    assert not await redis.exists(alias)
    await redis.aclose()
    await assert_forgotten(harness, conversation)
