"""Recording a turn in two slot-local steps (the asker's slot, then the conversation's), on
one Redis and on a real Redis Cluster: the same guarantees as one script."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from bot.backends.base import Usage
from bot.storage.keys import Keys
from bot.turns.guards import Limits, Refusal, Refused
from bot.turns.models import Turn, TurnSource
from bot.turns.queue import TurnQueue
from bot.turns.records import TurnStore
from bot.tutor.ledger import UsageLedger


def ask(conversation: str = "1", user: str = "U1", text: str = "q") -> Turn:
    return Turn(f"T1:C1:{conversation}", "T1", "C1", conversation, user, text, TurnSource.MENTION)


async def test_a_delivery_is_recorded_once_whoever_delivers_it(where: tuple[Redis, Keys]) -> None:
    redis, keys = where
    queue = TurnQueue(redis, keys)
    turns = [ask() for _ in range(8)]
    results = await asyncio.gather(*(queue.enqueue(t, "Ev1", "1.1") for t in turns))
    assert results.count(None) == 7 and results.count(0) == 1
    winner = turns[results.index(0)]
    assert await queue.first("T1:C1:1", 10) == [winner.turn_id]
    assert await queue.waiting_for("T1", "U1") == 1, "the repeats' reservations taken back"
    records = [await redis.exists(keys.turn(t.turn_id)) for t in turns]
    assert records.count(1) == 1, "the repeats' records deleted"
    assert not await queue.claim_delivery("Ev9", "C1", "1.1", "T1:C1:1"), "same message"


async def test_a_full_conversation_takes_back_the_askers_reservation(
    where: tuple[Redis, Keys],
) -> None:
    redis, keys = where
    queue = TurnQueue(redis, keys)
    limits = Limits(queued_per_conversation=1, queued_per_user=5, per_user_per_minute=5)
    assert await queue.enqueue(ask(), "Ev1", None, limits) == 0
    refused_turn = ask()
    refused = await queue.enqueue(refused_turn, "Ev2", None, limits)
    assert isinstance(refused, Refused) and refused.reason is Refusal.CONVERSATION_FULL
    assert not await redis.exists(keys.turn(refused_turn.turn_id)), "nothing recorded"
    assert await queue.waiting_for("T1", "U1") == 1, "only the queued question counts"
    assert await redis.zcard(keys.user_recent("T1", "U1")) == 1
    assert await queue.enqueue(ask(), "Ev2", None, limits) is None, "a repeat is not refused again"
    assert await queue.enqueue(ask("2"), "Ev3", None, limits) == 0, "another conversation is fine"


async def test_a_person_over_the_limit_is_refused_before_anything_is_queued(
    where: tuple[Redis, Keys],
) -> None:
    redis, keys = where
    queue = TurnQueue(redis, keys)
    limits = Limits(queued_per_user=2)
    assert [await queue.enqueue(ask(str(c)), f"Ev{c}", None, limits) for c in (1, 2)] == [0, 0]
    turn = ask("3")
    refused = await queue.enqueue(turn, "Ev3", None, limits)
    assert isinstance(refused, Refused) and refused.reason is Refusal.USER_FULL
    assert await queue.waiting("T1:C1:3") == 0 and not await redis.exists(keys.turn(turn.turn_id))
    assert await queue.enqueue(ask("3"), "Ev3", None, limits) is None, "its delivery was seen"
    assert await queue.enqueue(ask("3", user="U2"), "Ev4", None, limits) == 0, "others may ask"


async def test_every_shard_is_read_and_the_turns_open_from_their_records(
    where: tuple[Redis, Keys],
) -> None:
    redis, keys = where
    queue, store = TurnQueue(redis, keys), TurnStore(redis, keys)
    await queue.ensure_group()
    turns = [ask(str(c)) for c in range(12)]
    for turn in turns:
        await queue.enqueue(turn, None, None)
    assert len({keys.shard_of(t.conversation_key) for t in turns}) > 1, "spread over shards"
    assert await queue.unfinished() == 12
    read = [e for shard in queue.shards for e in await queue.read_new("w", 20, 10, shard)]
    assert sorted(conversation for _, conversation in read) == sorted(
        t.conversation_key for t in turns
    )
    for entry in read:
        turn_id = await queue.head(entry[1])
        assert turn_id is not None
        opened = await store.open(turn_id)
        assert opened is not None and opened[0].conversation_key == entry[1]
        await queue.remove(entry[1], turn_id, opened[0])
        await queue.ack(entry)
    assert await queue.unfinished() == 0 and await queue.waiting_for("T1", "U1") == 0
    assert await queue.trim() == 12


async def test_a_turns_usage_counts_once_across_slots(where: tuple[Redis, Keys]) -> None:
    """Its own figures, the conversation's, the channel's and the day's live in other slots:
    written once, then added once, however many processes finish the turn."""
    redis, keys = where
    ledger = UsageLedger(redis, keys)
    turn = ask()
    figures = await asyncio.gather(*(ledger.record(turn, Usage(100, 10)) for _ in range(5)))
    assert {(f.input_tokens, f.output_tokens) for f in figures} == {(100, 10)}
    assert (await ledger.conversation(turn.conversation_key)).input_tokens == 100
    assert (await ledger.report("T1", "U1")).user_today.input_tokens == 100


async def test_a_retried_recording_finds_its_own_turn_queued(where: tuple[Redis, Keys]) -> None:
    """The client sends a script again when its reply was lost: the second run finds its own
    turn, not a repeat, and the record stays."""
    redis, keys = where
    queue = TurnQueue(redis, keys)
    turn = ask()
    assert await queue.enqueue(ask(), "Ev0", None) == 0
    assert await queue.enqueue(turn, "Ev1", "1.1") == 1
    assert await queue.enqueue(turn, "Ev1", "1.1") == 1, "the same turn: still one ahead"
    assert await queue.waiting("T1:C1:1") == 2
    assert await redis.exists(keys.turn(turn.turn_id))
