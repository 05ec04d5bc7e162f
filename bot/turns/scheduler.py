"""Taking turns in order, one at a time per conversation, many conversations at once.

Two runs on one conversation would collide (the server refuses the second), and answers
must come in the order the questions were asked; different conversations do not wait for
each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from bot.turns.engine import TurnEngine
from bot.turns.models import Turn
from bot.turns.surface import SurfaceFactory

log = logging.getLogger(__name__)


class ConversationScheduler:
    """Queues turns per conversation and runs each queue in its own task."""

    def __init__(self, engine: TurnEngine, surfaces: SurfaceFactory) -> None:
        self._engine = engine
        self._surfaces = surfaces
        self._queues: dict[str, deque[Turn]] = {}
        # Strong references: the event loop keeps only weak ones to tasks.
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, turn: Turn) -> None:
        """Queue `turn` behind earlier turns of its conversation; returns at once."""
        queue = self._queues.setdefault(turn.conversation_key, deque())
        queue.append(turn)
        if turn.conversation_key not in self._workers:
            self._idle.clear()
            worker = asyncio.create_task(self._work(turn.conversation_key))
            self._workers[turn.conversation_key] = worker

    @property
    def active_conversations(self) -> int:
        return len(self._workers)

    async def wait_idle(self) -> None:
        """Wait until every queued turn has been handled."""
        await self._idle.wait()

    async def shutdown(self, grace_seconds: float) -> None:
        """Give in-flight turns `grace_seconds` to finish, then cancel the rest.

        Cancelled turns still replace their placeholder with an apology (see TurnEngine).
        """
        if not self._workers:
            return
        try:
            await asyncio.wait_for(self.wait_idle(), timeout=grace_seconds)
        except TimeoutError:
            log.warning("cancelling %d conversations still in flight", len(self._workers))
            workers = list(self._workers.values())
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _work(self, conversation_key: str) -> None:
        queue = self._queues[conversation_key]
        try:
            while queue:
                turn = queue[0]
                await self._engine.run(turn, self._surfaces(turn))
                queue.popleft()
        finally:
            del self._workers[conversation_key]
            self._queues.pop(conversation_key, None)
            if not self._workers:
                self._idle.set()
