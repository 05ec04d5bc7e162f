"""A chat conversation's history, kept in Redis so that nothing is stored at the provider.

What is stored and what is sent differ: the store keeps every question, also those whose
turn failed, was stopped or timed out; the request sends only questions with their answers,
then the question being asked. Servers whose chat templates require user and assistant to
alternate (Mistral, Gemma on vLLM or llama.cpp) reject anything else, and one unanswered
question would otherwise break the conversation for good.

What is sent fits the context budget (TUTOR_CONTEXT_TOKENS), and its beginning changes as
seldom as it can: the instructions come first, byte for byte the same every turn, and the
oldest exchange kept moves forward in steps, so a server's prefix cache (llama.cpp, vLLM,
OpenAI's prompt cache) keeps serving the start of the prompt from one turn to the next.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.storage.keys import Keys

# Older messages than this are dropped from Redis: they would never fit a budget anyway.
MAX_STORED_MESSAGES = 400
# The oldest exchange sent can only be an "anchor", about one exchange in this many (chosen
# by a hash of its question, so the choice survives the store dropping its oldest messages).
ANCHOR_EVERY = 4


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "user" or "assistant" (stored); "system" for the instructions sent
    content: str
    turn_id: str = ""

    def encoded(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def decoded(cls, raw: str) -> ChatMessage:
        return cls(**json.loads(raw))


def estimate_tokens(text: str) -> int:
    """A rough token count of a message (about 4 characters a token, plus 4 for its role).

    Used to choose how much history fits, and as the usage of a turn whose server reports
    none (marked as estimated); the server's reported usage is what counts.
    """
    return len(text) // 4 + 4


def estimate_output_tokens(text: str) -> int:
    """A rough token count of generated text (no message overhead)."""
    return max(1, len(text) // 4)


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
    """The most recent exchanges of `history` that fit `budget` tokens with the instructions
    (all of them when `budget` is 0: no budget).

    The result alternates user and assistant (see `alternating`): whole exchanges are
    dropped, oldest first, never half of one. The final question is always kept, so a long
    question is still asked. Once some must go, the oldest exchange kept is the first
    anchor (`is_anchor`) among those that fit, so the same one stays first for several turns
    (a prefix cache keeps hitting); unless that would send less than half of what fits.
    """
    shaped = alternating(history)
    if budget <= 0:
        return shaped
    question = [shaped.pop()] if shaped and shaped[-1].role == "user" else []
    exchanges = [shaped[start : start + 2] for start in range(0, len(shaped), 2)]
    remaining = budget - estimate_tokens(instructions)
    remaining -= sum(estimate_tokens(m.content) for m in question)
    first = len(exchanges)  # the oldest exchange that fits, with all after it
    for index in range(len(exchanges) - 1, -1, -1):
        cost = sum(estimate_tokens(m.content) for m in exchanges[index])
        if (first < len(exchanges) or question) and cost > remaining:
            break
        first, remaining = index, remaining - cost
    start = first
    if first > 0:
        anchors = (i for i in range(first, len(exchanges)) if is_anchor(exchanges[i][0]))
        anchor = next(anchors, len(exchanges))
        start = anchor if 2 * (len(exchanges) - anchor) >= len(exchanges) - first else first
    return [message for exchange in exchanges[start:] for message in exchange] + question


def is_anchor(question: ChatMessage) -> bool:
    """Whether an exchange may be the oldest one sent: about one in ANCHOR_EVERY is."""
    identity = (question.turn_id or question.content).encode()
    return zlib.crc32(identity) % ANCHOR_EVERY == 0


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
