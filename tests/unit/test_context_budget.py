"""The context budget (TUTOR_CONTEXT_TOKENS) on each backend: what each sends the model server,
and how each falls back where a server refuses a parameter. The backends are driven directly
against the OpenAI stand-in, which records every request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from redis.asyncio import Redis

from bot.backends.assistants import AssistantsBackend
from bot.backends.base import Backend, RunState, UserMessage
from bot.backends.chat import ChatBackend
from bot.backends.chat_history import estimate_tokens
from bot.backends.responses import ResponsesBackend
from bot.local.openai_api import OpenAIStandIn
from bot.settings import TokenLimitField
from bot.storage.keys import Keys

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BUDGET = 2000
RESPONSES = r"/responses$"
RUNS = r"/threads/[^/]+/runs$"


@pytest.fixture
async def stand_in() -> AsyncIterator[OpenAIStandIn]:
    server = OpenAIStandIn(queued_seconds=0.0, in_progress_seconds=0.01)
    await server.start()
    yield server
    await server.stop()


def client_of(stand_in: OpenAIStandIn) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="k", base_url=stand_in.base_url, max_retries=0)


async def finished(backend: Backend, conversation: str, run_id: str) -> RunState:
    deadline = time.monotonic() + 5
    while not (state := await backend.run_state(conversation, run_id)).status.is_final:
        assert time.monotonic() < deadline, f"still {state.status}"
        await asyncio.sleep(0.01)
    return state


async def turn(backend: Backend, conversation: str, text: str, turn_id: str) -> RunState:
    message = UserMessage(text, turn_id)
    await backend.add_message(conversation, message)
    return await finished(backend, conversation, await backend.start_run(conversation, message))


def bodies(stand_in: OpenAIStandIn, path: str) -> list[dict[str, Any]]:
    return [r.json for r in stand_in.requests if r.method == "POST" and r.path.endswith(path)]


# -- responses -------------------------------------------------------------------------------


def responses_backend(stand_in: OpenAIStandIn, budget: int, stream: bool = False) -> Any:
    return ResponsesBackend(
        client_of(stand_in), model="m", instructions="Teach.", max_output_tokens=100,
        context_tokens=budget, stream=stream,
    )  # fmt: skip


async def test_responses_compact_past_the_budget_with_a_cache_key_per_conversation(
    stand_in: OpenAIStandIn,
) -> None:
    backend = responses_backend(stand_in, BUDGET)
    try:
        first, second = [await backend.create_conversation(f"k{n}") for n in (1, 2)]
        state = await turn(backend, first, "Who was Solon?", "t1")
        await turn(backend, first, "And Draco?", "t2")
        await turn(backend, second, "Who was Solon?", "t3")
    finally:
        await backend.close()
    sent = bodies(stand_in, "/responses")
    assert all(
        body["context_management"] == [{"type": "compaction", "compact_threshold": BUDGET}]
        and "truncation" not in body
        for body in sent
    )
    keys = [body["prompt_cache_key"] for body in sent]
    assert keys[0] == keys[1] != keys[2]  # stable per conversation, one per conversation
    assert not any(first in key or second in key for key in keys)  # a hash, not the id
    assert state.usage is not None and state.usage.input_tokens > 0


async def test_responses_without_a_budget_truncate_at_the_window_only(
    stand_in: OpenAIStandIn,
) -> None:
    backend = responses_backend(stand_in, 0)
    try:
        conversation = await backend.create_conversation("k")
        await turn(backend, conversation, "Who was Solon?", "t1")
    finally:
        await backend.close()
    [body] = bodies(stand_in, "/responses")
    assert body["truncation"] == "auto" and "context_management" not in body


async def test_responses_fall_back_to_truncation_once_compaction_is_refused(
    stand_in: OpenAIStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    stand_in.accepts_compaction = False
    backend = responses_backend(stand_in, BUDGET, stream=True)
    try:
        conversation = await backend.create_conversation("k")
        with caplog.at_level(logging.WARNING, logger="bot.backends.responses"):
            first = await turn(backend, conversation, "Who was Solon?", "t1")
            second = await turn(backend, conversation, "And Draco?", "t2")
    finally:
        await backend.close()
    assert (first.status, second.status) == ("completed", "completed")
    sent = bodies(stand_in, "/responses")
    assert ["context_management" in body for body in sent] == [True, False, False]
    assert [body.get("truncation") for body in sent] == [None, "auto", "auto"]
    assert all(body["stream"] is True for body in sent)  # streaming itself was not refused
    said = [r.message for r in caplog.records if "context_management" in r.message]
    assert len(said) == 1  # said once, not per turn
    assert len(stand_in.conversation_items(conversation)) == 4  # each question asked once


# -- assistants ------------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [BUDGET, 0])
async def test_assistants_runs_truncate_to_the_budget(
    stand_in: OpenAIStandIn, redis: Redis, keys: Keys, budget: int
) -> None:
    backend = AssistantsBackend(
        client_of(stand_in), redis, keys, assistant_id=None, assistant_name="T", model="m",
        instructions="Teach.", max_output_tokens=100, context_tokens=budget,
    )  # fmt: skip
    try:
        conversation = await backend.create_conversation("k")
        state = await turn(backend, conversation, "Who was Solon?", "t1")
    finally:
        await backend.close()
    [body] = [r.json for r in stand_in.requests if r.method == "POST" and r.path.endswith("/runs")]
    assert body["truncation_strategy"] == {"type": "auto"}
    assert body.get("max_prompt_tokens") == (budget or None)
    assert state.usage is not None and state.usage.input_tokens > 0


# -- chat ------------------------------------------------------------------------------------

INSTRUCTIONS = "Teach. " * 640  # 4,480 characters: past the 1,024 tokens caching starts at


def chat_backend(stand_in: OpenAIStandIn, redis: Redis, keys: Keys, budget: int) -> ChatBackend:
    return ChatBackend(
        client_of(stand_in), redis, keys, model="m", instructions=INSTRUCTIONS,
        max_output_tokens=100, token_budget=budget, token_field=TokenLimitField.MAX_TOKENS,
    )  # fmt: skip


async def chat_turns(backend: ChatBackend, texts: list[str]) -> list[RunState]:
    conversation = await backend.create_conversation("k")
    try:
        return [await turn(backend, conversation, text, f"t{n}") for n, text in enumerate(texts)]
    finally:
        await backend.close()


async def test_chat_asks_for_usage_and_records_the_cached_prefix(
    stand_in: OpenAIStandIn, redis: Redis, keys: Keys
) -> None:
    backend = chat_backend(stand_in, redis, keys, BUDGET)
    first, second = await chat_turns(backend, ["Who was Solon?", "And Draco?"])
    sent = bodies(stand_in, "/chat/completions")
    assert all(body["stream_options"] == {"include_usage": True} for body in sent)
    assert [body["messages"][0] for body in sent] == [
        {"role": "system", "content": INSTRUCTIONS}
    ] * 2
    assert first.usage is not None and second.usage is not None
    assert not first.usage.estimated and first.usage.cached_tokens == 0
    assert second.usage.cached_tokens >= 1024  # the instructions and the first question


@pytest.mark.parametrize("refuses", [True, False], ids=["refuses-option", "reports-nothing"])
async def test_chat_estimates_usage_a_server_does_not_report(
    stand_in: OpenAIStandIn,
    redis: Redis,
    keys: Keys,
    refuses: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if refuses:
        stand_in.chat.accepts_stream_options = False
    else:
        stand_in.chat.reports_usage = False
    backend = chat_backend(stand_in, redis, keys, BUDGET)
    with caplog.at_level(logging.WARNING, logger="bot.backends.chat"):
        first, second = await chat_turns(backend, ["Who was Solon?", "And Draco?"])
    assert first.status == second.status == "completed"
    sent = bodies(stand_in, "/chat/completions")
    options = ["stream_options" in body for body in sent]
    assert options == ([True, False, False] if refuses else [True, True])
    said = [r for r in caplog.records if "stream_options" in r.getMessage()]
    assert len(said) == (1 if refuses else 0)
    assert first.usage is not None and first.usage.estimated
    # the estimate counts as the stand-in does: 4 a message, one per 4 characters
    asked = [INSTRUCTIONS, "Who was Solon?"]
    assert first.usage.input_tokens == sum(estimate_tokens(text) for text in asked)
    assert first.usage.output_tokens == len("Answer 1: Who was Solon?") // 4


@pytest.mark.parametrize("budget", [1000, 0])
async def test_chat_sends_the_history_that_fits_the_budget(
    stand_in: OpenAIStandIn, redis: Redis, keys: Keys, budget: int
) -> None:
    backend = ChatBackend(
        client_of(stand_in), redis, keys, model="m", instructions="Teach.",
        max_output_tokens=100, token_budget=budget, token_field=TokenLimitField.MAX_TOKENS,
    )  # fmt: skip
    await chat_turns(backend, [f"Question {n}: " + "x" * 400 for n in range(8)])
    last = bodies(stand_in, "/chat/completions")[-1]["messages"]
    assert last[0] == {"role": "system", "content": "Teach."}
    if budget:
        assert sum(estimate_tokens(m["content"]) for m in last) <= budget
        assert len(last) < 1 + 2 * 7 + 1
    else:
        assert len(last) == 1 + 2 * 7 + 1  # all of it
