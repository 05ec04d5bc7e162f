"""The chat backend's history: stored in Redis, trimmed to a token budget, no duplicates."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.backends.chat_history import (
    ChatHistoryStore,
    ChatMessage,
    estimate_tokens,
    fit_to_budget,
)
from bot.storage.keys import Keys


def message(role: str, size: int) -> ChatMessage:
    return ChatMessage(role, "x" * size)


def test_everything_fits_a_large_budget() -> None:
    history = [message("user", 40), message("assistant", 40), message("user", 40)]
    assert fit_to_budget("be brief", history, 10_000) == history


def test_oldest_messages_are_dropped_first() -> None:
    history = [message("user", 400), message("assistant", 400), message("user", 40)]
    budget = estimate_tokens("i") + estimate_tokens("x" * 400) + estimate_tokens("x" * 40)
    kept = fit_to_budget("i", history, budget)
    assert kept == [history[2]], "a history never starts with an assistant message"


def test_the_newest_message_is_kept_even_when_it_alone_is_too_big() -> None:
    history = [message("user", 10), message("assistant", 10), message("user", 100_000)]
    assert fit_to_budget("i", history, 100) == [history[2]]


async def test_history_round_trips_and_ignores_a_repeated_append(redis: Redis, keys: Keys) -> None:
    store = ChatHistoryStore(redis, keys)
    first = await store.append("h1", ChatMessage("user", "Who?", "turn-1"))
    again = await store.append("h1", ChatMessage("user", "Who?", "turn-1"))
    answer = await store.append("h1", ChatMessage("assistant", "Her.", "turn-1"))
    assert (first, again, answer) == (0, 0, 1)
    assert [m.content for m in await store.read("h1")] == ["Who?", "Her."]
    assert await store.read("other") == []
