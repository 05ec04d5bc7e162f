"""Posting lanes: one post at a time per place, people in turn, each person's in order."""

from __future__ import annotations

import asyncio

import pytest

from bot.turns.post_lanes import PostLanes


class Posts:
    """Posts that each wait for a go, recording the order they got the lane in."""

    def __init__(self, lanes: PostLanes) -> None:
        self.lanes = lanes
        self.order: list[str] = []
        self.go: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self, name: str, person: str, place: str = "C1") -> None:
        self.go[name] = asyncio.Event()
        self.tasks[name] = asyncio.create_task(self._post(name, person, place))
        await asyncio.sleep(0)  # let it reach the lane

    async def _post(self, name: str, person: str, place: str) -> None:
        async with self.lanes.turn(place, person):
            self.order.append(name)
            await self.go[name].wait()

    async def finish(self, name: str) -> None:
        self.go[name].set()
        await self.tasks[name]
        await asyncio.sleep(0)  # let the next one in


async def test_a_newcomer_goes_before_the_posts_another_person_queued() -> None:
    lanes = PostLanes()
    posts = Posts(lanes)
    for index in range(5):
        await posts.start(f"a{index}", "A")
    await posts.start("b0", "B")
    assert posts.order == ["a0"] and lanes.waiting("C1") == 5
    await posts.finish("a0")
    assert posts.order == ["a0", "b0"], "B waited only for the post under way"
    await posts.finish("b0")
    for index in range(1, 5):
        await posts.finish(f"a{index}")
    assert posts.order == ["a0", "b0", "a1", "a2", "a3", "a4"], "A's in the order they came"
    assert lanes.waiting("C1") == 0 and not lanes._lanes, "an idle lane is forgotten"


async def test_people_take_turns_and_places_are_independent() -> None:
    posts = Posts(PostLanes())
    await posts.start("a0", "A")
    await posts.start("other", "A", place="C2")
    assert posts.order == ["a0", "other"], "another channel does not wait"
    for name, person in (("a1", "A"), ("a2", "A"), ("b1", "B"), ("b2", "B"), ("c1", "C")):
        await posts.start(name, person)
    for name in ("a0", "b1", "c1", "a1", "b2"):
        await posts.finish(name)
    assert posts.order == ["a0", "other", "b1", "c1", "a1", "b2", "a2"]
    await posts.finish("a2")
    await posts.finish("other")


async def test_a_hold_that_posted_nothing_keeps_its_persons_place() -> None:
    """B's early placeholder finds its post claimed (by the worker, whose own post waits in
    the lane too): that post goes next, not another of A's."""
    lanes = PostLanes()
    posts = Posts(lanes)
    await posts.start("a0", "A")
    await posts.start("a1", "A")
    release = asyncio.Event()

    async def claimed_elsewhere() -> None:
        async with lanes.turn("C1", "B") as held:
            held.posted = False
            await release.wait()

    early = asyncio.create_task(claimed_elsewhere())
    await asyncio.sleep(0)
    await posts.start("b0", "B")
    await posts.finish("a0")
    release.set()
    await early
    await asyncio.sleep(0)
    assert posts.order == ["a0", "b0"]
    await posts.finish("b0")
    await posts.finish("a1")


async def test_a_task_holding_the_lane_may_enter_it_again() -> None:
    lanes = PostLanes()
    async with lanes.turn("C1", "A"):
        async with asyncio.timeout(1), lanes.turn("C1", "A"):
            pass


async def test_a_post_cancelled_while_waiting_is_skipped() -> None:
    lanes = PostLanes()
    posts = Posts(lanes)
    for name, person in (("a0", "A"), ("b0", "B"), ("c0", "C")):
        await posts.start(name, person)
    posts.tasks["b0"].cancel()
    await posts.finish("a0")
    with pytest.raises(asyncio.CancelledError):
        await posts.tasks["b0"]
    assert posts.order == ["a0", "c0"]
    await posts.finish("c0")
    assert not lanes._lanes


async def test_a_post_cancelled_as_it_is_handed_the_lane_passes_it_on() -> None:
    lanes = PostLanes()
    posts = Posts(lanes)
    release = asyncio.Event()

    async def hold_then_cancel_the_next() -> None:
        async with lanes.turn("C1", "A"):
            await release.wait()
        posts.tasks["b0"].cancel()  # handed the lane just now, b0 has not run yet

    holder = asyncio.create_task(hold_then_cancel_the_next())
    await asyncio.sleep(0)
    await posts.start("b0", "B")
    await posts.start("c0", "C")
    release.set()
    await holder
    with pytest.raises(asyncio.CancelledError):
        await posts.tasks["b0"]
    await asyncio.sleep(0)
    assert posts.order == ["c0"]
    await posts.finish("c0")
    assert not lanes._lanes
