"""A chat conversation's history, kept in Redis so that nothing is stored at the provider.

What is stored and what is sent differ: the store keeps every question, also those whose
turn failed, was stopped or timed out; the request sends only questions with their answers,
then the question being asked. Servers whose chat templates require user and assistant to
alternate (Mistral, Gemma on vLLM or llama.cpp) reject anything else, and one unanswered
question would otherwise break the conversation for good.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.storage.keys import Keys

# Older messages than this are dropped from Redis: they would never fit a budget anyway.
MAX_STORED_MESSAGES = 400


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "user" or "assistant"
    content: str
    turn_id: str = ""

    def encoded(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def decoded(cls, raw: str) -> ChatMessage:
        return cls(**json.loads(raw))


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters a token, plus per-message overhead).

    Used only to choose how much history fits; the server's reported usage is what counts.
    """
    return len(text) // 4 + 4


def up_to_question(history: list[ChatMessage], turn_id: str) -> list[ChatMessage] | None:
    """`history` up to and including the question of `turn_id`; None if it is not there."""
    for index in range(len(history) - 1, -1, -1):
        if (history[index].role, history[index].turn_id) == ("user", turn_id):
            return history[: index + 1]
    return None


def answer_of(history: list[ChatMessage], turn_id: str) -> ChatMessage | None:
    """The answer stored for `turn_id`, if any."""
    return next((m for m in history if (m.role, m.turn_id) == ("assistant", turn_id)), None)


def alternating(history: list[ChatMessage]) -> list[ChatMessage]:
    """`history` as a model takes it: each answered question with its answer, in order.

    Questions that got no answer (failed, stopped, timed-out turns) are left out; a final
    question stands alone at the end, as the one being asked. Answers pair with their
    question by turn id (untagged ones with the question just before them), so the result
    alternates user and assistant whatever order the store holds them in.
    """
    answers = {m.turn_id: m for m in history if m.role == "assistant" and m.turn_id}
    shaped: list[ChatMessage] = []
    for index, message in enumerate(history):
        if message.role != "user":
            continue
        if index == len(history) - 1:
            shaped.append(message)
            break
        if message.turn_id:
            answer = answers.pop(message.turn_id, None)
        else:
            following = history[index + 1]
            untagged = following.role == "assistant" and not following.turn_id
            answer = following if untagged else None
        if answer is not None:
            shaped += [message, answer]
    return shaped


def fit_to_budget(instructions: str, history: list[ChatMessage], budget: int) -> list[ChatMessage]:
    """The most recent exchanges of `history` that fit `budget` tokens with the instructions.

    The result alternates user and assistant (see `alternating`): whole exchanges are
    dropped, oldest first, never half of one. The final question is always kept, so a long
    question is still asked.
    """
    shaped = alternating(history)
    question = [shaped.pop()] if shaped and shaped[-1].role == "user" else []
    remaining = budget - estimate_tokens(instructions)
    remaining -= sum(estimate_tokens(m.content) for m in question)
    kept: list[ChatMessage] = []
    for start in range(len(shaped) - 2, -1, -2):
        exchange = shaped[start : start + 2]
        cost = sum(estimate_tokens(m.content) for m in exchange)
        if (kept or question) and cost > remaining:
            break
        kept[:0] = exchange
        remaining -= cost
    return kept + question


class ChatHistoryStore:
    """Append-only message lists, one per chat conversation."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    def key(self, history_id: str) -> str:
        return self._keys.chat_history(history_id)

    async def append(self, history_id: str, message: ChatMessage) -> int:
        """Append `message` unless this turn's message of that role is already there.

        Returns the message's position, which identifies it.
        """
        key = self.key(history_id)
        if message.turn_id:
            tail = await self.read(history_id, last=4)
            start = await self._redis.llen(key) - len(tail)
            for offset, existing in enumerate(tail):
                if (existing.turn_id, existing.role) == (message.turn_id, message.role):
                    return start + offset
        async with self._redis.pipeline(transaction=True) as pipe:
            self.queue_append(pipe, history_id, message)
            length, _ = await pipe.execute()
        return int(length) - 1

    def queue_append(self, pipe: Pipeline, history_id: str, message: ChatMessage) -> None:
        """Add the append of `message` to a transaction (its result: the new length)."""
        key = self.key(history_id)
        pipe.rpush(key, message.encoded())
        pipe.ltrim(key, -MAX_STORED_MESSAGES, -1)

    async def delete(self, history_id: str) -> None:
        await self._redis.delete(self.key(history_id))

    async def read(
        self, history_id: str, last: int = MAX_STORED_MESSAGES, *, client: Redis | None = None
    ) -> list[ChatMessage]:
        """The newest `last` messages, oldest first (`client`: a watching pipeline)."""
        raw = await (client or self._redis).lrange(self.key(history_id), -last, -1)
        return [ChatMessage.decoded(entry) for entry in raw]
