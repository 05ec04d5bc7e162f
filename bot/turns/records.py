"""A turn's durable record: the turn, and each step done for it so far.

Every step is written before the next begins, so a process that picks up a turn another one
dropped (crash, restart) continues it: the same placeholder is completed, the message is
not added twice, no second run is started.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.storage.keys import TURN_TTL_SECONDS, Keys
from bot.turns.models import Turn, TurnSource


@dataclass
class TurnProgress:
    """What has happened for a turn; None means "not done yet"."""

    posting_placeholder: bool = False  # the post was sent; its ts may not have been recorded
    placeholder_ts: str | None = None
    conversation_id: str | None = None
    adding_message: bool = False  # the add was sent; its result may not have been recorded
    message_id: str | None = None  # "" where the backend sends the message with the run
    starting_run: bool = False  # the run was requested; its id may not have been recorded
    run_id: str | None = None
    delivered: bool = False
    attempts: int = 0


_BOOLEAN_FIELDS = {"posting_placeholder", "adding_message", "starting_run", "delivered"}


def encode_turn(turn: Turn) -> str:
    return json.dumps(dataclasses.asdict(turn))


def decode_turn(raw: str) -> Turn:
    fields = json.loads(raw)
    fields["source"] = TurnSource(fields["source"])
    return Turn(**fields)


class InMemoryJournal:
    """A journal that remembers nothing past the process (direct use of the engine, tests)."""

    def __init__(self, progress: TurnProgress | None = None) -> None:
        self.progress = progress or TurnProgress()

    async def record(self, **fields: object) -> None:
        for name, value in fields.items():
            setattr(self.progress, name, value)


class TurnJournal:
    """The record of one turn in Redis; `progress` mirrors what is stored."""

    def __init__(self, redis: Redis, keys: Keys, turn_id: str, progress: TurnProgress) -> None:
        self._redis = redis
        self._key = keys.turn(turn_id)
        self.progress = progress

    async def record(self, **fields: object) -> None:
        """Store these steps (before the caller moves on), and mirror them in `progress`."""
        for name, value in fields.items():
            setattr(self.progress, name, value)
        encoded = {name: _encode(value) for name, value in fields.items()}
        await self._redis.hset(self._key, mapping=encoded)


class TurnStore:
    """Loads turn records written by the queue at intake."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def open(self, turn_id: str) -> tuple[Turn, TurnJournal] | None:
        """The turn and its journal, with one more attempt counted; None if it is gone."""
        key = self._keys.turn(turn_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "attempts", 1)
            pipe.hgetall(key)
            _, stored = await pipe.execute()
        if "turn" not in stored:
            await self._redis.delete(key)
            return None
        progress = TurnProgress()
        for field in dataclasses.fields(TurnProgress):
            if field.name in stored:
                setattr(progress, field.name, _decode(field.name, stored[field.name]))
        return decode_turn(stored["turn"]), TurnJournal(self._redis, self._keys, turn_id, progress)

    async def forget(self, turn_id: str) -> None:
        await self._redis.expire(self._keys.turn(turn_id), TURN_TTL_SECONDS // 7)


def _encode(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else str(value)


def _decode(name: str, raw: str) -> object:
    if name in _BOOLEAN_FIELDS:
        return raw == "1"
    if name == "attempts":
        return int(raw)
    return raw
