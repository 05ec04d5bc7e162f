"""The chat backend's runs: resumed after their process died, answered once, always ended.

Each `ChatBackend` below stands for one process; they share Redis and the OpenAI stand-in,
which holds completions in flight while a test kills, stops or resumes a run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest
from redis.asyncio import Redis

from bot.backends.base import RunState, RunStatus, UserMessage
from bot.backends.chat import STORAGE_UNREACHABLE, ChatBackend
from bot.backends.chat_history import ChatHistoryStore, ChatMessage
from bot.local.openai_api import OpenAIStandIn
from bot.settings import TokenLimitField
from bot.storage.connection import connect
from bot.storage.keys import Keys
from tests.conftest import RedisServer, until

COMPLETIONS = r"/chat/completions$"
QUESTION = UserMessage("Who was Solon?", "turn-1")
ANSWER = "Answer 1: Who was Solon?"


class Processes:
    """Makes backends ("processes") on one Redis and closes them all at the end."""

    def __init__(self, stand_in: OpenAIStandIn, keys: Keys) -> None:
        self._stand_in = stand_in
        self._keys = keys
        self._made: list[ChatBackend] = []

    def start(self, redis: Redis) -> ChatBackend:
        client = openai.AsyncOpenAI(api_key="k", base_url=self._stand_in.base_url, max_retries=0)
        backend = ChatBackend(
            client, redis, self._keys, model="m", instructions="Teach.", max_output_tokens=100,
            token_budget=6000, token_field=TokenLimitField.MAX_TOKENS,
        )  # fmt: skip
        self._made.append(backend)
        return backend

    async def close(self) -> None:
        for backend in self._made:
            await backend.close()


@pytest.fixture
async def processes(stand_in: OpenAIStandIn, keys: Keys) -> AsyncIterator[Processes]:
    made = Processes(stand_in, keys)
    yield made
    await made.close()


async def final_state(backend: ChatBackend, conversation: str, run_id: str) -> RunState:
    deadline = time.monotonic() + 10
    while not (state := await backend.run_state(conversation, run_id)).status.is_final:
        assert time.monotonic() < deadline, f"still {state.status}"
        await asyncio.sleep(0.01)
    return state


async def ask(backend: ChatBackend) -> tuple[str, str]:
    conversation = await backend.create_conversation("k")
    await backend.add_message(conversation, QUESTION)
    return conversation, await backend.start_run(conversation, QUESTION)


async def history(redis: Redis, keys: Keys, conversation: str) -> list[ChatMessage]:
    return await ChatHistoryStore(redis, keys).read(conversation)


async def test_a_run_left_by_a_stopped_process_is_asked_again_by_the_next(
    processes: Processes, stand_in: OpenAIStandIn, redis: Redis, keys: Keys
) -> None:
    """SIGTERM: the process hands its turns back; the run must not end up "cancelled"."""
    held = stand_in.hold("POST", COMPLETIONS)
    first = processes.start(redis)
    conversation, run_id = await ask(first)
    await until(lambda: stand_in.count("POST", COMPLETIONS) == 1)
    await first.close()

    second = processes.start(redis)
    assert await second.find_run(conversation, QUESTION) == run_id, "the turn's run is followed"
    assert not (await second.run_state(conversation, run_id)).status.is_final
    await until(lambda: stand_in.count("POST", COMPLETIONS) == 2)
    held.set()
    state = await final_state(second, conversation, run_id)
    assert state.status is RunStatus.COMPLETED
    assert (await second.answer(conversation, run_id, "")).text == ANSWER
    assert [m.role for m in await history(redis, keys, conversation)] == ["user", "assistant"]


async def test_two_processes_answering_one_run_remember_one_answer(
    processes: Processes, stand_in: OpenAIStandIn, redis: Redis, keys: Keys
) -> None:
    """A process thought dead was only slow: both finish, the history gets one answer."""
    held = stand_in.hold("POST", COMPLETIONS)
    slow = processes.start(redis)
    conversation, run_id = await ask(slow)
    await until(lambda: stand_in.count("POST", COMPLETIONS) == 1)
    other = processes.start(redis)
    await other.run_state(conversation, run_id)  # resumes it: no task of its own
    await until(lambda: stand_in.count("POST", COMPLETIONS) == 2)
    held.set()
    await final_state(other, conversation, run_id)
    await asyncio.gather(*slow._tasks.values(), *other._tasks.values())
    stored = await history(redis, keys, conversation)
    assert [(m.role, m.content) for m in stored] == [("user", QUESTION.text), ("assistant", ANSWER)]
    assert (await slow.answer(conversation, run_id, "")).text == ANSWER


async def test_a_cancelled_run_is_not_remembered_even_if_another_process_finishes_it(
    processes: Processes, stand_in: OpenAIStandIn, redis: Redis, keys: Keys
) -> None:
    held = stand_in.hold("POST", COMPLETIONS)
    slow = processes.start(redis)
    conversation, run_id = await ask(slow)
    await until(lambda: stand_in.count("POST", COMPLETIONS) == 1)
    await processes.start(redis).cancel_run(conversation, run_id)  # Stop, handled elsewhere
    held.set()
    await asyncio.gather(*slow._tasks.values())
    assert (await slow.run_state(conversation, run_id)).status is RunStatus.CANCELLED
    assert [m.role for m in await history(redis, keys, conversation)] == ["user"]


async def test_a_run_stopped_as_it_starts_stops(
    processes: Processes, stand_in: OpenAIStandIn, redis: Redis, keys: Keys
) -> None:
    """The first cancel can be lost inside redis-py (Python 3.11's wait_for); Stop still stops."""
    backend = processes.start(redis)
    conversation = await backend.create_conversation("k")
    slow = UserMessage("[slow:5] Who was Draco?", "turn-2")
    await backend.add_message(conversation, slow)
    run_id = await backend.start_run(conversation, slow)
    await asyncio.sleep(0)  # the run has begun writing to Redis
    started = time.monotonic()
    await backend.cancel_run(conversation, run_id)
    assert time.monotonic() - started < 2, "the run went on to the end of its answer"
    assert (await backend.run_state(conversation, run_id)).status is RunStatus.CANCELLED
    assert [m.role for m in await history(redis, keys, conversation)] == ["user"]


async def test_a_history_reset_while_the_model_answers_is_not_brought_back(
    processes: Processes, stand_in: OpenAIStandIn, redis: Redis, keys: Keys
) -> None:
    """A history deleted while a run works on it (forgetting waits for turns to end, but
    one whose process was only thought dead goes on): the answer is shown, the forgotten
    history stays gone."""
    held = stand_in.hold("POST", COMPLETIONS)
    backend = processes.start(redis)
    conversation, run_id = await ask(backend)
    await until(lambda: stand_in.count("POST", COMPLETIONS) == 1)
    await backend.delete_conversation(conversation, [])
    held.set()
    assert (await final_state(backend, conversation, run_id)).status is RunStatus.COMPLETED
    assert (await backend.answer(conversation, run_id, "")).text == ANSWER
    assert not await redis.exists(keys.chat_history(conversation))


async def test_an_answer_that_cannot_be_recorded_ends_the_run_as_failed(
    processes: Processes,
    stand_in: OpenAIStandIn,
    keys: Keys,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis gone for longer than the client's retries: the run fails, it does not hang."""
    server = RedisServer(tmp_path)
    server.start()
    redis = connect(server.url)
    try:
        held = stand_in.hold("POST", COMPLETIONS)
        backend = processes.start(redis)
        conversation, run_id = await ask(backend)
        await until(lambda: stand_in.count("POST", COMPLETIONS) == 1)
        server.stop()
        held.set()
        with caplog.at_level(logging.ERROR, logger="bot.backends.chat"):
            await asyncio.gather(*backend._tasks.values())
        state = await backend.run_state(conversation, run_id)
    finally:
        server.stop()
        await redis.aclose()
    assert state == RunState(RunStatus.FAILED, error=STORAGE_UNREACHABLE)
    assert any(run_id in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


async def test_a_run_asked_again_by_the_next_process_keeps_its_turns_instructions(
    processes: Processes, stand_in: OpenAIStandIn, redis: Redis, keys: Keys
) -> None:
    """A course's instructions travel with the run: the resumed completion sends the same."""
    question = UserMessage("Why do things fall?", "turn-2", "Physics tutor.", "Guide.")
    held = stand_in.hold("POST", COMPLETIONS)
    first = processes.start(redis)
    conversation = await first.create_conversation("k")
    await first.add_message(conversation, question)
    run_id = await first.start_run(conversation, question)
    await until(lambda: stand_in.count("POST", COMPLETIONS) == 1)
    await first.close()

    second = processes.start(redis)
    await second.run_state(conversation, run_id)
    await until(lambda: stand_in.count("POST", COMPLETIONS) == 2)
    held.set()
    assert (await final_state(second, conversation, run_id)).status is RunStatus.COMPLETED
    sent = [r.json for r in stand_in.requests if r.path.endswith("/chat/completions")]
    systems = [body["messages"][0] for body in sent if isinstance(body, dict)]
    assert systems == [{"role": "system", "content": "Physics tutor.\n\nGuide."}] * 2
