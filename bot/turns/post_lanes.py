"""Placeholders into one place (a Slack channel) are posted one at a time, people in turn.

Slack lets a bot post about one message a second into a channel. Posted all at once, the
placeholders of one person's twenty questions and another person's one race for that
allowance, retrying after each 429, and the one question waits for most of the twenty. So
the posts into one channel take turns in a lane: one post at a time (Slack would space them
out anyway), and when one ends the lane goes to the waiting person it served least
recently, each person's posts in the order they came. Someone asking for the first time
waits for at most the post under way.

The lane is per process (each process posts what it received or answers). It is reentrant
within a task: a task holding a lane can post through it again (the early placeholder
claims its post inside the lane, then posts).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from bot.turns.models import Turn

# The lanes the current task holds (for reentrancy).
_held: ContextVar[frozenset[str]] = ContextVar("tutor_held_lanes", default=frozenset())


@dataclass
class _Lane:
    busy: bool = False
    waiting: dict[str, deque[asyncio.Future[None]]] = field(default_factory=dict)
    last_served: dict[str, int] = field(default_factory=dict)  # person → when, as a count


@dataclass
class LaneTurn:
    """One hold of a lane. A hold that posted nothing (another attempt had claimed the post)
    says so, and its person keeps their place: their next post is not put behind others."""

    posted: bool = True


def channel_lane(turn: Turn) -> str:
    """The lane a turn's placeholder is posted through: its channel's."""
    return f"{turn.team_id}:{turn.channel_id}"


class PostLanes:
    """One lane per place; `turn(place, person)` waits for the lane and holds it."""

    def __init__(self) -> None:
        self._lanes: dict[str, _Lane] = {}
        self._clock = itertools.count()

    @asynccontextmanager
    async def turn(self, place: str, person: str) -> AsyncIterator[LaneTurn]:
        """Hold `place`'s lane for the block (at once if this task holds it already)."""
        held = LaneTurn()
        if place in _held.get():
            yield held
            return
        await self._enter(place, person)
        token = _held.set(_held.get() | {place})
        try:
            yield held
        finally:
            _held.reset(token)
            self._leave(place, person if held.posted else None)

    def waiting(self, place: str) -> int:
        """Posts waiting for `place`'s lane (not counting the one under way)."""
        lane = self._lanes.get(place)
        return sum(len(q) for q in lane.waiting.values()) if lane else 0

    async def _enter(self, place: str, person: str) -> None:
        lane = self._lanes.setdefault(place, _Lane())
        if not lane.busy:
            lane.busy = True
            return
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.waiting.setdefault(person, deque()).append(ready)
        try:
            await ready
        except BaseException:
            if ready.done() and not ready.cancelled():
                self._leave(place, None)  # handed the lane as we were cancelled: pass it on
            else:
                self._forget_waiter(lane, person, ready)
            raise

    def _leave(self, place: str, served: str | None) -> None:
        """`served` (None: nobody) has had a post; hand the lane to the waiting person served
        least recently, or free it."""
        lane = self._lanes[place]
        if served is not None:
            lane.last_served[served] = next(self._clock)
        while lane.waiting:
            person = min(lane.waiting, key=lambda p: lane.last_served.get(p, -1))
            queue = lane.waiting[person]
            ready = queue.popleft()
            if not queue:
                del lane.waiting[person]
            if ready.done():  # its waiter was cancelled
                continue
            ready.set_result(None)  # the lane stays busy: it is now theirs
            return
        del self._lanes[place]  # nobody waits: what it remembers is no longer needed

    @staticmethod
    def _forget_waiter(lane: _Lane, person: str, ready: asyncio.Future[None]) -> None:
        queue = lane.waiting.get(person)
        if queue is not None and ready in queue:
            queue.remove(ready)
            if not queue:
                del lane.waiting[person]
