"""Forgetting a conversation: everything of it, in Redis and at the model provider.

One mechanism serves `/tutor forget`, the *Forget this conversation* shortcut, `/tutor new`
and the retention sweep (bot.turns.retention). It takes two steps:

1. `detach`, under the conversation's lease (so no turn of it runs meanwhile) and in one
   Redis transaction: every key of the conversation goes (the map to its backend
   conversation, its queue, turn records, stop flags, index, usage totals and aliases),
   and what is still to delete at the backend (its conversation and run ids) becomes a
   forget job. From then on a message in that Slack conversation starts a fresh one.
   A conversation with a question waiting or being answered is left as it is (BUSY): the
   person is asked to let that answer end, or stop it, rather than have it pulled from
   under a run that is still writing into it.
2. `finish` the job: delete at the backend (the conversation or thread, its stored
   responses, the `chat` history and run records), then the job itself. A job whose
   process died, or whose backend failed, is taken up again by the sweep (`resume_jobs`)
   of whichever process comes first.

What remains afterwards are delivery markers (Slack ids, expiring within a day) and usage
totals that name no conversation.

The same jobs carry a forgotten course's materials (its files and vector store at the
provider, `queue_deletes`): recorded in the transaction that deletes the course's keys,
finished at once, retried by the sweep when the provider failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, ResponseError, WatchError

from bot.storage.keys import WORKER_GROUP, Keys
from bot.turns.lease import ConversationLeases
from bot.turns.queue import TurnQueue

log = logging.getLogger(__name__)

# The process that made a forget job works on it at once; any process may take it up once
# it is due: this long after it was made or last tried (its process died, or it failed).
JOB_RETRY_SECONDS = 300.0
# A job that failed this often (a day of retries) is dropped, its ids logged.
MAX_JOB_ATTEMPTS = 288
# Deleting at the backend may take this long; past it the job is left for a retry.
BACKEND_DELETE_SECONDS = 60.0
DETACH_ATTEMPTS = 20  # tries of the detach transaction while the conversation's keys change
READY_SCAN_PAGE = 500
JOBS_PER_SWEEP = 50

# Take the jobs due now: each is moved on to its next retry time in the same step, so two
# processes never take the same job.
_TAKE_DUE_JOBS = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, job in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], job) end
return due
"""


class ForgetOutcome(StrEnum):
    """How a request to forget a conversation ended."""

    FORGOTTEN = "forgotten"  # nothing of it is left, in Redis or at the backend
    PENDING = "pending"  # gone from Redis; the backend's copy is deleted by a later retry
    NOTHING = "nothing"  # the bot holds nothing of this conversation (or it is not idle)
    BUSY = "busy"  # a question of it is waiting or being answered: nothing was deleted


@dataclass(frozen=True)
class ForgetJob:
    """What is left to delete at the backend once a conversation is gone from Redis."""

    job_id: str
    backend: str
    conversation_id: str  # "" when the backend holds no conversation, only files
    run_ids: tuple[str, ...] = ()
    file_ids: tuple[str, ...] = ()  # files uploaded for its attachments, or a course's
    vector_store_ids: tuple[str, ...] = ()  # a forgotten course's materials

    def encoded(self) -> dict[str, str]:
        return {
            "backend": self.backend,
            "conversation": self.conversation_id,
            "runs": json.dumps(list(self.run_ids)),
            "files": json.dumps(list(self.file_ids)),
            "vector_stores": json.dumps(list(self.vector_store_ids)),
        }

    def described(self) -> str:
        """Its ids, for the logs (ids only: no text)."""
        return (
            f"conversation {self.conversation_id or 'none'}, runs "
            f"{', '.join(self.run_ids) or 'none'}, files {', '.join(self.file_ids) or 'none'}, "
            f"vector stores {', '.join(self.vector_store_ids) or 'none'}"
        )

    @classmethod
    def decoded(cls, job_id: str, stored: dict[str, str]) -> ForgetJob | None:
        """The job as stored; None for a record that is not one (half written, damaged)."""
        try:
            runs = json.loads(stored.get("runs") or "[]")
            files = json.loads(stored.get("files") or "[]")
            stores = json.loads(stored.get("vector_stores") or "[]")
            return cls(
                job_id,
                stored["backend"],
                stored["conversation"],
                tuple(map(str, runs)),
                tuple(map(str, files)),
                tuple(map(str, stores)),
            )
        except (KeyError, ValueError, TypeError):
            return None


@dataclass(frozen=True)
class Detached:
    """The first step's result; `job` is what the backend still holds (None: nothing)."""

    outcome: ForgetOutcome  # FORGOTTEN, NOTHING or BUSY
    job: ForgetJob | None = None


class BackendDeleter(Protocol):
    """What forgetting needs of a backend (see bot.backends.base.Backend)."""

    name: str

    async def delete_conversation(self, conversation_id: str, run_ids: Sequence[str]) -> None: ...

    async def delete_file(self, file_id: str) -> None: ...

    async def delete_vector_store(self, vector_store_id: str) -> None: ...


def new_job_id() -> str:
    return "forget_" + uuid.uuid4().hex


class ConversationForgetter:
    """Forgets Slack conversations (by conversation key) for every surface and the sweep."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        backend: BackendDeleter,
        leases: ConversationLeases,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._backend = backend
        self._leases = leases
        self._clock = clock
        self._queue = TurnQueue(redis, keys)
        self._take_due_jobs = redis.register_script(_TAKE_DUE_JOBS)

    @property
    def backend_name(self) -> str:
        return self._backend.name

    async def knows(self, conversation_key: str) -> bool:
        """True when the bot holds something of this conversation (a question was asked)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(self._keys.conversation(self._backend.name, conversation_key))
            pipe.zscore(self._keys.activity, conversation_key)
            mapped, last_active = await pipe.execute()
        return bool(mapped) or last_active is not None

    async def asked_in(self, conversation_key: str, user_id: str) -> bool:
        """True when `user_id` asked a question in this conversation (may forget it)."""
        askers = self._keys.conversation_askers(conversation_key)
        return bool(await self._redis.sismember(askers, user_id))

    async def forget(self, conversation_key: str) -> ForgetOutcome:
        """Both steps: gone from Redis, then from the backend (PENDING if it failed there).

        Raises redis errors (nothing is deleted when the first step fails).
        """
        detached = await self.detach(conversation_key)
        if detached.job is None:
            return detached.outcome
        return await self.finish(detached.job)

    async def detach(
        self,
        conversation_key: str,
        *,
        idle_before: float | None = None,
        now: float | None = None,
    ) -> Detached:
        """Step 1: delete every key of the conversation and record what the backend holds.

        With `idle_before` (the retention sweep) only a conversation whose last question
        came before that time is detached (else NOTHING). `now` dates the job. Raises
        redis errors.
        """
        token = await self._leases.acquire(conversation_key)
        if token is None:  # a turn of it is being answered right now
            return Detached(ForgetOutcome.BUSY)
        try:
            detached, last_entry = await self._detach_under_lease(
                conversation_key, idle_before, self._clock() if now is None else now
            )
            if detached.outcome is ForgetOutcome.FORGOTTEN and last_entry is not None:
                await self._drop_ready_entries(conversation_key, last_entry)
        finally:
            await self._let_go(conversation_key, token)
        if detached.outcome is ForgetOutcome.FORGOTTEN:
            log.info("forgot conversation %s (in Redis)", conversation_key)
        return detached

    async def finish(self, job: ForgetJob) -> ForgetOutcome:
        """Step 2: delete at the backend what the job names, then the job. PENDING when the
        backend failed (or is not this process's): the job is tried again later."""
        if job.backend != self._backend.name:
            log.warning(
                "forget job %s is for the %s backend, this process runs %s: left for later",
                job.job_id,
                job.backend,
                self._backend.name,
            )
            return ForgetOutcome.PENDING
        try:
            async with asyncio.timeout(BACKEND_DELETE_SECONDS):
                if job.conversation_id:
                    await self._backend.delete_conversation(job.conversation_id, job.run_ids)
                for file_id in job.file_ids:
                    await self._backend.delete_file(file_id)
                for vector_store_id in job.vector_store_ids:
                    await self._backend.delete_vector_store(vector_store_id)
        except Exception as error:  # any failure: the job stays and is tried again
            log.warning(
                "could not delete at the backend yet (%s: %s): forget job %s (%s) is tried "
                "again later",
                type(error).__name__,
                error,
                job.job_id,
                job.described(),
            )
            await self._job_failed(job)
            return ForgetOutcome.PENDING
        await self._drop_job(job.job_id)
        log.info("deleted at the %s backend: %s", job.backend, job.described())
        return ForgetOutcome.FORGOTTEN

    def queue_deletes(
        self,
        pipe: Pipeline,
        *,
        file_ids: Sequence[str],
        vector_store_ids: Sequence[str],
        now: float | None = None,
    ) -> ForgetJob | None:
        """Record, in `pipe` (a transaction the caller executes, deleting its own keys in
        the same step), a forget job for files and vector stores that are no longer the
        bot's (a forgotten course's materials); None when there is nothing to delete.
        Once executed, `finish` the job; should that fail, the sweep retries it."""
        if not file_ids and not vector_store_ids:
            return None
        job = ForgetJob(
            new_job_id(),
            self._backend.name,
            "",
            file_ids=tuple(file_ids),
            vector_store_ids=tuple(vector_store_ids),
        )
        due = (self._clock() if now is None else now) + JOB_RETRY_SECONDS
        pipe.hset(self._keys.forget_job(job.job_id), mapping=job.encoded())
        pipe.zadd(self._keys.forget_jobs, {job.job_id: due})
        return job

    async def resume_jobs(self, now: float | None = None) -> int:
        """Finish the forget jobs that are due (their process died, or the backend failed
        before); how many were finished. Two processes never take the same job."""
        now = self._clock() if now is None else now
        due = await self._take_due_jobs(
            keys=[self._keys.forget_jobs], args=[now, now + JOB_RETRY_SECONDS, JOBS_PER_SWEEP]
        )
        finished = 0
        for job_id in due:
            stored = await self._redis.hgetall(self._keys.forget_job(job_id))
            job = ForgetJob.decoded(job_id, stored)
            if job is None:
                await self._drop_job(job_id)
                continue
            if await self.finish(job) is ForgetOutcome.FORGOTTEN:
                finished += 1
        return finished

    # -- the first step ----------------------------------------------------------------------

    async def _detach_under_lease(
        self, conversation_key: str, idle_before: float | None, now: float
    ) -> tuple[Detached, str | None]:
        """The transaction of step 1 (we hold the lease); and the ready stream's last entry
        at that moment (entries up to it that name the conversation are stale)."""
        keys = self._keys
        queue = keys.conversation_queue(conversation_key)
        mapping = keys.conversation(self._backend.name, conversation_key)
        turns = keys.conversation_turns(conversation_key)
        runs = keys.conversation_runs(conversation_key)
        links = keys.conversation_links(conversation_key)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(DETACH_ATTEMPTS):
                try:
                    # A question accepted meanwhile changes the queue: the transaction fails.
                    await pipe.watch(queue, mapping, turns, runs, links)
                    if await pipe.llen(queue):
                        return Detached(ForgetOutcome.BUSY), None
                    last_active = await pipe.zscore(keys.activity, conversation_key)
                    if idle_before is not None and not _idle(last_active, idle_before):
                        return Detached(ForgetOutcome.NOTHING), None
                    conversation_id = await pipe.get(mapping)
                    turn_ids = await pipe.smembers(turns)
                    run_ids = sorted(await pipe.smembers(runs))
                    linked = [k for k in await pipe.smembers(links) if k.startswith(keys.prefix)]
                    if last_active is None and conversation_id is None and not turn_ids:
                        return Detached(ForgetOutcome.NOTHING), None
                    learners = await pipe.smembers(keys.topic_learners(conversation_key))
                    file_ids = sorted(await pipe.smembers(keys.provider_files(conversation_key)))
                    last_entry = await self._last_ready_entry(pipe, conversation_key)
                    job = None
                    if conversation_id is not None or file_ids:
                        job = ForgetJob(
                            new_job_id(),
                            self._backend.name,
                            conversation_id or "",
                            tuple(run_ids),
                            tuple(file_ids),
                        )
                    pipe.multi()
                    if job is not None:
                        pipe.hset(keys.forget_job(job.job_id), mapping=job.encoded())
                        pipe.zadd(keys.forget_jobs, {job.job_id: now + JOB_RETRY_SECONDS})
                    pipe.delete(
                        mapping,
                        queue,
                        turns,
                        runs,
                        links,
                        keys.conversation_askers(conversation_key),
                        keys.conversation_usage(conversation_key),
                        # What the tutor features keep of it: the learners' topic entries
                        # (below), its guided questions, its agent session's title mark,
                        # the files uploaded for its attachments (deleted by the job).
                        keys.topic_learners(conversation_key),
                        keys.reveal_questions(conversation_key),
                        keys.agent_session_titled(conversation_key),
                        keys.provider_files(conversation_key),
                        *linked,
                        *(keys.turn(turn_id) for turn_id in turn_ids),
                        *(keys.stop(turn_id) for turn_id in turn_ids),
                    )
                    team = conversation_key.split(":", 1)[0]
                    for user in learners:
                        pipe.hdel(keys.learner_topics(team, user), conversation_key)
                    pipe.zrem(keys.activity, conversation_key)
                    await pipe.execute()
                    return Detached(ForgetOutcome.FORGOTTEN, job), last_entry
                except WatchError:
                    continue
        raise WatchError(f"conversation {conversation_key} kept changing while being forgotten")

    async def _last_ready_entry(self, pipe: Pipeline, conversation_key: str) -> str | None:
        """The newest entry of the conversation's shard of the ready stream."""
        newest = await pipe.xrevrange(self._keys.ready_stream_of(conversation_key), count=1)
        return str(newest[0][0]) if newest else None

    async def _drop_ready_entries(self, conversation_key: str, last_entry: str) -> None:
        """Delete the ready stream's entries (up to `last_entry`) that name the conversation:
        its queue was empty, so they announce nothing. They are acknowledged too, so none
        stays pending for a worker to claim."""
        stream = self._keys.ready_stream_of(conversation_key)
        start = "-"
        while True:
            entries = await self._redis.xrange(stream, start, last_entry, count=READY_SCAN_PAGE)
            naming = [
                entry_id
                for entry_id, fields in entries
                if fields and fields.get("conversation") == conversation_key
            ]
            if naming:
                with contextlib.suppress(ResponseError):  # no consumer group yet
                    await self._redis.xack(stream, WORKER_GROUP, *naming)
                await self._redis.xdel(stream, *naming)
            if len(entries) < READY_SCAN_PAGE:
                return
            start = "(" + str(entries[-1][0])

    async def _let_go(self, conversation_key: str, token: str) -> None:
        """Release the lease (its key names the conversation, so it goes); a question that
        arrived meanwhile is announced again, since a worker that found the lease taken
        let its announcement go."""
        with contextlib.suppress(RedisError):  # the lease expires by itself
            await self._leases.release(conversation_key, token)
            if await self._queue.waiting(conversation_key):
                await self._queue.announce(conversation_key)

    # -- jobs --------------------------------------------------------------------------------

    async def _job_failed(self, job: ForgetJob) -> None:
        """Count the failure; after too many the job is dropped, its ids logged."""
        try:
            attempts = await self._redis.hincrby(self._keys.forget_job(job.job_id), "attempts", 1)
            if attempts < MAX_JOB_ATTEMPTS:
                return
            log.error(
                "gave up deleting at the %s backend after %d attempts: %s",
                job.backend,
                attempts,
                job.described(),
            )
            await self._drop_job(job.job_id)
        except RedisError as error:  # the job is still due later
            log.warning("could not count a failed forget job (%s)", type(error).__name__)

    async def _drop_job(self, job_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.forget_job(job_id))
            pipe.zrem(self._keys.forget_jobs, job_id)
            await pipe.execute()


def _idle(last_active: float | None, idle_before: float) -> bool:
    """True when the conversation's last question came before `idle_before` (None: it is
    not in the index any more, so another process forgot it)."""
    return last_active is not None and last_active <= idle_before
