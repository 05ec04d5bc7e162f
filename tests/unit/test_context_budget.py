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
from bot.backends.responses import ResponsesBackend
from bot.local.openai_api import OpenAIStandIn
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
