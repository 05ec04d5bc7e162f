"""The purge of an uninstalled workspace's data: when, once, and only that workspace's."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from bot.storage.keys import Keys
from bot.turns.workspace_purge import SECONDS_PER_DAY, WorkspacePurges


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def purges_for(redis: Redis, keys: Keys, clock: Clock, forgotten: list[str]) -> WorkspacePurges:
    async def forget(conversation_key: str) -> None:
        forgotten.append(conversation_key)

    return WorkspacePurges(
        redis, keys, forget, backends=["chat", "responses"], retention_days=30, clock=clock
    )


async def seed(redis: Redis, keys: Keys, team_id: str) -> list[str]:
    made = [
        keys.conversation("chat", f"{team_id}:C1:1.1"),
        keys.conversation("responses", f"{team_id}:D1:top"),
        keys.conversation_usage(f"{team_id}:C1:1.1"),
        keys.command_thread(f"{team_id}:C1:2.2"),
        keys.edit_budget(team_id),
    ]
    for key in made:
        await redis.set(key, "x")
    return made


async def test_a_purge_waits_for_the_retention_period(redis: Redis, keys: Keys) -> None:
    clock, forgotten = Clock(), []
    purges = purges_for(redis, keys, clock, forgotten)
    due = await purges.schedule("TA")
    assert due == clock.now + 30 * SECONDS_PER_DAY
    clock.now += SECONDS_PER_DAY
    assert await purges.schedule("TA") == due, "a second uninstall event keeps the first time"
    await seed(redis, keys, "TA")
    clock.now = due - 1
    assert await purges.run_due() == []
    clock.now = due
    assert await purges.run_due() == ["TA"]
    assert await purges.scheduled("TA") is None


async def test_a_purge_deletes_that_workspace_only(redis: Redis, keys: Keys) -> None:
    clock, forgotten = Clock(), []
    purges = purges_for(redis, keys, clock, forgotten)
    gone = await seed(redis, keys, "TA")
    kept = await seed(redis, keys, "TAB")  # a team id that starts with the other's
    await purges.schedule("TA")
    clock.now += 30 * SECONDS_PER_DAY
    await purges.run_due()
    assert sorted(forgotten) == ["TA:C1:1.1", "TA:D1:top"]
    assert not any([await redis.exists(key) for key in gone])
    assert all([await redis.exists(key) for key in kept])


async def test_each_workspace_is_purged_once_by_all_processes(redis: Redis, keys: Keys) -> None:
    clock, forgotten = Clock(), []
    processes = [purges_for(redis, keys, clock, forgotten) for _ in range(4)]
    for team_id in ("TA", "TB", "TC"):
        await seed(redis, keys, team_id)
        await processes[0].schedule(team_id)
    clock.now += 31 * SECONDS_PER_DAY
    purged = await asyncio.gather(*(p.run_due() for p in processes))
    assert sorted(team for each in purged for team in each) == ["TA", "TB", "TC"]
    assert len(forgotten) == 6


async def test_a_workspace_installed_again_keeps_its_data(redis: Redis, keys: Keys) -> None:
    clock, forgotten = Clock(), []
    purges = purges_for(redis, keys, clock, forgotten)
    kept = await seed(redis, keys, "TA")
    await purges.schedule("TA")
    await redis.set(keys.installation("TA"), "{}")  # installed again (and not cancelled)
    clock.now += 31 * SECONDS_PER_DAY
    assert await purges.run_due() == []
    assert all([await redis.exists(key) for key in kept])
    assert await purges.scheduled("TA") is None


async def test_a_failing_backend_does_not_stop_the_purge(redis: Redis, keys: Keys) -> None:
    async def broken(conversation_key: str) -> None:
        raise RuntimeError("backend down")

    clock = Clock()
    purges = WorkspacePurges(redis, keys, broken, backends=["chat"], clock=clock)
    gone = await seed(redis, keys, "TA")
    await purges.schedule("TA")
    clock.now += 31 * SECONDS_PER_DAY
    assert await purges.run_due() == ["TA"]
    assert not await redis.exists(gone[0])


async def test_a_purge_taken_but_not_finished_is_taken_again_later(
    redis: Redis, keys: Keys
) -> None:
    clock, forgotten = Clock(), []
    purges = purges_for(redis, keys, clock, forgotten)
    await purges.schedule("TA")
    clock.now += 31 * SECONDS_PER_DAY
    # A process takes it and dies: the entry has moved on, not gone.
    taken = await purges._take_due(
        keys=[keys.workspace_purges], args=[clock.now, clock.now + 60, 10]
    )
    assert taken == ["TA"]
    assert await purges.run_due() == []
    clock.now += 60
    assert await purges.run_due() == ["TA"]


async def test_each_course_with_materials_is_forgotten_before_its_keys_go(
    redis: Redis, keys: Keys
) -> None:
    """The hook deletes a course's files and vector store at the provider: it must see the
    course while its keys (and so the provider's ids) are still there."""
    seen: list[tuple[str, str, bool]] = []

    async def forget_course(team_id: str, channel_id: str) -> None:
        seen.append(
            (team_id, channel_id, bool(await redis.exists(keys.materials(team_id, channel_id))))
        )

    async def forget(conversation_key: str) -> None:
        pass

    clock = Clock()
    purges = WorkspacePurges(
        redis, keys, forget, forget_course=forget_course, backends=["responses"], clock=clock
    )
    for team_id, channel_id in (("TA", "C1"), ("TA", "C2"), ("TAB", "C1")):
        await redis.hset(keys.materials(team_id, channel_id), "mat_1", "{}")
        await redis.hset(keys.materials_state(team_id, channel_id), "vector_store", "vs_1")
    await purges.schedule("TA")
    clock.now += 31 * SECONDS_PER_DAY
    assert await purges.run_due() == ["TA"]
    assert seen == [("TA", "C1", True), ("TA", "C2", True)]
    assert not await redis.exists(keys.materials("TA", "C1"), keys.materials_state("TA", "C2"))
    assert await redis.exists(keys.materials("TAB", "C1"))
