"""The chat backend's history: stored in Redis, sent as a valid alternation, trimmed to a
token budget, no duplicates."""

from __future__ import annotations

import itertools

from redis.asyncio import Redis

from bot.backends.chat_history import (
    ChatHistoryStore,
    ChatMessage,
    alternating,
    answer_of,
    estimate_tokens,
    fit_to_budget,
    up_to_question,
)
from bot.storage.keys import Keys


def message(role: str, size: int) -> ChatMessage:
    return ChatMessage(role, "x" * size)


def question(turn: str) -> ChatMessage:
    return ChatMessage("user", f"question {turn}", turn)


def answer(turn: str) -> ChatMessage:
    return ChatMessage("assistant", f"answer {turn}", turn)


def roles(messages: list[ChatMessage]) -> list[str]:
    return [m.role for m in messages]


def test_questions_that_got_no_answer_are_not_sent() -> None:
    """Failed, stopped and timed-out turns leave their question alone in the store."""
    history = [question("t1"), answer("t1"), question("t2"), question("t3"), question("t4")]
    assert alternating(history) == [question("t1"), answer("t1"), question("t4")]


def test_answers_pair_with_their_own_question_whatever_the_stored_order() -> None:
    """A slow process finished t1 after t2 was asked: each answer still follows its question."""
    history = [question("t1"), question("t2"), answer("t1"), answer("t2"), question("t3")]
    assert alternating(history) == [
        question("t1"), answer("t1"), question("t2"), answer("t2"), question("t3"),
    ]  # fmt: skip


def test_untagged_messages_pair_with_their_neighbour() -> None:
    history = [message("user", 1), message("assistant", 2), message("user", 3),
               message("user", 4)]  # fmt: skip
    assert alternating(history) == [history[0], history[1], history[3]]


def test_stray_answers_and_other_roles_are_not_sent() -> None:
    history = [answer("t0"), ChatMessage("tool", "x", "t1"), question("t1"), answer("t1")]
    assert alternating(history) == [question("t1"), answer("t1")]
    assert alternating([]) == []


def test_the_request_ends_at_the_question_asked() -> None:
    history = [question("t1"), answer("t1"), question("t2"), question("t3")]
    assert up_to_question(history, "t2") == history[:3]
    assert up_to_question(history, "t9") is None
    assert answer_of(history, "t1") == answer("t1")
    assert answer_of(history, "t2") is None


def test_trimming_a_broken_history_still_alternates() -> None:
    """Whole exchanges go, oldest first; unanswered questions never count against the budget."""
    history = [question("t1"), answer("t1"), question("t2"), question("t3"), answer("t3"),
               question("t4"), question("t5")]  # fmt: skip
    exchange = estimate_tokens("question t3") + estimate_tokens("answer t3")
    budget = estimate_tokens("i") + estimate_tokens("question t5") + exchange
    kept = fit_to_budget("i", history, budget)
    assert kept == [question("t3"), answer("t3"), question("t5")]
    assert fit_to_budget("i", history, 10_000) == [
        question("t1"), answer("t1"), question("t3"), answer("t3"), question("t5"),
    ]  # fmt: skip


def test_an_exchange_is_never_cut_in_half() -> None:
    history = [question("t1"), ChatMessage("assistant", "y" * 400, "t1"), question("t2")]
    budget = estimate_tokens("i") + estimate_tokens("question t2") + estimate_tokens("y" * 400)
    assert fit_to_budget("i", history, budget) == [question("t2")]


def test_every_shape_sent_alternates_and_ends_with_the_question() -> None:
    """Any mix of answered and unanswered turns, at any budget."""
    for pattern in itertools.product("au", repeat=5):  # a: answered turn, u: unanswered
        history: list[ChatMessage] = []
        for index, kind in enumerate(pattern):
            history.append(question(f"t{index}"))
            if kind == "a":
                history.append(answer(f"t{index}"))
        history.append(question("now"))
        for budget in (0, 20, 40, 80, 10_000):
            sent = fit_to_budget("i", history, budget)
            assert roles(sent) == ["user", "assistant"] * (len(sent) // 2) + ["user"]
            assert sent[-1] == question("now")


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


def test_no_budget_sends_everything() -> None:
    history = [message("user", 4000), message("assistant", 4000), message("user", 40)]
    assert fit_to_budget("i", history, 0) == history


def test_the_oldest_exchange_sent_moves_in_steps_so_the_prefix_stays_the_same() -> None:
    """A long conversation past its budget: what is sent starts with the same exchange for
    several turns in a row (a prefix cache hits), and always fits."""
    history: list[ChatMessage] = []
    budget = 1000
    firsts = []
    for n in range(80):
        history.append(ChatMessage("user", f"question {n} " + "x" * 100, f"turn-{n}"))
        sent = fit_to_budget("i", history, budget)
        assert sum(estimate_tokens(m.content) for m in sent) + estimate_tokens("i") <= budget
        firsts.append(sent[0].turn_id)
        history.append(ChatMessage("assistant", "y" * 100, f"turn-{n}"))
    changes = sum(a != b for a, b in itertools.pairwise(firsts))
    trimmed_turns = 80 - firsts.count("turn-0")
    assert changes <= trimmed_turns / 2  # trimming one exchange a turn would change every turn


async def test_history_round_trips_and_ignores_a_repeated_append(redis: Redis, keys: Keys) -> None:
    store = ChatHistoryStore(redis, keys)
    first = await store.append("h1", ChatMessage("user", "Who?", "turn-1"))
    again = await store.append("h1", ChatMessage("user", "Who?", "turn-1"))
    answer = await store.append("h1", ChatMessage("assistant", "Her.", "turn-1"))
    assert (first, again, answer) == (0, 0, 1)
    assert [m.content for m in await store.read("h1")] == ["Who?", "Her."]
    assert await store.read("other") == []
