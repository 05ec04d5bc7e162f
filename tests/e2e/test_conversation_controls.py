"""Thread follow-ups without a mention, and starting over with /tutor new."""

from __future__ import annotations

import pytest

from bot.settings import BackendKind
from bot.slack.conversation_keys import TOP_LEVEL, thread_key
from bot.storage.connection import connect
from bot.storage.keys import Keys
from tests.e2e.conftest import Harness

pytestmark = pytest.mark.parametrize(
    "backend", [BackendKind.RESPONSES, BackendKind.CHAT], ids=["responses", "chat"]
)
CHANNEL = "C700"
USER = "U700"


async def test_replies_in_a_thread_the_bot_answered_need_no_mention(harness: Harness) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> Who was Boudica?")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.events.channel_message(CHANNEL, USER, "Why did she revolt?", thread_ts=root)
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 2)
    assert harness.slack.visible_text(CHANNEL, replies[1].ts) == "Answer 2: Why did she revolt?"


async def test_other_threads_and_top_level_messages_are_left_alone(harness: Harness) -> None:
    _, _, stranger_root = await harness.events.channel_message(CHANNEL, USER, "Lunch?")
    await harness.events.channel_message(CHANNEL, "U2", "Sure", thread_ts=stranger_root)
    await harness.wait_idle()
    assert harness.slack.calls_to("chat.postMessage") == []


async def test_a_mentioned_follow_up_is_answered_once(harness: Harness) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> Who was Alaric?")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    ts = harness.events.next_ts()
    text = "<@UBOT> What did he take?"
    await harness.events.channel_message(CHANNEL, USER, text, ts=ts, thread_ts=root)
    await harness.events.mention(CHANNEL, USER, text, ts=ts, thread_ts=root)
    await harness.wait_for_bot_replies(CHANNEL, root, 2)
    await harness.wait_idle()
    texts = [harness.slack.visible_text(CHANNEL, m.ts) for m in harness.slack.thread(CHANNEL, root)]
    assert texts == ["Answer 1: Who was Alaric?", "Answer 2: What did he take?"]


async def test_tutor_new_starts_a_fresh_dm_conversation(harness: Harness) -> None:
    dm = "D700"
    await harness.events.dm(dm, USER, "First")
    await harness.slack.wait_for(lambda: _dm_answers(harness, dm) == ["Answer 1: First"])
    await harness.wait_idle()
    backend = harness.settings.backend.value
    keys = Keys(harness.settings.redis_prefix)
    redis = connect(harness.settings.redis_url or "")
    old = await redis.get(keys.conversation(backend, thread_key("T1", dm, TOP_LEVEL)))
    assert old
    status, body = await harness.events.slash_command(
        "/tutor", "new", channel_id=dm, user_id=USER, response_url=harness.slack.new_response_url()
    )
    assert status == 200 and "fresh conversation" in body
    await harness.bot.background.drain(5)
    if harness.settings.backend is BackendKind.CHAT:  # the history lived in Redis only
        assert not await redis.exists(keys.chat_history(old))
    else:
        assert harness.openai.count("DELETE", rf"/conversations/{old}$") == 1
    await redis.aclose()
    await harness.events.dm(dm, USER, "Second")
    await harness.slack.wait_for(lambda: len(_dm_answers(harness, dm)) == 2)
    assert _dm_answers(harness, dm)[1] == "Answer 1: Second", "the earlier history is gone"

    status, body = await harness.events.slash_command(
        "/tutor", "new", channel_id=CHANNEL, user_id=USER, response_url="http://unused"
    )
    assert "Nothing to reset" in body


def _dm_answers(harness: Harness, channel: str) -> list[str]:
    texts = [
        harness.slack.visible_text(channel, m.ts) for m in harness.slack.channel_top_level(channel)
    ]
    return [t for t in texts if "Thinking" not in t]


async def test_the_stop_button_stops_the_run_for_the_asker_only(harness: Harness) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> [slow:5] Tell me all")
    await harness.slack.wait_for(lambda: len(harness.slack.thread(CHANNEL, root)) == 1)
    [placeholder] = harness.slack.thread(CHANNEL, root)
    button = placeholder.blocks[-1]["elements"][0]  # type: ignore[index]
    assert button["text"]["text"] == "Stop"

    response_url = harness.slack.new_response_url()
    await harness.events.click(channel=CHANNEL, message_ts=placeholder.ts, user_id="U_OTHER",
                               action_id=button["action_id"], value=button["value"],
                               response_url=response_url)  # fmt: skip
    await harness.slack.wait_for(lambda: bool(harness.slack.response_url_posts))
    assert "Only <@U700> can stop" in harness.slack.response_url_posts[0]["text"]

    status, _ = await harness.events.click(
        channel=CHANNEL, message_ts=placeholder.ts, user_id=USER,
        action_id=button["action_id"], value=button["value"], response_url=response_url,
    )  # fmt: skip
    assert status == 200
    text = await harness.wait_for_text(CHANNEL, placeholder.ts, lambda t: "Thinking" not in t)
    assert "stopped" in text
    assert not harness.slack.messages[(CHANNEL, placeholder.ts)].blocks, "the button is gone"
    if harness.settings.backend is BackendKind.RESPONSES:
        assert harness.openai.count("POST", r"/responses/[^/]+/cancel$") == 1


async def test_an_empty_mention_gets_a_kind_hint_only_its_author_sees(harness: Harness) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT>", event_id="EvEmpty")
    await harness.events.mention(CHANNEL, USER, "<@UBOT>", event_id="EvEmpty", ts=root, retry_num=1)
    await harness.slack.wait_for(lambda: bool(harness.slack.calls_to("chat.postEphemeral")))
    await harness.wait_idle()
    [hint] = harness.slack.calls_to("chat.postEphemeral")
    assert hint.args["user"] == USER and hint.args["thread_ts"] == root
    assert "Ask me a question" in hint.args["text"]
    assert harness.slack.calls_to("chat.postMessage") == [], "nothing for everyone to see"


async def test_a_slash_command_sent_as_a_thread_message_is_answered_with_a_hint(
    harness: Harness,
) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> Who was Boudica?")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.events.channel_message(
        CHANNEL, USER, "/tutor where did she fight?", thread_ts=root
    )
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 2)
    assert harness.slack.visible_text(CHANNEL, replies[1].ts) == "Answer 2: where did she fight?"
    [hint] = harness.slack.calls_to("chat.postEphemeral")
    assert hint.args["user"] == USER and "threads" in hint.args["text"]
