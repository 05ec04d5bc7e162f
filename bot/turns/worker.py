"""Answering queued turns: in order per conversation, many conversations at once, any process.

A worker reads "conversation has turns waiting" from the streams (one reader per queue shard,
see bot/turns/queue.py), takes the conversation's lease and answers its turns oldest first
until none is left. Entries it could not finish
(crash, shutdown) stay pending and are claimed by a worker again once the lease expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from typing import Any

from bot.logs import ids_bound
from bot.storage.connection import REDIS_ERRORS
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


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    consumer: str  # this process's name in the consumer group
    concurrency: int = 200  # conversations answered at once
    lease_seconds: float = 20.0  # how long a dead process blocks its conversations
    # How often to look for turns dead processes left, and to trim the stream.
    claim_every_seconds: float = 5.0


class TurnWorker:
    """Reads stream entries only into free slots: an entry read is handled at once, so it
    never waits idle long enough to look abandoned, and no entry has two handlers here."""

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
        self._slots = asyncio.Semaphore(settings.concurrency)  # one per handler running
        # What one shard's reader takes at most at once, so every shard gets slots.
        self._share = max(1, settings.concurrency // len(queue.shards))
        self._in_flight: dict[Entry, asyncio.Task[None]] = {}  # entry → its handler
        # Entries a handler here left pending on purpose (it failed, or the conversation's
        # lease is another's): taken again only once idle for a lease, by `_claim_stale`.
        self._left_pending: set[str] = set()
        self._draining: set[str] = set()
        self._stopping = False
        self._readers: list[asyncio.Task[None]] = []
        self._group_ready = False
        # Per shard: where to read on among a previous run's entries; None once all taken.
        self._own_pending_after: dict[int, str | None] = dict.fromkeys(queue.shards, "0")
        self._next_chores = dict.fromkeys(queue.shards, 0.0)

    @property
    def in_flight(self) -> int:
        """Conversations this process is answering now."""
        return len(self._in_flight)

    async def start(self) -> None:
        """Start taking turns (first those this consumer left pending before a restart)."""
        for shard in self._queue.shards:
            reader = asyncio.create_task(self._read_loop(shard))
            reader.add_done_callback(functools.partial(_log_failure, f"turn reader {shard}"))
            self._readers.append(reader)

    async def stop(self, grace_seconds: float) -> None:
        """Stop taking turns; give those in flight `grace_seconds`, then hand them back."""
        self._stopping = True
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self._in_flight:
            _, unfinished = await asyncio.wait(set(self._in_flight.values()), timeout=grace_seconds)
            for handler in unfinished:
                handler.cancel()
            if unfinished:
                log.warning("handed back %d conversations still in flight", len(unfinished))
                await asyncio.gather(*unfinished, return_exceptions=True)

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every accepted turn has been answered (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while self._in_flight or await self._queue.unfinished():
            if time.monotonic() > deadline:
                raise TimeoutError("turns still unanswered")
            await asyncio.sleep(0.02)

    async def _read_loop(self, shard: int) -> None:
        while not self._stopping:
            free = await self._take_free_slots()
            try:
                for entry, fresh in await self._next_entries(shard, free):
                    if entry not in self._in_flight:
                        self._spawn(entry, fresh)  # the handler gives its slot back
                        free -= 1
            except REDIS_ERRORS as error:
                log.warning("turn queue unreachable (%s); retrying", type(error).__name__)
                self._group_ready = False
                await asyncio.sleep(REDIS_RETRY_SECONDS)
            except Exception:
                log.exception("reading the turn queue failed; retrying")
                await asyncio.sleep(REDIS_RETRY_SECONDS)
            finally:
                for _ in range(free):
                    self._slots.release()

    async def _take_free_slots(self) -> int:
        """Wait for a free slot, then take the free ones up to this reader's share; how many
        were taken."""
        await self._slots.acquire()
        taken = 1
        while taken < self._share and not self._slots.locked():
            await self._slots.acquire()  # free: returns at once
            taken += 1
        return taken

    async def _next_entries(self, shard: int, wanted: int) -> list[tuple[Entry, bool]]:
        """Up to `wanted` entries of `shard`, with whether each is fresh (never read before):
        first those a previous run of this consumer left, then (now and then) those of dead
        consumers, then new ones."""
        consumer = self._settings.consumer
        if not self._group_ready:  # at start, and after Redis lost its data
            await self._queue.ensure_group()
            self._group_ready = True
        after = self._own_pending_after[shard]
        if after is not None:
            own, self._own_pending_after[shard] = await self._queue.read_own_pending(
                consumer, wanted, after, shard
            )
            return [(entry, False) for entry in own]
        if time.monotonic() >= self._next_chores[shard]:
            self._next_chores[shard] = time.monotonic() + self._settings.claim_every_seconds
            await self._queue.trim(shard)
            found = await self._orphans(shard, wanted)
            found += await self._claim_stale(shard, wanted - len(found))
            if found:
                return [(entry, False) for entry in found]
        fresh = await self._queue.read_new(consumer, wanted, READ_BLOCK_MS, shard)
        return [(entry, True) for entry in fresh]

    async def _orphans(self, shard: int, wanted: int) -> list[Entry]:
        """Entries delivered to this consumer that no handler here ever got: Redis recorded
        the read, but its reply was lost with the connection (Redis restarting, failing
        over) and the client read again. Without this they would wait a whole lease to be
        claimed as abandoned."""
        if wanted <= 0:
            return []
        consumer = self._settings.consumer
        pending = await self._queue.own_pending_ids(consumer, self._settings.concurrency, shard)
        self._left_pending &= set(pending)
        busy = {entry_id for entry_id, _ in self._in_flight} | self._left_pending
        lost = [entry_id for entry_id in pending if entry_id not in busy][:wanted]
        found = await self._queue.take_back(consumer, lost, shard)
        if found:
            log.warning("took back %d turn queue entries whose read was lost", len(found))
        return found

    async def _claim_stale(self, shard: int, wanted: int) -> list[Entry]:
        """Up to `wanted` entries idle for longer than a lease, other than ours in flight (for
        those the claim only reset their idle time)."""
        stale_ms = int(self._settings.lease_seconds * 1000)
        found: list[Entry] = []
        start = "0-0"
        while True:
            claimed, start = await self._queue.claim_stale(
                self._settings.consumer, stale_ms, wanted - len(found), start, shard
            )
            found.extend(entry for entry in claimed if entry not in self._in_flight)
            if start == "0-0" or len(found) >= wanted:
                return found

    def _spawn(self, entry: Entry, fresh: bool) -> None:
        self._left_pending.discard(entry[0])
        handler = asyncio.create_task(self._handle(entry, fresh))
        self._in_flight[entry] = handler
        handler.add_done_callback(lambda _: self._in_flight.pop(entry, None))

    async def _handle(self, entry: Entry, fresh: bool) -> None:
        """Drain the entry's conversation, or leave it to whoever holds its lease; then give
        back the slot taken for it.

        A fresh entry whose conversation is leased elsewhere is acknowledged: the holder's
        own entry stays pending while it drains, so either the holder (checking the queue
        again as it lets go) or, if it died, whoever claims that entry answers the turn.
        An entry taken over from a dead consumer stays pending instead, since the lease it
        runs into may be that dead consumer's own. An entry whose handling failed stays
        pending too: it is claimed again once idle for a lease, and the turn's attempts
        are counted, so a turn that keeps failing is given up on.
        """
        entry_id, conversation_key = entry
        try:
            if conversation_key in self._draining:
                # Our drain loop takes a new turn too. A claimed entry (one a dead process
                # left for this conversation) stays pending: acknowledging it would lose the
                # turn if this process died before finishing it.
                if fresh:
                    await self._queue.ack(entry)
                else:
                    self._left_pending.add(entry_id)
                return
            drained = await self._drain_with_lease(entry)
            if not drained and fresh:
                await self._queue.ack(entry)
            elif not drained:
                self._left_pending.add(entry_id)
        except REDIS_ERRORS as error:
            # The entry stays pending and is claimed again once Redis is back.
            log.warning("lost Redis while answering (%s) %s", error, conversation_key)
            self._left_pending.add(entry_id)
        except Exception:
            self._left_pending.add(entry_id)
            turn_id = await self._failed_turn(conversation_key)
            log.exception(
                "answering failed; tried again later (conversation %s, turn %s, entry %s)",
                conversation_key,
                turn_id,
                entry_id,
            )
        finally:
            self._slots.release()

    async def _failed_turn(self, conversation_key: str) -> str:
        """The turn a drain was at when it failed (the oldest still waiting), for the log."""
        try:
            return await self._queue.head(conversation_key) or "-"
        except REDIS_ERRORS:
            return "?"

    async def _drain_with_lease(self, entry: Entry) -> bool:
        """Answer the conversation's waiting turns under its lease; False if leased elsewhere."""
        conversation_key = entry[1]
        token = await self._leases.acquire(conversation_key)
        if token is None:
            return False
        self._draining.add(conversation_key)
        drain = asyncio.create_task(self._drain(conversation_key))
        keeper = asyncio.create_task(self._keep_lease(conversation_key, token, entry, drain))
        keeper.add_done_callback(
            functools.partial(_log_failure, f"keeping the lease of {conversation_key}")
        )
        try:
            await drain
        finally:
            keeper.cancel()
            with contextlib.suppress(*REDIS_ERRORS):
                await self._leases.release(conversation_key, token)
            self._draining.discard(conversation_key)
        await self._queue.ack(entry)
        if await self._queue.waiting(conversation_key):
            await self._queue.announce(conversation_key)  # a turn arrived as we finished
        return True

    async def _keep_lease(
        self, key: str, token: str, entry: Entry, drain: asyncio.Task[None]
    ) -> None:
        """Renew the lease while draining, and keep the entry from looking abandoned (its
        idle time is what other processes claim by); stop the drain if the lease was lost,
        or may have been: not renewed for as long as it lasts, another process may hold it.

        Any failure of a renewal is a missed renewal, not the end of the keeper: a client
        may fail in ways outside RedisError while a cluster fails over, and a keeper that
        died would let the lease lapse under a drain that goes on (answers twice)."""
        interval = self._leases.milliseconds / 3000
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self._leases.renew(key, token):
                    log.error("lost the lease of %s; stopping", key)
                    drain.cancel()
                    return
                renewed = time.monotonic()
                await self._queue.touch(self._settings.consumer, entry)
            except Exception as error:  # the next renewal may work: room for two misses
                log.warning("lease of %s not renewed (%s)", key, type(error).__name__)
                if time.monotonic() - renewed >= self._leases.milliseconds / 1000:
                    log.error("could not renew the lease of %s in time; stopping", key)
                    drain.cancel()
                    return

    async def _drain(self, conversation_key: str) -> None:
        while not self._stopping:
            turn_id = await self._queue.head(conversation_key)
            if turn_id is None:
                return
            opened = await self._store.open(turn_id)
            if opened is not None:
                await self._answer(*opened)
            # However the turn ended, it no longer waits: off its asker's count too.
            await self._queue.remove(conversation_key, turn_id, opened[0] if opened else None)
            await self._store.forget(turn_id)

    async def _answer(self, turn: Turn, journal: TurnJournal) -> None:
        if journal.progress.delivered:
            return
        with ids_bound(**turn.log_context(), run=journal.progress.run_id):
            await self._answer_now(turn, journal)

    async def _answer_now(self, turn: Turn, journal: TurnJournal) -> None:
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


def _log_failure(what: str, task: asyncio.Task[Any]) -> None:
    """Log how a background task failed (which also marks its exception as retrieved)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("%s failed", what, exc_info=error)
