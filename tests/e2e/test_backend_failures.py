"""Each backend's own ways to fail, and what the user sees."""

from __future__ import annotations

import openai
import pytest

from bot.settings import BackendKind
from bot.storage.connection import connect
from bot.storage.keys import Keys
from tests.e2e.conftest import CREATE_PATH, Harness

CHANNEL = "C200"
USER = "U200"


async def ask(harness: Harness, text: str, thread_ts: str | None = None) -> str:
    _, _, ts = await harness.events.mention(CHANNEL, USER, f"<@UBOT> {text}", thread_ts=thread_ts)
    return thread_ts or ts


async def test_a_passing_server_error_is_retried_unseen(harness: Harness) -> None:
    harness.openai.fail_next("POST", CREATE_PATH[harness.settings.backend], 500, count=1)
    root = await ask(harness, "Who was Cyrus?")
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    assert harness.slack.visible_text(CHANNEL, replies[0].ts) == "Answer 1: Who was Cyrus?"


async def test_a_lasting_server_error_is_explained(harness: Harness) -> None:
    harness.openai.fail_next("POST", CREATE_PATH[harness.settings.backend], 500, count=20)
    root = await ask(harness, "Who was Darius?")
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    text = harness.slack.visible_text(CHANNEL, replies[0].ts)
    assert "internal error" in text and "Sorry" in text


async def test_rate_limits_are_retried_honouring_retry_after(harness: Harness) -> None:
    harness.openai.fail_next(
        "POST", CREATE_PATH[harness.settings.backend], 429, count=2, retry_after=0.1
    )
    root = await ask(harness, "Who was Xerxes?")
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    assert harness.slack.visible_text(CHANNEL, replies[0].ts) == "Answer 1: Who was Xerxes?"


async def test_slack_rate_limits_on_edits_do_not_lose_the_answer(harness: Harness) -> None:
    harness.slack.rate_limit("chat.update", count=2, retry_after=1)
    root = await ask(harness, "Who was Nebuchadnezzar?")
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 1, timeout=15)
    assert harness.slack.visible_text(CHANNEL, replies[0].ts) == (
        "Answer 1: Who was Nebuchadnezzar?"
    )


@pytest.mark.parametrize(
    "backend", [BackendKind.ASSISTANTS, BackendKind.RESPONSES], ids=["assistants", "responses"]
)
async def test_a_conversation_busy_elsewhere_is_waited_for(harness: Harness) -> None:
    """Another run on the same server conversation (e.g. a second bot) holds it for a while."""
    root = await ask(harness, "Who was Sargon?")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    conversation_id = await _backend_conversation(harness, root)
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=harness.openai.base_url)
    if harness.settings.backend is BackendKind.RESPONSES:
        await client.responses.create(
            model="m", conversation=conversation_id, input="[slow:0.6] elsewhere",
            background=True, store=True,
        )  # fmt: skip
    else:
        await client.beta.threads.messages.create(
            conversation_id, role="user", content="[slow:0.6] x"
        )
        assistant = next(iter(harness.openai.assistants))
        await client.beta.threads.runs.create(conversation_id, assistant_id=assistant)
    await client.close()

    await ask(harness, "And his empire?", thread_ts=root)
    await harness.wait_for_bot_replies(CHANNEL, root, 2)
    assert harness.bot_texts(CHANNEL, root)[1] == "Answer 3: And his empire?"
    rejected = [r for r in harness.openai.requests if r.method == "POST"]
    assert len(rejected) >= 1
    await harness.wait_idle()


async def _backend_conversation(harness: Harness, root: str) -> str:
    redis = connect(harness.settings.redis_url or "")
    try:
        key = Keys(harness.settings.redis_prefix).conversation(
            harness.settings.backend.value, f"T1:{CHANNEL}:{root}"
        )
        value = await redis.get(key)
    finally:
        await redis.aclose()
    assert value, "the conversation map has the thread"
    return str(value)


@pytest.mark.parametrize("backend", [BackendKind.CHAT], ids=["chat"])
async def test_chat_stream_cut_off_midway_is_explained_and_not_remembered(
    harness: Harness,
) -> None:
    root = await ask(harness, "[cut] Who was Ramesses?")
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    text = harness.slack.visible_text(CHANNEL, replies[0].ts)
    assert "connection to the model was lost" in text
    await ask(harness, "Try again please", thread_ts=root)
    await harness.wait_for_bot_replies(CHANNEL, root, 2)
    assert harness.bot_texts(CHANNEL, root)[1] == "Answer 1: Try again please"
    sent = harness.openai.requests[-1].json or {}
    roles = [m["role"] for m in sent["messages"]]
    assert roles == ["system", "user"], "neither the cut-off answer nor its question was sent"


@pytest.mark.parametrize("backend", [BackendKind.CHAT], ids=["chat"])
async def test_chat_sends_only_the_safe_subset_and_no_history_leaves_redis(
    harness: Harness,
) -> None:
    root = await ask(harness, "Who was Hatshepsut?")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    request = next(r for r in harness.openai.requests if r.path.endswith("/chat/completions"))
    safe = {"model", "messages", "stream", "max_tokens"}
    assert set(request.json or {}) <= safe | {"stream_options"}  # dropped where refused
    assert not any(
        "conversations" in r.path or "threads" in r.path for r in harness.openai.requests
    )


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_responses_requests_are_background_stored_and_compacted(harness: Harness) -> None:
    root = await ask(harness, "Who was Cleopatra?")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    create = next(
        r for r in harness.openai.requests if r.method == "POST" and r.path.endswith("/responses")
    )
    body = create.json or {}
    assert body["background"] is True and body["store"] is True
    threshold = harness.settings.context_tokens
    assert body["context_management"] == [{"type": "compaction", "compact_threshold": threshold}]
    assert body["prompt_cache_key"].startswith("tutor-")
    assert body["conversation"].startswith("conv_")
    assert body["metadata"]["turn_id"].startswith("turn_")


async def test_usage_is_counted_per_workspace_and_day(harness: Harness) -> None:
    import datetime

    from bot.tutor.ledger import UsageLedger

    root = await ask(harness, "Who was Hannibal?")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.wait_idle()
    redis = connect(harness.settings.redis_url or "")
    try:
        ledger = UsageLedger(redis, Keys(harness.settings.redis_prefix))
        today = datetime.datetime.now(datetime.UTC).date().isoformat()
        totals = await ledger.period(today, "T1")
    finally:
        await redis.aclose()
    assert totals.turns == 1
    if harness.settings.backend is not BackendKind.CHAT:  # chat servers may not report usage
        assert totals.input_tokens > 0 and totals.output_tokens > 0
