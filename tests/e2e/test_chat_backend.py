"""The `chat` backend from outside: a failed turn does not poison its thread, and a turn
handed back at shutdown is asked again by the next process."""

from __future__ import annotations

import pytest

from bot.backends.chat_history import ChatHistoryStore, ChatMessage
from bot.settings import BackendKind
from bot.storage.connection import connect
from bot.storage.keys import Keys
from tests.conftest import until
from tests.e2e.conftest import Harness, start_bot

pytestmark = pytest.mark.parametrize("backend", [BackendKind.CHAT], ids=["chat"])
CHANNEL = "C900"
USER = "U900"
COMPLETIONS = r"/chat/completions$"


def sent_roles(harness: Harness) -> list[list[str]]:
    """The roles of every chat completion the model server was asked for, in order."""
    return [
        [m["role"] for m in (r.json or {})["messages"]]
        for r in harness.openai.requests
        if r.path.endswith("/chat/completions")
    ]


def alternates(roles: list[str]) -> bool:
    rest = roles[1:] if roles[:1] == ["system"] else roles
    return rest == ["user", "assistant"] * (len(rest) // 2) + ["user"]


async def stored_history(harness: Harness, root: str) -> list[ChatMessage]:
    keys = Keys(harness.settings.redis_prefix)
    redis = connect(harness.settings.redis_url or "")
    try:
        conversation = await redis.get(keys.conversation("chat", f"T1:{CHANNEL}:{root}"))
        assert conversation, "the thread has a conversation"
        return await ChatHistoryStore(redis, keys).read(conversation)
    finally:
        await redis.aclose()


async def stop_with_the_button(harness: Harness, root: str) -> None:
    await harness.slack.wait_for(lambda: len(harness.bot_texts(CHANNEL, root)) == 2)
    placeholder = [m for m in harness.slack.thread(CHANNEL, root) if m.bot_id][1]
    button = placeholder.blocks[-1]["elements"][0]  # type: ignore[index]
    await harness.events.click(channel=CHANNEL, message_ts=placeholder.ts, user_id=USER,
                               action_id=button["action_id"], value=button["value"],
                               response_url=harness.slack.new_response_url())  # fmt: skip


@pytest.mark.parametrize(
    "failure,question,told",
    [
        ("server errors", "[fail] What did he write?", "internal error"),
        ("timeout", "[slow:30] What did he write?", "took longer than"),
        ("stop", "[slow:30] What did he write?", "stopped"),
    ],
)
async def test_after_a_failed_turn_the_thread_still_alternates_and_is_answered(
    harness: Harness, failure: str, question: str, told: str
) -> None:
    """A server whose chat template needs user/assistant alternation (Mistral, Gemma)."""
    if failure == "timeout":
        await harness.restart(run_timeout=1.0)
    harness.openai.require_alternation = True
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> Who was Solon?")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.events.mention(CHANNEL, USER, f"<@UBOT> {question}", thread_ts=root)
    if failure == "stop":
        await stop_with_the_button(harness, root)
    await harness.wait_for_bot_replies(CHANNEL, root, 2)
    assert told in harness.bot_texts(CHANNEL, root)[1]

    await harness.events.mention(CHANNEL, USER, "<@UBOT> And his laws?", thread_ts=root)
    await harness.wait_for_bot_replies(CHANNEL, root, 3)
    assert harness.bot_texts(CHANNEL, root)[2] == "Answer 2: And his laws?"
    roles = sent_roles(harness)
    assert all(alternates(r) for r in roles), roles
    assert roles[-1] == ["system", "user", "assistant", "user"]
    stored = [m.role for m in await stored_history(harness, root)]
    assert stored == ["user", "assistant", "user", "user", "assistant"], "nothing is lost"


async def test_a_turn_handed_back_at_shutdown_is_asked_again_by_the_next_process(
    harness: Harness,
) -> None:
    held = harness.openai.hold("POST", COMPLETIONS)
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> Who was Pericles?")
    await until(lambda: harness.openai.count("POST", COMPLETIONS) == 1)
    await harness.bot.stop(grace_seconds=0.1)
    await harness.events.close()
    [placeholder] = [m for m in harness.slack.thread(CHANNEL, root) if m.bot_id]
    assert "thinking" in harness.slack.visible_text(CHANNEL, placeholder.ts).lower()

    harness.bot, harness.events, harness.base_url = await start_bot(harness.settings)
    await until(lambda: harness.openai.count("POST", COMPLETIONS) == 2)
    held.set()
    text = await harness.wait_for_text(CHANNEL, placeholder.ts, lambda t: "Thinking" not in t)
    assert text == "Answer 1: Who was Pericles?"
    await harness.wait_idle()
    assert harness.bot_texts(CHANNEL, root) == [text], "answered once, in the same placeholder"
    assert [m.role for m in await stored_history(harness, root)] == ["user", "assistant"]
