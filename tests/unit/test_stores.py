"""Conversation map, turn queue, leases and turn records against the real redis-server."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from bot.storage.keys import Keys
from bot.turns.conversations import ConversationStore
from bot.turns.lease import ConversationLeases
from bot.turns.models import Turn, TurnSource
from bot.turns.queue import TurnQueue
from bot.turns.records import AnswerPlace, PlaceKind, TurnStore


async def test_concurrent_creations_agree_on_one_conversation(redis: Redis, keys: Keys) -> None:
    created: list[str] = []

    async def create(key: str) -> str:
        await asyncio.sleep(0.05)  # widen the race window on purpose
        created.append(key)
        return f"conv-{len(created)}"

    stores = [ConversationStore(redis, keys, "x") for _ in range(5)]
    ids = await asyncio.gather(*(s.find_or_create("T:C:1", create) for s in stores))
    assert len(set(ids)) == 1, "every caller uses the id stored first"
    assert await stores[0].find("T:C:1") == ids[0]


async def test_backends_have_separate_maps(redis: Redis, keys: Keys) -> None:
    async def create(key: str) -> str:
        return "same"

    await ConversationStore(redis, keys, "a").find_or_create("k", create)
    assert await ConversationStore(redis, keys, "b").find("k") is None


def make_turn(key: str = "T:C:1", text: str = "q") -> Turn:
    return Turn(key, "T", "C", "1", "U", text, TurnSource.MENTION)


async def test_a_delivery_is_accepted_once(redis: Redis, keys: Keys) -> None:
    queue = TurnQueue(redis, keys)
    results = await asyncio.gather(*(queue.enqueue(make_turn(), "Ev1", "1.1") for _ in range(10)))
    assert results.count(None) == 9 and results.count(0) == 1
    assert await queue.waiting("T:C:1") == 1


async def test_the_same_message_under_another_event_id_is_a_repeat(
    redis: Redis, keys: Keys
) -> None:
    queue = TurnQueue(redis, keys)
    assert await queue.enqueue(make_turn(), "Ev1", "1.1") == 0
    assert await queue.enqueue(make_turn(), "Ev2", "1.1") is None
    assert not await queue.claim_delivery("Ev3", "C", "1.1", "T:C:1"), "same conversation"
    assert await queue.claim_delivery("Ev4", "C", "2.2")
    assert not await queue.claim_delivery("Ev4", "C", "3.3")


async def test_turns_wait_in_order_and_announcements_reach_one_consumer(
    redis: Redis, keys: Keys
) -> None:
    queue = TurnQueue(redis, keys)
    await queue.ensure_group()
    await queue.ensure_group()  # idempotent
    first, second = make_turn(text="1"), make_turn(text="2")
    assert await queue.enqueue(first, None, None) == 0
    assert await queue.enqueue(second, None, None) == 1, "one earlier turn waits before it"
    assert await queue.head("T:C:1") == first.turn_id
    a = await queue.read_new("a", 10, 10)
    b = await queue.read_new("b", 10, 10)
    assert [conv for _, conv in a] == ["T:C:1", "T:C:1"] and b == []
    assert await queue.unfinished() == 2
    await queue.remove("T:C:1", first.turn_id)
    assert await queue.head("T:C:1") == second.turn_id
    for entry in a:
        await queue.ack(entry)
    assert await queue.unfinished() == 0


async def test_a_dead_consumers_entries_can_be_claimed_and_reread_after_restart(
    redis: Redis, keys: Keys
) -> None:
    queue = TurnQueue(redis, keys)
    await queue.ensure_group()
    await queue.enqueue(make_turn(), None, None)
    [(entry_id, _)] = await queue.read_new("dead", 10, 10)
    assert await queue.read_own_pending("dead", 10) == ([(entry_id, "T:C:1")], None)
    assert await queue.claim_stale("alive", 60_000, 10) == ([], "0-0")
    assert await queue.claim_stale("alive", 0, 10) == ([(entry_id, "T:C:1")], "0-0")


async def test_a_lease_has_one_holder_and_expires(redis: Redis, keys: Keys) -> None:
    leases = ConversationLeases(redis, keys, seconds=0.2)
    token = await leases.acquire("k")
    assert token and await leases.acquire("k") is None
    assert await leases.renew("k", token)
    assert not await leases.renew("k", "someone-else")
    await leases.release("k", "someone-else")
    assert await leases.acquire("k") is None
    await leases.release("k", token)
    assert await leases.acquire("k")


async def test_a_lease_that_expired_untaken_is_renewed_and_a_taken_one_is_not(
    redis: Redis, keys: Keys
) -> None:
    leases = ConversationLeases(redis, keys, seconds=20)
    token = await leases.acquire("k")
    assert token
    await redis.delete(keys.conversation_lease("k"))  # expired while Redis was away
    assert await leases.renew("k", token)
    assert await redis.get(keys.conversation_lease("k")) == token
    await redis.set(keys.conversation_lease("k"), "another process")
    assert not await leases.renew("k", token)


async def test_turn_records_keep_progress_and_count_attempts(redis: Redis, keys: Keys) -> None:
    queue, store = TurnQueue(redis, keys), TurnStore(redis, keys)
    turn = make_turn(text="Who?")
    await queue.enqueue(turn, None, None)
    opened = await store.open(turn.turn_id)
    assert opened is not None
    stored, journal = opened
    assert stored == turn
    await journal.answer_placed(AnswerPlace(PlaceKind.STREAM, "9.9"))
    await journal.message_adding()
    await journal.message_added("")
    await journal.chunks_shown(2)
    reopened = await store.open(turn.turn_id)
    assert reopened is not None
    progress = reopened[1].progress
    assert (progress.place, progress.adding_message, progress.message_id) == (
        AnswerPlace(PlaceKind.STREAM, "9.9"),
        True,
        "",
    )
    assert progress.chunks_delivered == 2
    assert progress.run_id is None and progress.attempts == 2
    assert await store.open("turn_missing") is None


async def test_own_pending_entries_are_read_page_by_page(redis: Redis, keys: Keys) -> None:
    queue = TurnQueue(redis, keys)
    await queue.ensure_group()
    for index in range(5):
        await queue.enqueue(make_turn(f"T:C:{index}"), None, None)
    read = await queue.read_new("w", 10, 10)
    first, after = await queue.read_own_pending("w", 2)
    second, after = await queue.read_own_pending("w", 2, after or "")
    third, after = await queue.read_own_pending("w", 2, after or "")
    assert first + second + third == read and after is None


async def test_trimming_removes_only_what_was_acknowledged(redis: Redis, keys: Keys) -> None:
    """Pending entries (even behind acknowledged ones) and unread entries stay."""
    queue = TurnQueue(redis, keys)
    assert await queue.trim() == 0, "no stream yet"
    await queue.ensure_group()
    for index in range(10):
        await queue.enqueue(make_turn(f"T:C:{index}"), None, None)
    read = await queue.read_new("w", 4, 10)
    for entry in (read[0], read[2], read[3]):
        await queue.ack(entry)
    assert await queue.trim() == 1, "only the entry before the oldest pending one"
    assert await queue.unfinished() == 7
    assert await queue.read_own_pending("w", 10) == ([read[1]], None)
    rest = await queue.read_new("w", 10, 10)
    assert len(rest) == 6
    await queue.ack(read[1])
    assert await queue.trim() == 3
    assert await redis.xlen(keys.ready_stream(0)) == 6, "read but not acknowledged: kept"
    for entry in rest:
        await queue.ack(entry)
    assert await queue.trim() == 6
    await queue.enqueue(make_turn("T:C:new"), None, None)
    assert await queue.unfinished() == 1, "what arrives after a full trim is still counted"
    assert [conv for _, conv in await queue.read_new("w", 10, 10)] == ["T:C:new"]
