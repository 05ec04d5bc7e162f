"""The status-edit budget: one per workspace in Redis, shared by every process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.slack.edit_budget import EditBudget, retry_after_seconds
from bot.storage.connection import connect
from bot.storage.keys import Keys
from tests.conftest import RedisServer


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def second_redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """Another connection to the same Redis, as a second bot process has."""
    client = connect(redis_server.url)
    yield client
    await client.aclose()


async def test_edits_of_one_message_are_spaced(redis: Redis, keys: Keys, clock: Clock) -> None:
    budget = EditBudget(redis, keys, clock=clock)
    assert await budget.allow_status_edit("T1", "m1")
    assert not await budget.allow_status_edit("T1", "m1")
    assert await budget.allow_status_edit("T1", "m2"), "other messages are not held back"
    clock.now += 1.0
    assert await budget.allow_status_edit("T1", "m1")


async def test_a_burst_in_one_workspace_is_capped_and_refills(
    redis: Redis, keys: Keys, clock: Clock
) -> None:
    budget = EditBudget(redis, keys, per_minute=60, burst=5, clock=clock)
    allowed = [await budget.allow_status_edit("T1", f"m{i}") for i in range(20)]
    assert allowed.count(True) == 5
    assert await budget.allow_status_edit("T2", "x"), "workspaces have separate budgets"
    clock.now += 2.0
    assert [await budget.allow_status_edit("T1", f"n{i}") for i in range(3)] == [
        True,
        True,
        False,
    ]


async def test_the_edit_budget_is_shared_by_two_processes(
    redis: Redis, second_redis: Redis, keys: Keys, clock: Clock
) -> None:
    first = EditBudget(redis, keys, per_minute=60, burst=4, clock=clock)
    second = EditBudget(second_redis, keys, per_minute=60, burst=4, clock=clock)
    taken = [
        await budget.allow_status_edit("T1", f"{name}{i}")
        for i in range(4)
        for name, budget in (("a", first), ("b", second))
    ]
    assert taken == [True] * 4 + [False] * 4, "four edits in all, not four each"
    clock.now += 1.0
    assert await second.allow_status_edit("T1", "b-late"), "a second's refill, seen by both"
    assert not await first.allow_status_edit("T1", "a-late")


async def test_answers_use_the_budget_without_being_refused(
    redis: Redis, second_redis: Redis, keys: Keys, clock: Clock
) -> None:
    answers = EditBudget(redis, keys, per_minute=60, burst=2, clock=clock)
    statuses = EditBudget(second_redis, keys, per_minute=60, burst=2, clock=clock)
    for i in range(4):
        await answers.count_final_edit("T1", f"m{i}")
    assert not await statuses.allow_status_edit("T1", "new")
    clock.now += 2.0
    assert not await statuses.allow_status_edit("T1", "new"), "the debt is paid back first"
    clock.now += 1.0
    assert await statuses.allow_status_edit("T1", "new")


async def test_a_429_pauses_status_edits_in_every_process_for_retry_after(
    redis: Redis, second_redis: Redis, keys: Keys, clock: Clock
) -> None:
    first = EditBudget(redis, keys, clock=clock)
    second = EditBudget(second_redis, keys, clock=clock)
    await first.pause_status_edits("T1", 30)
    assert not await first.allow_status_edit("T1", "m1")
    assert not await second.allow_status_edit("T1", "m2")
    assert await second.allow_status_edit("T2", "m3"), "other workspaces go on"
    await second.pause_status_edits("T1", 5)  # a shorter pause does not cut the first one
    clock.now += 29.0
    assert not await second.allow_status_edit("T1", "m2")
    clock.now += 1.0
    assert await second.allow_status_edit("T1", "m2")
    assert await first.allow_status_edit("T1", "m1")


async def test_a_budget_key_expires_but_outlives_its_pause(
    redis: Redis, keys: Keys, clock: Clock
) -> None:
    budget = EditBudget(redis, keys, per_minute=40, burst=10, clock=clock)
    assert await budget.allow_status_edit("T1", "m1")
    assert 0 < await redis.ttl(keys.edit_budget("T1")) <= 30, "a bucket in full debt refills"
    await budget.pause_status_edits("T1", 120)
    assert 119 <= await redis.ttl(keys.edit_budget("T1")) <= 120


async def test_without_redis_a_status_edit_is_skipped_at_once(keys: Keys, clock: Clock) -> None:
    """A Redis that accepts connections and never answers: the edit is skipped, in bounds."""
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    client = connect(f"redis://127.0.0.1:{port}")
    try:
        budget = EditBudget(client, keys, redis_wait=0.2, clock=clock)
        started = time.monotonic()
        assert not await budget.allow_status_edit("T1", "m1")
        await budget.count_final_edit("T1", "m1")  # does not raise
        await budget.pause_status_edits("T1", 5)
        assert time.monotonic() - started < 2.0, "three bounded waits"
    finally:
        await client.aclose()
        silent.close()


async def test_only_edits_that_still_hold_a_message_back_are_remembered(
    redis: Redis, keys: Keys, clock: Clock
) -> None:
    """A long-running process streams many turns: what it remembers stays small."""
    budget = EditBudget(redis, keys, per_minute=60000, burst=6000, clock=clock)
    for second in range(200):
        for message in range(3):
            assert await budget.allow_status_edit("T1", f"m{second}-{message}")
        clock.now += 0.5
    assert len(budget._last_edit) <= 6, "two spacing windows' worth at most"
    assert not await budget.allow_status_edit("T1", "m199-0"), "recent edits still hold back"


def test_retry_after_is_read_whatever_its_case() -> None:
    assert retry_after_seconds({"Retry-After": "30"}) == 30
    assert retry_after_seconds({"retry-after": "2"}) == 2
    assert retry_after_seconds({}) == 1
    assert retry_after_seconds({"Retry-After": "soon"}) == 1
