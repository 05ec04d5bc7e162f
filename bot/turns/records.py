"""A turn's durable record: the turn, and each step done for it so far.

Every step is written before the next begins, so a process that picks up a turn another one
dropped (crash, restart) continues it: the answer goes to the same place, the message is
not added twice, no second run is started, no part of a long answer is posted twice.
Steps are recorded through the typed methods of `Journal`; the hash fields they write are
private to this module.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis

from bot.storage.keys import TURN_TTL_SECONDS, Keys
from bot.turns.models import Turn, TurnSource
from bot.tutor.instructions import Teaching


class PlaceKind(StrEnum):
    """The kinds of place a turn's answer can live in."""

    MESSAGE = "message"  # a message the bot edits (the "Thinking…" placeholder)
    STREAM = "stream"  # a natively streamed message that replaced the placeholder
    RESPONSE_URL = "response_url"  # a /tutor command's response_url (no message of ours)


@dataclass(frozen=True)
class AnswerPlace:
    """Where a turn's answer lives now; `ref` is the message's ts ("" for a response_url)."""

    kind: PlaceKind
    ref: str = ""


@dataclass
class TurnProgress:
    """What has happened for a turn; None means "not done yet"."""

    posting_placeholder: bool = False  # the post was sent; its place may not be recorded
    placeholder_claimed_at: float = 0.0  # when (epoch seconds) its post was claimed
    place: AnswerPlace | None = None
    conversation_id: str | None = None
    adding_message: bool = False  # the add was sent; its result may not have been recorded
    message_id: str | None = None  # "" where the backend sends the message with the run
    starting_run: bool = False  # the run was requested; its id may not have been recorded
    run_id: str | None = None
    chunks_delivered: int = 0  # messages of the answer already shown (a long answer has more)
    teaching: Teaching | None = None  # the mode and instructions chosen for its run
    delivered: bool = False
    attempts: int = 0


def encode_turn(turn: Turn) -> str:
    return json.dumps(dataclasses.asdict(turn))


def decode_turn(raw: str) -> Turn:
    """The stored turn; fields an older version stored and this one dropped are ignored."""
    stored = json.loads(raw)
    known = {f.name for f in dataclasses.fields(Turn)}
    fields = {name: value for name, value in stored.items() if name in known}
    fields["source"] = TurnSource(fields["source"])
    fields["files"] = tuple(fields.get("files") or ())
    return Turn(**fields)


class Journal:
    """Records a turn's steps as they happen; `progress` mirrors what is recorded.

    Subclasses decide where it is kept (`_save`).
    """

    def __init__(self, progress: TurnProgress | None = None) -> None:
        self.progress = progress or TurnProgress()

    async def _save(self, fields: dict[str, str]) -> None:
        """Keep these encoded fields (before the caller moves on)."""

    async def _save_if_absent(self, name: str, value: str) -> bool:
        """Keep this field unless it is kept already; True when it was not."""
        return True

    async def _drop(self, name: str) -> None:
        """Forget this field."""

    async def claim_placeholder(self) -> bool:
        """Claim the posting of the placeholder; False when another attempt (the early post
        at intake, or an attempt that died) claimed it first. A claimed post may have been
        sent without its place being recorded."""
        if self.progress.posting_placeholder:
            return False
        now = time.time()
        claimed = await self._save_if_absent("posting_placeholder", f"{now:.3f}")
        self.progress.posting_placeholder = True
        if claimed:
            self.progress.placeholder_claimed_at = now
        return claimed

    async def unclaim_placeholder(self) -> None:
        """The claimed post failed before anything was sent: another attempt may post."""
        self.progress.posting_placeholder = False
        await self._drop("posting_placeholder")

    async def place_recorded(self) -> AnswerPlace | None:
        """The place recorded now (another process may have recorded it since loading), and
        when its post was claimed (`progress.placeholder_claimed_at`)."""
        return self.progress.place

    async def answer_placed(self, place: AnswerPlace) -> None:
        """The answer lives at `place` from now on (the placeholder, or a stream replacing it)."""
        self.progress.place = place
        await self._save({"place": place.kind.value, "placeholder_ts": place.ref})

    async def conversation_found(self, conversation_id: str) -> None:
        self.progress.conversation_id = conversation_id
        await self._save({"conversation_id": conversation_id})

    async def message_adding(self) -> None:
        self.progress.adding_message = True
        await self._save({"adding_message": "1"})

    async def message_added(self, message_id: str) -> None:
        self.progress.message_id = message_id
        await self._save({"message_id": message_id})

    async def teaching_chosen(self, teaching: Teaching) -> None:
        """The turn's mode and instructions, chosen once: a resumed turn keeps them."""
        self.progress.teaching = teaching
        await self._save(teaching.fields())

    async def run_starting(self) -> None:
        self.progress.starting_run = True
        await self._save({"starting_run": "1"})

    async def run_started(self, run_id: str) -> None:
        self.progress.run_id = run_id
        await self._save({"run_id": run_id})

    async def chunks_shown(self, count: int) -> None:
        """The first `count` messages of the answer are in Slack."""
        self.progress.chunks_delivered = count
        await self._save({"chunks_delivered": str(count)})

    async def delivered(self) -> None:
        """The turn is over: the answer or an explanation was shown (or cannot be)."""
        self.progress.delivered = True
        await self._save({"delivered": "1"})


class InMemoryJournal(Journal):
    """A journal that remembers nothing past the process (direct use of the engine, tests)."""


class TurnJournal(Journal):
    """The record of one turn in Redis.

    The question's text stays in it only until the turn is delivered (a turn interrupted
    before then is resumed from it); each run started is also noted in the conversation's
    index, so that forgetting the conversation deletes it at the backend.
    """

    def __init__(self, redis: Redis, keys: Keys, turn: Turn, progress: TurnProgress) -> None:
        super().__init__(progress)
        self._redis = redis
        self._keys = keys
        self._turn = turn
        self._key = keys.turn(turn.turn_id)

    async def _save(self, fields: dict[str, str]) -> None:
        await self._redis.hset(self._key, mapping=fields)

    async def _save_if_absent(self, name: str, value: str) -> bool:
        return bool(await self._redis.hsetnx(self._key, name, value))

    async def _drop(self, name: str) -> None:
        await self._redis.hdel(self._key, name)

    async def run_started(self, run_id: str) -> None:
        self.progress.run_id = run_id
        # Two keys in two slots on a cluster: no transaction, and two plain commands, which the
        # client retries through a failover. The conversation's index is written first, so a
        # crash in between leaves at most a run that forgetting also deletes.
        await self._redis.sadd(self._keys.conversation_runs(self._turn.conversation_key), run_id)
        await self._redis.hset(self._key, "run_id", run_id)

    async def delivered(self) -> None:
        """The turn is over: recorded as such, and its question's text is dropped."""
        self.progress.delivered = True
        without_text = encode_turn(dataclasses.replace(self._turn, text=""))
        await self._save({"delivered": "1", "turn": without_text})

    async def place_recorded(self) -> AnswerPlace | None:
        kind, ref, claimed = await self._redis.hmget(
            self._key, ["place", "placeholder_ts", "posting_placeholder"]
        )
        self.progress.place = _place(kind, ref)
        self.progress.placeholder_claimed_at = _claimed_at(claimed)
        return self.progress.place


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
        progress = decode_progress(stored)
        turn = decode_turn(stored["turn"])
        return turn, TurnJournal(self._redis, self._keys, turn, progress)

    async def peek(self, turn_id: str) -> tuple[Turn, TurnProgress] | None:
        """The turn and its progress as recorded now, counting no attempt; None if gone."""
        stored = await self._redis.hgetall(self._keys.turn(turn_id))
        if "turn" not in stored:
            return None
        return decode_turn(stored["turn"]), decode_progress(stored)

    async def all_placed(self, turn_ids: list[str]) -> bool:
        """True when each of these turns has its placeholder recorded (or is gone)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for turn_id in turn_ids:
                pipe.hmget(self._keys.turn(turn_id), ["turn", "placeholder_ts"])
            found = await pipe.execute()
        return all(turn is None or placed is not None for turn, placed in found)

    async def forget(self, turn_id: str) -> None:
        await self._redis.expire(self._keys.turn(turn_id), TURN_TTL_SECONDS // 7)


def _place(kind: str | None, ref: str | None) -> AnswerPlace | None:
    if ref is None:
        return None
    return AnswerPlace(PlaceKind(kind or PlaceKind.MESSAGE.value), ref)


def _claimed_at(raw: str | None) -> float:
    try:
        return float(raw or 0)
    except ValueError:
        return 0.0


def decode_progress(stored: dict[str, str]) -> TurnProgress:
    """The progress in a turn's hash (fields missing: not done yet)."""
    return TurnProgress(
        posting_placeholder=bool(stored.get("posting_placeholder")),
        placeholder_claimed_at=_claimed_at(stored.get("posting_placeholder")),
        place=_place(stored.get("place"), stored.get("placeholder_ts")),
        conversation_id=stored.get("conversation_id"),
        adding_message=stored.get("adding_message") == "1",
        message_id=stored.get("message_id"),
        starting_run=stored.get("starting_run") == "1",
        run_id=stored.get("run_id"),
        chunks_delivered=int(stored.get("chunks_delivered") or 0),
        teaching=Teaching.from_fields(stored),
        delivered=stored.get("delivered") == "1",
        attempts=int(stored.get("attempts") or 0),
    )
