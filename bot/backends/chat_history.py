"""A chat conversation's history, kept in Redis so that nothing is stored at the provider."""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.storage.keys import Keys

# Older messages than this are dropped from Redis: they would never fit a budget anyway.
MAX_STORED_MESSAGES = 400


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "user" or "assistant"
    content: str
    turn_id: str = ""


def estimate_tokens(text: str) -> int:
    """A rough token count (about 4 characters a token, plus per-message overhead).

    Used only to choose how much history fits; the server's reported usage is what counts.
    """
    return len(text) // 4 + 4


def fit_to_budget(instructions: str, history: list[ChatMessage], budget: int) -> list[ChatMessage]:
    """The most recent messages that fit `budget` tokens with the instructions.

    The newest message is always kept, so a long question is still asked.
    """
    remaining = budget - estimate_tokens(instructions)
    kept: list[ChatMessage] = []
    for message in reversed(history):
        cost = estimate_tokens(message.content)
        if kept and cost > remaining:
            break
        kept.append(message)
        remaining -= cost
    kept.reverse()
    while kept and kept[0].role == "assistant":  # a history should start with a question
        kept.pop(0)
    return kept


class ChatHistoryStore:
    """Append-only message lists, one per chat conversation."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def append(self, history_id: str, message: ChatMessage) -> int:
        """Append `message` unless this turn's message of that role is already there.

        Returns the message's position, which identifies it.
        """
        key = self._keys.chat_history(history_id)
        if message.turn_id:
            tail = await self.read(history_id, last=4)
            start = await self._redis.llen(key) - len(tail)
            for offset, existing in enumerate(tail):
                if (existing.turn_id, existing.role) == (message.turn_id, message.role):
                    return start + offset
        encoded = json.dumps(
            {"role": message.role, "content": message.content, "turn_id": message.turn_id}
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, encoded)
            pipe.ltrim(key, -MAX_STORED_MESSAGES, -1)
            length, _ = await pipe.execute()
        return int(length) - 1

    async def delete(self, history_id: str) -> None:
        await self._redis.delete(self._keys.chat_history(history_id))

    async def read(self, history_id: str, last: int = MAX_STORED_MESSAGES) -> list[ChatMessage]:
        raw = await self._redis.lrange(self._keys.chat_history(history_id), -last, -1)
        return [ChatMessage(**json.loads(entry)) for entry in raw]
