"""Answering queued turns: in order per conversation, many conversations at once, any process.

A worker reads "conversation has turns waiting" from the stream, takes the conversation's
lease and answers its turns oldest first until none is left. Entries it could not finish
(crash, shutdown) stay pending and are claimed by a worker again once the lease expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from bot.turns.engine import TurnEngine
from bot.turns.lease import ConversationLeases
from bot.turns.models import Turn
from bot.turns.queue import Entry, TurnQueue
from bot.turns.records import TurnJournal, TurnStore
from bot.turns.resume import place_answer
from bot.turns.surface import ReplyImpossible, SurfaceFactory

log = logging.getLogger(__name__)

# A turn that has been started this many times without finishing is given up on: it is
# probably what kills the process.
MAX_ATTEMPTS = 3
GAVE_UP = "Sorry, I couldn't answer this message after several attempts. Please ask again."
READ_BLOCK_MS = 500
REDIS_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class WorkerSettings:
    consumer: str  # this process's name in the consumer group
    concurrency: int = 32  # conversations answered at once
    lease_seconds: float = 20.0  # how long a dead process blocks its conversations
    claim_every_seconds: float = 5.0  # how often to look for turns dead processes left


class TurnWorker:
    def __init__(
        self,
        queue: TurnQueue,
        store: TurnStore,
        leases: ConversationLeases,
        engine: TurnEngine,
        surfaces: SurfaceFactory,
        settings: WorkerSettings,
    ) -> None:
        self._queue = queue
        self._store = store
        self._leases = leases
        self._engine = engine
        self._surfaces = surfaces
        self._settings = settings
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._handlers: set[asyncio.Task[None]] = set()  # strong references
        self._draining: set[str] = set()
        self._stopping = False
        self._main: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start taking turns (first those this consumer left pending before a restart)."""
        self._main = asyncio.create_task(self._read_loop())

    async def stop(self, grace_seconds: float) -> None:
        """Stop taking turns; give those in flight `grace_seconds`, then hand them back."""
        self._stopping = True
        if self._main is not None:
            self._main.cancel()
            await asyncio.gather(self._main, return_exceptions=True)
        if self._handlers:
            _, unfinished = await asyncio.wait(set(self._handlers), timeout=grace_seconds)
            for handler in unfinished:
                handler.cancel()
            if unfinished:
                log.warning("handed back %d conversations still in flight", len(unfinished))
                await asyncio.gather(*unfinished, return_exceptions=True)

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every accepted turn has been answered (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while self._handlers or await self._queue.unfinished():
            if time.monotonic() > deadline:
                raise TimeoutError("turns still unanswered")
            await asyncio.sleep(0.02)

    async def _read_loop(self) -> None:
        consumer = self._settings.consumer
        group_ready = own_pending_checked = False
        next_claim = 0.0
        while not self._stopping:
            try:
                if not group_ready:  # at start, and after Redis lost its data
                    await self._queue.ensure_group()
                    group_ready = True
                if not own_pending_checked:
                    self._spawn_all(await self._queue.read_own_pending(consumer, 1000), False)
                    own_pending_checked = True
                if time.monotonic() >= next_claim:
                    next_claim = time.monotonic() + self._settings.claim_every_seconds
                    stale_ms = int(self._settings.lease_seconds * 1000)
                    self._spawn_all(await self._queue.claim_stale(consumer, stale_ms, 100), False)
                await self._slots.acquire()
                self._slots.release()
                self._spawn_all(await self._queue.read_new(consumer, 16, READ_BLOCK_MS), True)
            except RedisError as error:
                log.warning("turn queue unreachable (%s); retrying", type(error).__name__)
                group_ready = False
                await asyncio.sleep(REDIS_RETRY_SECONDS)

    def _spawn_all(self, entries: list[Entry], fresh: bool) -> None:
        for entry in entries:
            handler = asyncio.create_task(self._handle(entry, fresh))
            self._handlers.add(handler)
            handler.add_done_callback(self._handlers.discard)

    async def _handle(self, entry: Entry, fresh: bool) -> None:
        """Drain the entry's conversation, or leave it to whoever holds its lease.

        A fresh entry whose conversation is leased elsewhere is acknowledged: the holder's
        own entry stays pending while it drains, so either the holder (checking the queue
        again as it lets go) or, if it died, whoever claims that entry answers the turn.
        An entry taken over from a dead consumer stays pending instead, since the lease it
        runs into may be that dead consumer's own.
        """
        entry_id, conversation_key = entry
        try:
            if conversation_key in self._draining:
                # Our drain loop takes a new turn too. A claimed entry (perhaps the very one
                # we are draining for, idle past the lease) stays pending: acknowledging it
                # would lose the turn if this process died before finishing it.
                if fresh:
                    await self._queue.ack(entry_id)
                return
            async with self._slots:
                drained = await self._drain_with_lease(entry_id, conversation_key)
            if not drained and fresh:
                await self._queue.ack(entry_id)
        except RedisError as error:
            # The entry stays pending and is claimed again once Redis is back.
            log.warning("lost Redis while answering (%s) %s", error, conversation_key)

    async def _drain_with_lease(self, entry_id: str, conversation_key: str) -> bool:
        """Answer the conversation's waiting turns under its lease; False if leased elsewhere."""
        token = await self._leases.acquire(conversation_key)
        if token is None:
            return False
        self._draining.add(conversation_key)
        drain = asyncio.create_task(self._drain(conversation_key))
        keeper = asyncio.create_task(self._keep_lease(conversation_key, token, drain))
        try:
            await drain
        finally:
            keeper.cancel()
            with contextlib.suppress(RedisError):
                await self._leases.release(conversation_key, token)
            self._draining.discard(conversation_key)
        await self._queue.ack(entry_id)
        if await self._queue.waiting(conversation_key):
            await self._queue.announce(conversation_key)  # a turn arrived as we finished
        return True

    async def _keep_lease(self, key: str, token: str, drain: asyncio.Task[None]) -> None:
        """Renew the lease while draining; stop the drain if the lease was lost."""
        interval = self._leases.milliseconds / 3000
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self._leases.renew(key, token):
                    log.error("lost the lease of %s; stopping", key)
                    drain.cancel()
                    return
            except RedisError:
                continue  # the next renewal may work; the lease has room for two misses

    async def _drain(self, conversation_key: str) -> None:
        while not self._stopping:
            turn_id = await self._queue.head(conversation_key)
            if turn_id is None:
                return
            opened = await self._store.open(turn_id)
            if opened is not None:
                await self._answer(*opened)
            await self._queue.remove(conversation_key, turn_id)
            await self._store.forget(turn_id)

    async def _answer(self, turn: Turn, journal: TurnJournal) -> None:
        if journal.progress.delivered:
            return
        surface = self._surfaces(turn, journal)
        if journal.progress.attempts > MAX_ATTEMPTS:
            log.error("giving up on a turn after %d attempts %s", MAX_ATTEMPTS, turn.log_context())
            try:
                await place_answer(surface, journal)
                await surface.show_error(GAVE_UP)
            except ReplyImpossible as error:
                log.warning("could not say so either (%s) %s", error, turn.log_context())
            await journal.delivered()
            return
        await self._engine.run(turn, surface, journal)
