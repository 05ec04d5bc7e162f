"""The turn worker against the real redis-server, with a stand-in engine: overload, crashes."""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.backends.base import RunStatus
from bot.storage.keys import Keys
from bot.turns import worker as worker_module
from bot.turns.lease import ConversationLeases
from bot.turns.models import Turn, TurnSource
from bot.turns.queue import Entry, TurnQueue
from bot.turns.records import AnswerPlace, PlaceKind, TurnStore
from bot.turns.worker import TurnWorker, WorkerSettings


class QuietSurface:
    """A reply surface that shows nothing (the engine stand-in never calls it)."""

    placeholder_ref: str | None = None

    async def find_placeholder(self) -> bool:
        return False

    async def remove_strays(self) -> None: ...

    async def show_placeholder(self) -> AnswerPlace:
        return AnswerPlace(PlaceKind.MESSAGE, "1.000001")

    async def show_status(
        self, status: RunStatus, elapsed_seconds: float, *, retrying: bool = False
    ) -> None: ...

    async def show_partial(self, text: str) -> bool:
        return False

    async def show_answer(
        self, text: str, *, note: str | None = None, usage: object = None
    ) -> None: ...

    async def show_error(self, message: str) -> None: ...


class Engine:
    """Answers a turn by taking `seconds`; counts runs per turn and runs at once."""

    def __init__(self, seconds: float = 0.0, crash_first_run: bool = False) -> None:
        self.seconds = seconds
        self.crash_first_run = crash_first_run
        self.runs: collections.Counter[str] = collections.Counter()
        self.running = self.most_running = 0
        self.started = asyncio.Event()

    async def run(self, turn: Turn, surface: object, journal: object) -> None:
        self.runs[turn.turn_id] += 1
        if self.crash_first_run and self.runs[turn.turn_id] == 1:
            raise RuntimeError("an unexpected bug")
        self.running += 1
        self.started.set()
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(self.seconds)  # the work of answering, not a wait for anything
        finally:
            self.running -= 1


class CountingWorker(TurnWorker):
    """Counts the handlers started for each stream entry (in `handled`, shared by workers)."""

    handled: collections.Counter[str]

    async def _handle(self, entry: Entry, fresh: bool) -> None:
        self.handled[entry[0]] += 1
        await super()._handle(entry, fresh)


WorkerFactory = Callable[..., CountingWorker]


@pytest.fixture
def handled() -> collections.Counter[str]:
    return collections.Counter()


@pytest.fixture
async def make_worker(
    redis: Redis, keys: Keys, handled: collections.Counter[str]
) -> AsyncIterator[WorkerFactory]:
    workers: list[CountingWorker] = []

    def make(
        engine: Engine, queue: TurnQueue | None = None, consumer: str = "w1", **settings: Any
    ) -> CountingWorker:
        worker = CountingWorker(
            queue or TurnQueue(redis, keys),
            TurnStore(redis, keys),
            ConversationLeases(redis, keys, seconds=settings.get("lease_seconds", 20.0)),
            engine,  # type: ignore[arg-type]
            lambda turn, journal: QuietSurface(),
            WorkerSettings(consumer=consumer, **settings),
        )
        worker.handled = handled
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        await worker.stop(grace_seconds=1)


async def queued(redis: Redis, keys: Keys, count: int) -> list[Turn]:
    """`count` turns waiting, each in a conversation of its own."""
    queue = TurnQueue(redis, keys)
    await queue.ensure_group()
    turns = [turn_in(index) for index in range(count)]
    for turn in turns:
        await queue.enqueue(turn, None, None)
    return turns


def turn_in(conversation: int) -> Turn:
    key = f"T:C:{conversation}"
    return Turn(key, "T", "C", str(conversation), "U", "q", TurnSource.MENTION)


async def test_under_overload_each_entry_gets_one_handler_and_trimming_keeps_what_waits(
    redis: Redis, keys: Keys, make_worker: WorkerFactory, handled: collections.Counter[str]
) -> None:
    """Forty conversations waiting; one worker with a single slot, one with two, both looking
    for abandoned entries (and trimming the stream) every 20 ms. An entry read waits for no
    slot, so it never looks abandoned and has one handler in all; nothing pending is trimmed
    away, and once all is answered the stream is empty."""
    turns = await queued(redis, keys, 40)
    engine = Engine(seconds=0.05)
    workers = [
        make_worker(engine, consumer=f"w{slots}", concurrency=slots, lease_seconds=0.5,
                    claim_every_seconds=0.02)
        for slots in (1, 2)
    ]  # fmt: skip
    for worker in workers:
        await worker.start()
    for worker in workers:
        await worker.wait_idle(timeout=20)
    assert engine.runs == {turn.turn_id: 1 for turn in turns}
    assert len(handled) == 40 and set(handled.values()) == {1}
    assert engine.most_running <= 3
    deadline = time.monotonic() + 5
    while await redis.xlen(keys.ready_stream(0)):  # the workers trim now and then
        assert time.monotonic() < deadline, "the stream was not trimmed"
        await asyncio.sleep(0.01)


async def test_a_long_drain_is_not_taken_for_abandoned(
    redis: Redis, keys: Keys, make_worker: WorkerFactory, handled: collections.Counter[str]
) -> None:
    """An answer that takes three leases: its entry is kept fresh, so no worker claims it."""
    [turn] = await queued(redis, keys, 1)
    engine = Engine(seconds=0.9)
    first = make_worker(engine, consumer="a", lease_seconds=0.3, claim_every_seconds=0.02)
    await first.start()
    await asyncio.wait_for(engine.started.wait(), 5)
    second = make_worker(engine, consumer="b", lease_seconds=0.3, claim_every_seconds=0.02)
    await second.start()
    await first.wait_idle(timeout=10)
    assert engine.runs == {turn.turn_id: 1}
    assert list(handled.values()) == [1]


async def test_a_handler_that_crashes_is_logged_with_its_conversation_and_retried(
    redis: Redis, keys: Keys, make_worker: WorkerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    try:
        turn, queue = turn_in(1), TurnQueue(redis, keys)
        await queue.ensure_group()
        await queue.enqueue(turn, None, None)
        engine = Engine(crash_first_run=True)
        worker = make_worker(engine, lease_seconds=0.3, claim_every_seconds=0.02)
        with caplog.at_level(logging.ERROR, logger="bot.turns.worker"):
            await worker.start()
            await worker.wait_idle(timeout=10)
        gc.collect()  # a task whose exception nobody retrieved says so as it is collected
    finally:
        loop.set_exception_handler(None)
    assert engine.runs[turn.turn_id] == 2, "tried again once the entry was idle for a lease"
    [failure] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert turn.conversation_key in failure.getMessage()
    assert turn.turn_id in failure.getMessage()
    assert failure.exc_info is not None and "unexpected bug" in str(failure.exc_info[1])
    assert unhandled == []


class FlakyQueue(TurnQueue):
    """A queue whose first read fails with a bug, not a Redis error."""

    failed = False

    async def read_new(
        self, consumer: str, count: int, block_ms: int, shard: int = 0
    ) -> list[Entry]:
        if not self.failed:
            self.failed = True
            raise ValueError("a bug in reading")
        return await super().read_new(consumer, count, block_ms, shard)


async def test_the_reader_survives_an_unexpected_error_and_logs_it(
    redis: Redis,
    keys: Keys,
    make_worker: WorkerFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "REDIS_RETRY_SECONDS", 0.05)
    queue = FlakyQueue(redis, keys)
    await queue.ensure_group()
    turn = turn_in(1)
    await queue.enqueue(turn, None, None)
    engine = Engine()
    worker = make_worker(engine, queue)
    with caplog.at_level(logging.ERROR, logger="bot.turns.worker"):
        await worker.start()
        await worker.wait_idle(timeout=10)
    assert engine.runs == {turn.turn_id: 1}
    assert any("a bug in reading" in str(r.exc_info and r.exc_info[1]) for r in caplog.records)


class LossyQueue(TurnQueue):
    """A queue whose first read of new entries is lost on the way back: Redis delivered them
    to the consumer (they are its pending entries), the reply never arrived, and the client
    read again, as redis-py's retry does after a dropped connection."""

    lost: tuple[Entry, ...] = ()

    async def read_new(
        self, consumer: str, count: int, block_ms: int, shard: int = 0
    ) -> list[Entry]:
        entries = await super().read_new(consumer, count, block_ms, shard)
        if entries and not self.lost:
            self.lost = tuple(entries)
            return await super().read_new(consumer, count, block_ms, shard)
        return entries


async def test_an_entry_whose_read_was_lost_is_taken_back_without_waiting_a_lease(
    redis: Redis, keys: Keys, make_worker: WorkerFactory, handled: collections.Counter[str]
) -> None:
    queue = LossyQueue(redis, keys)
    await queue.ensure_group()
    turn = turn_in(1)
    await queue.enqueue(turn, None, None)
    engine = Engine()
    worker = make_worker(engine, queue, lease_seconds=60.0, claim_every_seconds=0.05)
    await worker.start()
    await asyncio.wait_for(engine.started.wait(), 10)  # not a lease (60 s) later
    await worker.wait_idle(timeout=10)
    assert queue.lost and engine.runs == {turn.turn_id: 1}
    assert list(handled.values()) == [1]


class ChoreCountingQueue(TurnQueue):
    """Counts the looks for lost entries (one per chore)."""

    looks = 0

    async def own_pending_ids(self, consumer: str, count: int, shard: int = 0) -> list[str]:
        self.looks += 1
        return await super().own_pending_ids(consumer, count, shard)


async def test_an_entry_left_pending_on_purpose_waits_a_lease_to_be_taken_again(
    redis: Redis, keys: Keys, make_worker: WorkerFactory, handled: collections.Counter[str]
) -> None:
    """A handler that failed leaves its entry for a lease: not taken back as lost."""
    turn, queue = turn_in(1), ChoreCountingQueue(redis, keys)
    await queue.ensure_group()
    await queue.enqueue(turn, None, None)
    engine = Engine(crash_first_run=True)
    worker = make_worker(engine, queue, lease_seconds=60.0, claim_every_seconds=0.02)
    await worker.start()
    deadline = time.monotonic() + 10
    while not engine.runs or worker.in_flight:  # the crash, its handler over
        assert time.monotonic() < deadline, "the worker did not take the turn"
        await asyncio.sleep(0.01)
    looked_before = queue.looks
    while queue.looks < looked_before + 2:  # two looks for lost entries (a read apart)
        assert time.monotonic() < deadline, "the worker did not run its chores"
        await asyncio.sleep(0.01)
    assert engine.runs == {turn.turn_id: 1} and list(handled.values()) == [1]


async def test_a_persons_questions_count_as_waiting_until_their_turns_end_however_they_end(
    redis: Redis, keys: Keys, make_worker: WorkerFactory
) -> None:
    """TUTOR_MAX_QUEUED_PER_USER counts what each person has waiting: answered, crashed and
    then answered, or given up on, each turn leaves the count; one whose record was lost
    (nobody can tell whose it was) stops counting after an hour."""
    queue = TurnQueue(redis, keys)
    await queue.ensure_group()
    answered, crashed, given_up, lost = (turn_in(index) for index in range(4))
    for turn in (answered, crashed, given_up, lost):
        await queue.enqueue(turn, None, None)
    await redis.hset(keys.turn(given_up.turn_id), "attempts", str(worker_module.MAX_ATTEMPTS))
    await redis.hdel(keys.turn(lost.turn_id), "turn")
    assert await queue.waiting_for("T", "U") == 4

    class CrashingOnce(Engine):
        async def run(self, turn: Turn, surface: object, journal: object) -> None:
            self.runs[turn.turn_id] += 1
            if turn.turn_id == crashed.turn_id and self.runs[turn.turn_id] == 1:
                raise RuntimeError("an unexpected bug")

    engine = CrashingOnce()
    worker = make_worker(engine, queue, lease_seconds=0.3, claim_every_seconds=0.02)
    await worker.start()
    await worker.wait_idle(timeout=10)
    assert engine.runs == {answered.turn_id: 1, crashed.turn_id: 2}
    assert await queue.waiting_for("T", "U") == 1, "only the lost one still counts"


class BrokenLeases(ConversationLeases):
    """Leases whose renewals fail with what a cluster client may raise mid-failover (not a
    RedisError)."""

    async def renew(self, conversation_key: str, token: str) -> bool:
        raise AttributeError("'NoneType' object has no attribute 'writelines'")


async def test_a_lease_that_cannot_be_renewed_in_time_stops_its_drain(
    redis: Redis, keys: Keys
) -> None:
    """The keeper outlives failed renewals, and stops the drain once the lease may have
    lapsed: another process may hold it by then (answering twice)."""
    worker = TurnWorker(
        TurnQueue(redis, keys),
        TurnStore(redis, keys),
        BrokenLeases(redis, keys, seconds=0.3),
        Engine(),  # type: ignore[arg-type]
        lambda turn, journal: QuietSurface(),
        WorkerSettings(consumer="w1"),
    )
    drain = asyncio.create_task(asyncio.Event().wait())  # a drain that never ends by itself
    keeper = asyncio.create_task(worker._keep_lease("T:C:1", "token", ("1-0", "T:C:1"), drain))
    await asyncio.wait_for(asyncio.gather(drain, return_exceptions=True), timeout=5)
    assert drain.cancelled()
    await keeper
