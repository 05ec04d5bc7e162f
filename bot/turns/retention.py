"""The retention sweep: conversations idle longer than `TUTOR_RETENTION_DAYS` are forgotten,
the same way as when someone asks (bot.turns.forget).

Every process runs it; all they share is in Redis, so it survives restarts and several
processes sweep without doing anything twice: a conversation is forgotten under its lease,
where its idle time is checked again, and a forget job is taken by moving its due time on
in one atomic step. The activity index it reads (the time of each conversation's last
question) is written when a question is accepted (bot.turns.queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.storage.keys import Keys, scan_pattern
from bot.turns.forget import ConversationForgetter, ForgetOutcome

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 24 * 60 * 60
# Conversations looked at per sweep; the next sweep goes on with the rest.
CONVERSATIONS_PER_SWEEP = 200
BACKFILL_BATCH = 500
# How often a process sweeps: a tenth of the retention, within these bounds.
SHORTEST_SWEEP_EVERY = 0.5
LONGEST_SWEEP_EVERY = 300.0
CANCEL_WAIT_SECONDS = 0.1


def sweep_every(retention_seconds: float | None) -> float:
    """Seconds between two sweeps of one process (forget jobs are retried at this pace too)."""
    if not retention_seconds:
        return LONGEST_SWEEP_EVERY
    return min(LONGEST_SWEEP_EVERY, max(SHORTEST_SWEEP_EVERY, retention_seconds / 10))


class RetentionSweep:
    """Forgets idle conversations, and finishes forget jobs that processes left undone.

    `retention_seconds` None (or 0) keeps conversations until someone forgets them.
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        forgetter: ConversationForgetter,
        *,
        retention_seconds: float | None,
        every_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._forgetter = forgetter
        self._retention = retention_seconds or None
        self._every = sweep_every(self._retention) if every_seconds is None else every_seconds
        self._clock = clock
        self._backfilled = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def sweep(self, now: float | None = None) -> int:
        """One pass at time `now`; how many idle conversations it forgot. Raises redis errors."""
        now = self._clock() if now is None else now
        await self._backfill_once(now)
        await self._forgetter.resume_jobs(now)
        if self._retention is None:
            return 0
        idle_before = now - self._retention
        idle = await self._redis.zrangebyscore(
            self._keys.activity, "-inf", idle_before, start=0, num=CONVERSATIONS_PER_SWEEP
        )
        forgotten = 0
        for conversation_key in idle:
            detached = await self._forgetter.detach(
                conversation_key, idle_before=idle_before, now=now
            )
            if detached.outcome is not ForgetOutcome.FORGOTTEN:
                continue  # another process took it, or a question came meanwhile
            forgotten += 1
            if detached.job is not None:
                await self._forgetter.finish(detached.job)
        if forgotten:
            log.info("retention: forgot %d conversations idle for too long", forgotten)
        return forgotten

    async def start(self) -> None:
        """Sweep now and then every so often, until `stop`."""
        self._stopping.clear()
        self._task = asyncio.create_task(self._sweep_forever(), name="retention sweep")

    async def stop(self) -> None:
        """Stop sweeping; a forget cut short is finished by a later sweep.

        A cancel can be lost inside redis-py (Python 3.11's `asyncio.wait_for` swallows one
        that arrives as a reply does): it is repeated until the task ends, and the loop also
        ends by itself once `_stopping` is set.
        """
        self._stopping.set()
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()  # again, should the last one have been lost
            await asyncio.wait({task}, timeout=CANCEL_WAIT_SECONDS)

    async def _sweep_forever(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep()
            except RedisError as error:
                log.warning("retention sweep: Redis unreachable (%s); trying again later", error)
            except Exception:
                log.exception("retention sweep failed; trying again later")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._every):
                    await self._stopping.wait()

    async def _backfill_once(self, now: float) -> None:
        """Conversations recorded before the activity index existed count as active now,
        so that they too are forgotten once idle for the retention. Done once per Redis."""
        if self._backfilled:
            return
        if await self._redis.set(self._keys.activity_backfilled, "1", nx=True):
            prefix = self._keys.conversation_prefix(self._forgetter.backend_name)
            found: list[str] = []
            async for name in self._redis.scan_iter(match=scan_pattern(prefix), count=1000):
                found.append(name[len(prefix) :])
                if len(found) >= BACKFILL_BATCH:
                    await self._note_active(found, now)
                    found = []
            await self._note_active(found, now)
        self._backfilled = True

    async def _note_active(self, conversation_keys: list[str], now: float) -> None:
        if conversation_keys:
            await self._redis.zadd(
                self._keys.activity, dict.fromkeys(conversation_keys, now), nx=True
            )
