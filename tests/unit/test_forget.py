"""Forgetting conversations and the retention sweep, against the real redis-server and a
backend that records what it is asked to delete."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from bot.backends.base import BackendError
from bot.storage.keys import Keys, scan_pattern
from bot.turns.conversations import ConversationStore
from bot.turns.forget import JOB_RETRY_SECONDS, ConversationForgetter, ForgetOutcome
from bot.turns.lease import ConversationLeases
from bot.turns.models import Turn, TurnSource
from bot.turns.queue import TurnQueue
from bot.turns.records import TurnStore
from bot.turns.retention import RetentionSweep
from tests.redis_contents import naming as keys_naming
from tests.redis_contents import redis_contents

DAY = 24 * 60 * 60
NOW = 1_800_000_000.0


@dataclass
class RecordingBackend:
    """Deletes nothing; records each delete, and fails the first `failures` of them."""

    name: str = "fake"
    failures: int = 0
    deleted: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    async def delete_conversation(self, conversation_id: str, run_ids: Sequence[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise BackendError("the server is down")
        self.deleted.append((conversation_id, tuple(run_ids)))

    async def delete_file(self, file_id: str) -> None:
        self.deleted.append((file_id, ()))

    async def delete_vector_store(self, vector_store_id: str) -> None:
        self.deleted.append((vector_store_id, ()))


def forgetter(redis: Redis, keys: Keys, backend: RecordingBackend) -> ConversationForgetter:
    leases = ConversationLeases(redis, keys, seconds=5)
    return ConversationForgetter(redis, keys, backend, leases, clock=lambda: NOW)


async def answered_turn(
    redis: Redis, keys: Keys, key: str, *, user: str = "U1", at: float = NOW, number: int = 1
) -> Turn:
    """A turn accepted at time `at` and answered as a worker does (conversation, run,
    delivery), leaving what a worker leaves."""
    turn = Turn(key, "T1", "C1", "1.1", user, f"Secret question {number}", TurnSource.MENTION)
    queue = TurnQueue(redis, keys, clock=lambda: at)
    assert await queue.enqueue(turn, f"Ev{uuid.uuid4().hex}", None) is not None

    async def create(_: str) -> str:
        return f"conv-{key}"

    await ConversationStore(redis, keys, "fake").find_or_create(key, create)
    store = TurnStore(redis, keys)
    opened = await store.open(turn.turn_id)
    assert opened is not None
    _, journal = opened
    await journal.run_started(f"run-{key}-{number}")
    await journal.delivered()
    await queue.remove(key, turn.turn_id)
    await store.forget(turn.turn_id)
    return turn


async def everything(redis: Redis, keys: Keys) -> dict[str, str]:
    return await redis_contents(redis, keys.prefix)


def naming(found: dict[str, str], *words: str) -> list[str]:
    return sorted(keys_naming(found, *words))


async def test_a_forgotten_conversation_is_deleted_at_the_backend_and_in_redis(
    redis: Redis, keys: Keys
) -> None:
    backend = RecordingBackend()
    kept = await answered_turn(redis, keys, "T1:C1:9.9")  # another conversation, untouched
    await answered_turn(redis, keys, "T1:C1:1.1", number=1)
    await answered_turn(redis, keys, "T1:C1:1.1", user="U2", number=2)
    assert naming(await everything(redis, keys), "T1:C1:1.1", "Secret question")
    forget = forgetter(redis, keys, backend)
    assert await forget.asked_in("T1:C1:1.1", "U2")

    assert await forget.forget("T1:C1:1.1") is ForgetOutcome.FORGOTTEN

    assert backend.deleted == [("conv-T1:C1:1.1", ("run-T1:C1:1.1-1", "run-T1:C1:1.1-2"))]
    left = await everything(redis, keys)
    assert naming(left, "T1:C1:1.1", "run-T1:C1:1.1") == []
    assert naming(left, kept.conversation_key), "other conversations stay"
    assert naming(left, "Secret question") == [], "no question text once delivered"
    assert not await forget.knows("T1:C1:1.1")
    assert await forget.forget("T1:C1:1.1") is ForgetOutcome.NOTHING


async def test_a_question_waiting_or_being_answered_keeps_the_conversation(
    redis: Redis, keys: Keys
) -> None:
    backend = RecordingBackend()
    forget = forgetter(redis, keys, backend)
    await answered_turn(redis, keys, "T1:C1:1.1")
    leases = ConversationLeases(redis, keys, seconds=5)
    token = await leases.acquire("T1:C1:1.1")  # a worker answers it
    assert token is not None
    assert await forget.forget("T1:C1:1.1") is ForgetOutcome.BUSY
    await leases.release("T1:C1:1.1", token)

    waiting = Turn("T1:C1:1.1", "T1", "C1", "1.1", "U1", "And then?", TurnSource.MENTION)
    await TurnQueue(redis, keys).enqueue(waiting, "EvWaiting", None)
    assert await forget.forget("T1:C1:1.1") is ForgetOutcome.BUSY
    assert backend.deleted == []
    assert await redis.exists(keys.conversation("fake", "T1:C1:1.1"))
    assert await TurnQueue(redis, keys).waiting("T1:C1:1.1") == 1


async def test_a_job_left_by_a_process_that_died_is_finished_once_by_another(
    redis: Redis, keys: Keys
) -> None:
    backend = RecordingBackend()
    await answered_turn(redis, keys, "T1:C1:1.1")
    detached = await forgetter(redis, keys, backend).detach("T1:C1:1.1")  # then it died
    assert detached.outcome is ForgetOutcome.FORGOTTEN and detached.job is not None

    others = [forgetter(redis, keys, backend) for _ in range(2)]
    assert await others[0].resume_jobs(NOW + 1) == 0, "its own process may still work on it"
    later = NOW + JOB_RETRY_SECONDS + 1
    assert sum(await asyncio.gather(*(f.resume_jobs(later) for f in others))) == 1
    assert backend.deleted == [("conv-T1:C1:1.1", ("run-T1:C1:1.1-1",))]
    assert naming(await everything(redis, keys), "forget", "T1:C1:1.1") == []


async def test_a_backend_that_fails_gets_the_job_again_later(redis: Redis, keys: Keys) -> None:
    backend = RecordingBackend(failures=1)
    await answered_turn(redis, keys, "T1:C1:1.1")
    forget = forgetter(redis, keys, backend)
    assert await forget.forget("T1:C1:1.1") is ForgetOutcome.PENDING
    assert not await forget.knows("T1:C1:1.1"), "gone from Redis at once"
    assert await forget.resume_jobs(NOW + JOB_RETRY_SECONDS + 1) == 1
    assert backend.deleted == [("conv-T1:C1:1.1", ("run-T1:C1:1.1-1",))]
    assert not await redis.exists(keys.forget_jobs)


async def test_a_courses_job_is_void_while_the_course_still_names_its_vector_store(
    redis: Redis, keys: Keys
) -> None:
    """A course's deletion records its job, then deletes its keys: a process dying (or Redis
    failing) in between leaves a job that deletes nothing the course still uses."""
    backend = RecordingBackend()
    state = keys.materials_state("T1", "C1")
    await redis.hset(state, "vector_store", "vs_1")
    dying = forgetter(redis, keys, backend)
    job = await dying.record_deletes(
        file_ids=["file_1"], vector_store_ids=["vs_1"], void_while=state
    )
    assert job is not None  # then it died, before the course's keys were deleted
    later = NOW + JOB_RETRY_SECONDS + 1
    assert await forgetter(redis, keys, backend).resume_jobs(later) == 0
    assert backend.deleted == [] and not await redis.exists(keys.forget_jobs)

    done = await dying.record_deletes(
        file_ids=["file_1"], vector_store_ids=["vs_1"], void_while=state
    )
    assert done is not None
    await redis.delete(state)  # the course's keys went: the job runs
    assert await dying.finish(done) is ForgetOutcome.FORGOTTEN
    assert backend.deleted == [("file_1", ()), ("vs_1", ())]


async def test_the_sweep_forgets_only_conversations_idle_longer_than_the_retention(
    redis: Redis, keys: Keys
) -> None:
    backend = RecordingBackend()
    await answered_turn(redis, keys, "T1:C1:old", at=NOW - 31 * DAY)
    await answered_turn(redis, keys, "T1:C1:new", at=NOW - 29 * DAY)
    sweeps = [
        RetentionSweep(redis, keys, forgetter(redis, keys, backend), retention_seconds=30 * DAY)
        for _ in range(2)
    ]
    # Two processes sweep at once: each idle conversation is forgotten once.
    assert sum(await asyncio.gather(*(s.sweep(NOW) for s in sweeps))) == 1
    assert [conversation for conversation, _ in backend.deleted] == ["conv-T1:C1:old"]
    assert sum(await asyncio.gather(*(s.sweep(NOW + 2 * DAY) for s in sweeps))) == 1
    assert [conversation for conversation, _ in backend.deleted][1:] == ["conv-T1:C1:new"]
    assert not naming(await everything(redis, keys), "T1:C1:")


async def test_conversations_from_before_the_activity_index_are_swept_too(
    redis: Redis, keys: Keys
) -> None:
    backend = RecordingBackend()
    await redis.set(keys.conversation("fake", "T1:C1:1.1"), "conv-legacy")
    sweep = RetentionSweep(redis, keys, forgetter(redis, keys, backend), retention_seconds=DAY)
    assert await sweep.sweep(NOW) == 0, "counted as active from the first sweep on"
    assert await sweep.sweep(NOW + 2 * DAY) == 1
    assert backend.deleted == [("conv-legacy", ())]


async def test_no_retention_keeps_conversations_but_finishes_jobs(redis: Redis, keys: Keys) -> None:
    backend = RecordingBackend(failures=1)
    await answered_turn(redis, keys, "T1:C1:1.1", at=NOW - 400 * DAY)
    await answered_turn(redis, keys, "T1:C1:2.2", at=NOW - 400 * DAY)
    forget = forgetter(redis, keys, backend)
    assert await forget.forget("T1:C1:1.1") is ForgetOutcome.PENDING
    sweep = RetentionSweep(redis, keys, forget, retention_seconds=0)
    assert await sweep.sweep(NOW + JOB_RETRY_SECONDS + 1) == 0
    assert backend.deleted == [("conv-T1:C1:1.1", ("run-T1:C1:1.1-1",))]
    assert await forget.knows("T1:C1:2.2")


@pytest.mark.parametrize(
    ("prefix", "pattern"),
    [("tutor:", "tutor:*"), ("a*b?[c]\\:", "a\\*b\\?\\[c\\]\\\\:*")],
)
def test_scan_patterns_take_the_prefix_literally(prefix: str, pattern: str) -> None:
    assert scan_pattern(prefix) == pattern
