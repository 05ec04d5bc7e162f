"""Forgetting a conversation: everything of it, in Redis and at the model provider.

One mechanism serves `/tutor forget`, the *Forget this conversation* shortcut, `/tutor new`,
the retention sweep (bot.turns.retention) and the workspace purge. It takes two steps:

1. `detach`, under the conversation's lease (so no turn of it runs meanwhile): every key of
   the conversation goes (the map to its backend conversation, its queue, turn records,
   stop flags, indexes, usage totals, aliases, what the tutor features keep of it), and
   what is still to delete at the backend (its conversation, run and file ids) stays in a
   forget job. From then on a message in that Slack conversation starts a fresh one.
   A conversation with a question waiting or being answered is left as it is (BUSY): the
   person is asked to let that answer end, or stop it, rather than have it pulled from
   under a run that is still writing into it.
2. `finish` the job: delete at the backend (the conversation or thread, its stored
   responses, the `chat` history and run records), then the job itself. A job whose
   process died, or whose backend failed, is taken up again by the sweep (`resume_jobs`)
   of whichever process comes first.

The conversation's keys live in many hash slots on Redis Cluster (its queue and indexes in
its queue shard's, the others spread by name), so step 1 is a row of single-slot steps,
each safe to repeat (the same on one Redis):
  a. read what the conversation holds (its turn ids, runs, links, learners, files);
  b. record the forget job, with the name of every key to delete, before anything becomes
     unfindable;
  c. commit, in the queue shard's slot in one script: if a question waits, stop (BUSY: the
     job is dropped, nothing was deleted); else delete the conversation's turn index and
     askers (the index names its turn records: from here on only the job does);
  d. delete the keys the job names, the map to the backend conversation last;
  e. the job keeps only its backend part (or goes, when the backend holds nothing).

Why the BUSY check at (c) suffices: under the lease no turn runs, and only the lease's
holder takes a turn off the queue, so an empty queue at (c) means no question waits and none
was accepted since (a) (it would still be waiting). A question accepted after (c) goes to a
fresh index and waits for the lease; by the time it has it, the map is gone and it starts a
fresh conversation, as it did after the single transaction this used to be.

A process dying after (b) leaves a job that is due later; the sweep takes the conversation's
lease and does the Redis part again. While the map still names the job's conversation (or
there was none), (d) had not ended: the conversation is read afresh and what it holds is
deleted with what the job names (a question asked meanwhile went into the conversation being
forgotten, and goes with it). When the map is gone or names another one, (d) had ended and
only the backend part is left. Never an orphan: every key is named by the conversation's
indexes or by the job until it is deleted.

What remains afterwards are delivery markers (Slack ids, expiring within a day) and usage
totals that name no conversation.

The same jobs carry a forgotten course's materials (its files and vector store at the
provider, `record_deletes`): recorded before the course's keys are deleted (a step of its
own: the job and the course live in different slots on a cluster), finished right after,
retried by the sweep when the provider failed. Such a job is void while the course's state
key still names its vector store (`void_while`): the course's deletion did not happen (its
process died in between, or Redis failed), and nothing the course still uses is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

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
READY_SCAN_PAGE = 500
JOBS_PER_SWEEP = 50

# Take the jobs due now: each is moved on to its next retry time in the same step, so two
# processes never take the same job.
_TAKE_DUE_JOBS = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, job in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], job) end
return due
"""


# Step (c), in the conversation's queue shard: unless a question waits, its turn index and
# askers go. KEYS: its queue, turn index, askers, the shard's ready stream. Returns {0} (a
# question waits) or {1, the ready stream's newest entry id (if any)}.
_COMMIT = """
if redis.call('LLEN', KEYS[1]) > 0 then return {0} end
redis.call('DEL', KEYS[2], KEYS[3])
local newest = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
if #newest > 0 then return {1, newest[1][1]} end
return {1}
"""
# The conversation leaves the activity index unless a question came after it was read.
# KEYS: the index. ARGV: the conversation key, its time as read.
_DROP_ACTIVITY = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) <= tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


class ForgetOutcome(StrEnum):
    """How a request to forget a conversation ended."""

    FORGOTTEN = "forgotten"  # nothing of it is left, in Redis or at the backend
    PENDING = "pending"  # gone from Redis; the backend's copy is deleted by a later retry
    NOTHING = "nothing"  # the bot holds nothing of this conversation (or it is not idle)
    BUSY = "busy"  # a question of it is waiting or being answered: nothing was deleted


@dataclass(frozen=True)
class ForgetJob:
    """What is left to delete of a forgotten conversation: at the backend, and while its
    Redis part is unfinished (`in_redis`) also the keys named here."""

    job_id: str
    backend: str
    conversation_id: str  # "" when the backend holds no conversation, only files
    run_ids: tuple[str, ...] = ()
    file_ids: tuple[str, ...] = ()  # files uploaded for its attachments, or a course's
    vector_store_ids: tuple[str, ...] = ()  # a forgotten course's materials
    conversation_key: str = ""  # set while its Redis part is unfinished
    redis_keys: tuple[str, ...] = ()  # the keys to delete (the map to the backend aside)
    learners: tuple[str, ...] = ()  # whose recent topics name the conversation
    last_active: float | None = None  # its time in the activity index, as read
    void_while: str = ""  # a course's state key: void while it names one of the vector stores

    @property
    def in_redis(self) -> bool:
        return bool(self.conversation_key)

    @property
    def at_backend(self) -> bool:
        return bool(self.conversation_id or self.file_ids or self.vector_store_ids)

    def backend_part(self) -> ForgetJob:
        """The job without its Redis part (done)."""
        return replace(self, conversation_key="", redis_keys=(), learners=(), last_active=None)

    def encoded(self) -> dict[str, str]:
        fields = {
            "backend": self.backend,
            "conversation": self.conversation_id,
            "runs": json.dumps(list(self.run_ids)),
            "files": json.dumps(list(self.file_ids)),
            "vector_stores": json.dumps(list(self.vector_store_ids)),
            "void_while": self.void_while,
        }
        if self.in_redis:
            fields |= {
                "conversation_key": self.conversation_key,
                "keys": json.dumps(list(self.redis_keys)),
                "learners": json.dumps(list(self.learners)),
                "active": "" if self.last_active is None else repr(self.last_active),
            }
        return fields

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
            active = stored.get("active")
            return cls(
                job_id,
                stored["backend"],
                stored["conversation"],
                _strings(stored.get("runs")),
                _strings(stored.get("files")),
                _strings(stored.get("vector_stores")),
                stored.get("conversation_key", ""),
                _strings(stored.get("keys")),
                _strings(stored.get("learners")),
                float(active) if active else None,
                stored.get("void_while", ""),
            )
        except (KeyError, ValueError, TypeError):
            return None


# The fields of a job's Redis part, dropped once it is done.
REDIS_PART = ("conversation_key", "keys", "learners", "active")


def _strings(encoded: str | None) -> tuple[str, ...]:
    return tuple(map(str, json.loads(encoded or "[]")))


@dataclass(frozen=True)
class Holdings:
    """What a conversation holds in Redis, as read at step (a)."""

    waiting: int  # questions in its queue
    last_active: float | None
    conversation_id: str | None
    turn_ids: set[str]
    run_ids: set[str]
    linked: list[str]
    learners: set[str]
    file_ids: set[str]

    @property
    def nothing(self) -> bool:
        return self.last_active is None and self.conversation_id is None and not self.turn_ids


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
        self._commit = redis.register_script(_COMMIT)
        self._drop_activity = redis.register_script(_DROP_ACTIVITY)

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

        Raises redis errors: nothing was deleted, or (failing midway) the job is left for
        the sweep to finish.
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
            detached = await self._detach_under_lease(
                conversation_key,
                self._clock() if now is None else now,
                idle_before=idle_before,
            )
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
        if await self._void(job):
            log.info("forget job %s is void: its course was not deleted", job.job_id)
            await self._drop_job(job.job_id)
            return ForgetOutcome.NOTHING
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

    async def record_deletes(
        self,
        *,
        file_ids: Sequence[str],
        vector_store_ids: Sequence[str],
        void_while: str = "",
        now: float | None = None,
    ) -> ForgetJob | None:
        """Record a forget job for files and vector stores that are about to be no longer
        the bot's (a course's materials, whose keys the caller deletes next); None when there
        is nothing to delete. Then `finish` it, or `cancel` it if deleting the keys failed;
        should the process die first, the sweep takes it up (void while `void_while`, the
        course's state key, still names one of `vector_store_ids`)."""
        if not file_ids and not vector_store_ids:
            return None
        job = ForgetJob(
            new_job_id(),
            self._backend.name,
            "",
            file_ids=tuple(file_ids),
            vector_store_ids=tuple(vector_store_ids),
            void_while=void_while,
        )
        await self._record_job(job, (self._clock() if now is None else now) + JOB_RETRY_SECONDS)
        return job

    async def cancel(self, job: ForgetJob) -> None:
        """Drop a job whose deletion did not happen after all (best effort: a job left
        behind is void anyway)."""
        with contextlib.suppress(RedisError):
            await self._drop_job(job.job_id)

    async def _void(self, job: ForgetJob) -> bool:
        """A course's job whose course still uses one of its vector stores."""
        if not job.void_while or not job.vector_store_ids:
            return False
        named = await self._redis.hget(job.void_while, "vector_store")
        return named in job.vector_store_ids

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
            if job.in_redis:  # its process died during step 1: it is done again
                detached = await self._resume_in_redis(job, now)
                if detached.outcome is not ForgetOutcome.FORGOTTEN:
                    continue  # a question waits, or is being answered: later
                if detached.job is None:
                    finished += 1
                    continue
                job = detached.job
            if await self.finish(job) is ForgetOutcome.FORGOTTEN:
                finished += 1
        return finished

    # -- the first step ----------------------------------------------------------------------

    async def _resume_in_redis(self, job: ForgetJob, now: float) -> Detached:
        """Step 1 again for a job whose process died in it (see the module's docstring)."""
        token = await self._leases.acquire(job.conversation_key)
        if token is None:
            return Detached(ForgetOutcome.BUSY)
        try:
            mapping = self._keys.conversation(job.backend, job.conversation_key)
            mapped = await self._redis.get(mapping)
            if job.conversation_id and mapped != job.conversation_id:
                # The map went last: the Redis part had ended. What the conversation holds
                # now is a fresh conversation's.
                await self._keep_backend_part(job)
                return Detached(
                    ForgetOutcome.FORGOTTEN, job.backend_part() if job.at_backend else None
                )
            return await self._detach_under_lease(job.conversation_key, now, earlier=job)
        finally:
            await self._let_go(job.conversation_key, token)

    async def _detach_under_lease(
        self,
        conversation_key: str,
        now: float,
        *,
        idle_before: float | None = None,
        earlier: ForgetJob | None = None,
    ) -> Detached:
        """Steps (a) to (e), with the lease held; `earlier`: the job of a detach that was
        cut short, whose names are deleted too (and which is never dropped as BUSY)."""
        backend = self._backend.name if earlier is None else earlier.backend
        found = await self._holdings(backend, conversation_key)
        if found.waiting:
            return Detached(ForgetOutcome.BUSY)
        if earlier is None:
            if idle_before is not None and not _idle(found.last_active, idle_before):
                return Detached(ForgetOutcome.NOTHING)
            if found.nothing:
                return Detached(ForgetOutcome.NOTHING)
        job = self._job_for(conversation_key, backend, found, earlier)
        await self._record_job(job, due=None if earlier else now + JOB_RETRY_SECONDS)
        committed, *newest = await self._commit(
            keys=[
                self._keys.conversation_queue(conversation_key),
                self._keys.conversation_turns(conversation_key),
                self._keys.conversation_askers(conversation_key),
                self._keys.ready_stream_of(conversation_key),
            ]
        )
        if not committed:  # a question came after (a): nothing was deleted
            if earlier is None:
                await self._drop_job(job.job_id)
            return Detached(ForgetOutcome.BUSY)
        await self._delete_named(job)
        if newest:
            await self._drop_ready_entries(conversation_key, str(newest[0]))
        await self._redis.delete(self._keys.conversation(backend, conversation_key))
        await self._keep_backend_part(job)
        return Detached(ForgetOutcome.FORGOTTEN, job.backend_part() if job.at_backend else None)

    async def _holdings(self, backend: str, conversation_key: str) -> Holdings:
        """Step (a): what the conversation holds, in one round trip."""
        keys = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.llen(keys.conversation_queue(conversation_key))
            pipe.zscore(keys.activity, conversation_key)
            pipe.get(keys.conversation(backend, conversation_key))
            pipe.smembers(keys.conversation_turns(conversation_key))
            pipe.smembers(keys.conversation_runs(conversation_key))
            pipe.smembers(keys.conversation_links(conversation_key))
            pipe.smembers(keys.topic_learners(conversation_key))
            pipe.smembers(keys.provider_files(conversation_key))
            waiting, active, mapped, turns, runs, links, learners, files = await pipe.execute()
        return Holdings(
            waiting=int(waiting),
            last_active=active,
            conversation_id=mapped,
            turn_ids=set(turns),
            run_ids=set(runs),
            linked=sorted(k for k in links if k.startswith(keys.prefix)),
            learners=set(learners),
            file_ids=set(files),
        )

    def _job_for(
        self, conversation_key: str, backend: str, found: Holdings, earlier: ForgetJob | None
    ) -> ForgetJob:
        """The job of step (b): every key name to delete, and what the backend holds (with
        what an earlier attempt's job named)."""
        keys = self._keys
        names = [
            *(keys.turn(turn_id) for turn_id in sorted(found.turn_ids)),
            *(keys.stop(turn_id) for turn_id in sorted(found.turn_ids)),
            keys.conversation_runs(conversation_key),
            keys.conversation_links(conversation_key),
            *found.linked,
            keys.conversation_usage(conversation_key),
            # What the tutor features keep of it: the learners' topic entries (by
            # `learners`), its guided questions, its agent session's title mark, the files
            # uploaded for its attachments (deleted at the backend by the job).
            keys.topic_learners(conversation_key),
            keys.reveal_questions(conversation_key),
            keys.agent_session_titled(conversation_key),
            keys.provider_files(conversation_key),
        ]
        before = earlier or ForgetJob(new_job_id(), backend, "")
        return ForgetJob(
            before.job_id,
            backend,
            before.conversation_id or found.conversation_id or "",
            tuple(sorted(set(before.run_ids) | found.run_ids)),
            tuple(sorted(set(before.file_ids) | found.file_ids)),
            conversation_key=conversation_key,
            redis_keys=tuple(dict.fromkeys([*before.redis_keys, *names])),
            learners=tuple(sorted(set(before.learners) | found.learners)),
            last_active=found.last_active,
        )

    async def _record_job(self, job: ForgetJob, due: float | None) -> None:
        """Step (b); `due`: when another process may take it up (None: it is listed)."""
        async with self._redis.pipeline(transaction=True) as pipe:  # one slot: `{forget}`
            pipe.hset(self._keys.forget_job(job.job_id), mapping=job.encoded())
            if due is not None:
                pipe.zadd(self._keys.forget_jobs, {job.job_id: due})
            await pipe.execute()

    async def _delete_named(self, job: ForgetJob) -> None:
        """Step (d) but the map: the keys the job names (the cluster client deletes them
        slot by slot), the learners' topic entries and the activity entry."""
        if job.redis_keys:
            await self._redis.delete(*job.redis_keys)
        team = job.conversation_key.split(":", 1)[0]
        if job.learners:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user in job.learners:
                    pipe.hdel(self._keys.learner_topics(team, user), job.conversation_key)
                await pipe.execute()
        if job.last_active is not None:
            await self._drop_activity(
                keys=[self._keys.activity], args=[job.conversation_key, repr(job.last_active)]
            )

    async def _keep_backend_part(self, job: ForgetJob) -> None:
        """Step (e): the Redis part is done; the job stays for the backend, or goes."""
        if job.at_backend:
            await self._redis.hdel(self._keys.forget_job(job.job_id), *REDIS_PART)
        else:
            await self._drop_job(job.job_id)

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
