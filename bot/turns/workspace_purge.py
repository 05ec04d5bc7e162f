"""Deleting a workspace's data some time after it removed the bot (OAuth mode).

When a workspace uninstalls the bot (`app_uninstalled`, `tokens_revoked`), its installation
is deleted at once (bot.slack.listeners.uninstall) and its data is scheduled for deletion
after the retention period (TUTOR_RETENTION_DAYS, 30 by default; 0: at the next check, as
nobody there can ask for the conversations any more). Installing the bot again before then
keeps the data: saving an installation cancels its workspace's purge.

The schedule is a Redis sorted set (team id by due time) shared by every process. Each process
looks at it now and then (`run_forever`) and purges what is due, taking each workspace in one
atomic step that also moves its due time on: two processes never purge the same workspace at
once, and a process that dies mid-purge leaves it to be taken up again later.

A purge deletes what can be found by the workspace's team id:
- each of its conversations (every key `conv:<backend>:<team>:…`): first the `forget` hook
  (the app's deletes the conversation at the backend, as `/tutor new` does, best effort), then
  the map entry itself;
- the conversations' token totals (`usage:conversation:<team>:…`), the /tutor thread aliases
  (`command-thread:<team>:…`), agent-session titles, and the workspace's status-edit budget
  (`edit-budget:<team>`);
- each course's materials: the `forget_course` hook (the app's deletes its files and vector
  store at the provider through a forget job, retried until done, and its keys), then
  whatever keys are left;
- its courses, learners' choices, channels and recent topics, guided questions kept for
  "Show me the answer", per-channel figures and token totals, feedback counts and comments,
  quiz scores and totals (every key named by the team id, see bot.storage.keys).
It leaves what expires by itself (delivery markers within a day; turn records, keyed by turn,
and the `chat` backend's run records within a week; leases; a conversation's queue is gone
once its turns are answered) and the daily usage totals per workspace (counts, no text).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.storage.keys import Keys

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 24 * 60 * 60
DEFAULT_RETENTION_DAYS = 30.0
# A purge taken up but not finished (its process died) is taken up again this much later.
RETRY_SECONDS = 3600.0
# How often each process looks for purges that are due.
CHECK_EVERY_SECONDS = 300.0
WORKSPACES_PER_CHECK = 10
DELETE_BATCH = 500

# Forgets one Slack conversation (by its key) beyond the map entry: at the backend, and so on.
ForgetConversation = Callable[[str], Awaitable[None]]
# Forgets one course's materials (team id, channel id): at the provider and in Redis.
ForgetCourse = Callable[[str, str], Awaitable[None]]

# The due purges (up to ARGV[3]), each moved on to ARGV[2] in the same step: taken.
_TAKE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, team in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], team) end
return due
"""
# Done: removed unless it was scheduled anew meanwhile (another uninstall after a reinstall).
_REMOVE_IF_TAKEN = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""


class WorkspacePurges:
    """Schedules and carries out the deletion of uninstalled workspaces' data."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        forget: ForgetConversation,
        *,
        forget_course: ForgetCourse | None = None,
        backends: Sequence[str],
        retention_days: float = DEFAULT_RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._forget = forget
        self._forget_course = forget_course
        self._backends = tuple(backends)
        self.retention_seconds = retention_days * SECONDS_PER_DAY
        self.clock = clock
        self._take_due = redis.register_script(_TAKE_DUE)
        self._remove_if_taken = redis.register_script(_REMOVE_IF_TAKEN)

    async def schedule(self, team_id: str) -> float:
        """Purge the workspace's data once the retention period has passed; the due time
        (epoch seconds). A purge already scheduled keeps its earlier time."""
        due = self.clock() + self.retention_seconds
        await self._redis.zadd(self._keys.workspace_purges, {team_id: due}, nx=True)
        return float(await self._redis.zscore(self._keys.workspace_purges, team_id) or due)

    async def scheduled(self, team_id: str) -> float | None:
        """When the workspace's data is purged; None when no purge is scheduled."""
        return await self._redis.zscore(self._keys.workspace_purges, team_id)

    async def run_due(self, limit: int = WORKSPACES_PER_CHECK) -> list[str]:
        """Purge the workspaces that are due; the team ids purged."""
        now = self.clock()
        retry_at = repr(now + RETRY_SECONDS)
        taken = await self._take_due(
            keys=[self._keys.workspace_purges], args=[repr(now), retry_at, limit]
        )
        purged = []
        for team_id in taken:
            if await self._redis.exists(self._keys.installation(team_id)):
                log.info("team %s installed the bot again: its data is kept", team_id)
            else:
                await self.purge(team_id)
                purged.append(team_id)
            await self._remove_if_taken(
                keys=[self._keys.workspace_purges], args=[team_id, retry_at]
            )
        return purged

    async def purge(self, team_id: str) -> int:
        """Delete every key of the workspace found by its team id (see the module's
        docstring); the number of keys deleted."""
        deleted = 0
        for backend in self._backends:
            start = self._keys.conversation(backend, "")
            async for key in self._scan(self._keys.conversation(backend, f"{team_id}:")):
                conversation_key = key[len(start) :]
                try:
                    await self._forget(conversation_key)
                except Exception as error:  # best effort at the backend, as /tutor new
                    log.warning(
                        "a purged conversation was not deleted at the backend (%s) team=%s",
                        type(error).__name__,
                        team_id,
                    )
                deleted += await self._redis.delete(key)
        await self._forget_courses(team_id)
        patterns = (
            self._keys.conversation_usage(f"{team_id}:"),
            self._keys.command_thread(f"{team_id}:"),
            self._keys.agent_session_titled(f"{team_id}:"),
            # Courses, learners, their topics and guided questions, quizzes, feedback.
            self._keys.course(team_id, ""),
            self._keys.learner(team_id, ""),
            self._keys.learner_channels(team_id, ""),
            self._keys.course_learners(team_id, ""),
            self._keys.learner_topics(team_id, ""),
            self._keys.topic_learners(f"{team_id}:"),
            self._keys.reveal_questions(f"{team_id}:"),
            self._keys.feedback_comments(team_id, ""),
            self._keys.quiz_learner_scores(team_id, ""),
            self._keys.quiz_course_learners(f"{team_id}:"),
            self._keys.materials(team_id, ""),
            self._keys.materials_state(team_id, ""),
            self._keys.material_chunks(team_id, ""),
        )
        for prefix in patterns:
            batch: list[str] = []
            async for key in self._scan(prefix):
                batch.append(key)
                if len(batch) >= DELETE_BATCH:
                    deleted += await self._redis.unlink(*batch)
                    batch = []
            if batch:
                deleted += await self._redis.unlink(*batch)
        deleted += await self._redis.unlink(
            self._keys.edit_budget(team_id),
            self._keys.course_names(team_id),
            self._keys.course_stats(team_id),
            self._keys.channel_usage(team_id),
            self._keys.feedback_counts(team_id),
            self._keys.quiz_course_totals(team_id),
        )
        log.info("purged the data of team %s (%d keys)", team_id, deleted)
        return deleted

    async def _forget_courses(self, team_id: str) -> None:
        """Each course with materials: its files and vector store at the provider (through
        a forget job, retried by the sweep should the provider fail), then its keys. A
        failure here (Redis) stops the purge before those ids are lost: it is taken up
        again later."""
        if self._forget_course is None:
            return
        channels: set[str] = set()
        for name_of in (self._keys.materials, self._keys.materials_state):
            start = name_of(team_id, "")
            channels.update([key[len(start) :] async for key in self._scan(start)])
        for channel_id in sorted(channels):
            await self._forget_course(team_id, channel_id)

    async def run_forever(self, every_seconds: float = CHECK_EVERY_SECONDS) -> None:
        """Purge what is due now and then, until cancelled; failures wait for the next time."""
        while True:
            try:
                await self.run_due()
            except (RedisError, OSError) as error:
                log.warning("workspace purges not checked (%s)", type(error).__name__)
            await asyncio.sleep(every_seconds)

    def _scan(self, prefix: str) -> AsyncIterator[str]:
        return self._redis.scan_iter(match=_glob_literal(prefix) + "*", count=DELETE_BATCH)


def _glob_literal(text: str) -> str:
    """`text` in a Redis glob pattern, taken literally."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
