"""Slack's agent sessions: a thread's status, its title and the native Stop button.

Where the app is declared an agent, Slack shows each thread it works in as a session: a
lifecycle status (`agents.sessions.setStatus`), a title (`agents.sessions.rename`) and,
while the status is `processing`, a Stop button that sends `agent_session_stopped`. The
status takes only the four lifecycle words; the readable words ("is writing an answer…")
stay with `assistant.threads.setStatus`.

The bot sets `processing` when it starts working on a question of the thread, and when the
reply is there `active` (the session waits for the next question) or `suspended` (the reply
ends with a question to the learner: the session waits for them). `closed` is for a
conversation that ends for good. A streamed answer sets its final status with
`chat.stopStream` (`session_status`) instead.

Everything here is cosmetic for the answer: a failed call is logged and dropped. With
`TUTOR_AGENT_SESSIONS=auto` a workspace where Slack answers `not_authorized` (the app is no
agent there) is left alone for an hour, so a non-agent app behaves as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError

from bot.settings import AgentSessionsMode
from bot.slack.assistant_threads import THREAD_TTL_SECONDS, thread_title
from bot.slack.client import slack_error_code
from bot.slack.workspaces import WorkspaceClients
from bot.storage.keys import Keys
from bot.turns.models import Turn, TurnSource

log = logging.getLogger(__name__)


class SessionStatus(StrEnum):
    """The only values agents.sessions.setStatus takes (free text is invalid_arguments)."""

    PROCESSING = "processing"  # working on a question: Slack shows a spinner and Stop
    ACTIVE = "active"  # idle, ready for the next question
    SUSPENDED = "suspended"  # waiting for the person (the reply asked them something)
    CLOSED = "closed"  # over


# Errors meaning "no agent sessions for this app in this workspace".
NOT_AN_AGENT = frozenset({"not_authorized", "unknown_method", "missing_scope"})
NOT_AN_AGENT_FOR_SECONDS = 60 * 60
# One session call may take this long (Slack's own retries included).
SESSION_CALL_SECONDS = 10.0


def session_thread(turn: Turn) -> str | None:
    """The thread whose session a turn belongs to; None where the reply is in no thread
    (a top-level DM, a /tutor thread root the bot posts itself)."""
    if turn.source is TurnSource.COMMAND:
        return None
    return turn.thread_ts


def status_after(answer: str) -> SessionStatus:
    """An answer that ends asking the learner something leaves the session waiting for them."""
    return SessionStatus.SUSPENDED if answer.rstrip().endswith("?") else SessionStatus.ACTIVE


class AgentSessions:
    """Agent session calls for every workspace; one per process.

    `processing` goes through `quick_clients`, which do not wait out rate limits (a later
    status replaces it); the statuses that end a reply wait them out on `clients`, so a
    session is not left looking busy.
    """

    def __init__(
        self,
        mode: AgentSessionsMode,
        clients: WorkspaceClients,
        quick_clients: WorkspaceClients,
        redis: Redis,
        keys: Keys,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mode = mode
        self._clients = clients
        self._quick_clients = quick_clients
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._not_an_agent_until: dict[str, float] = {}
        self._warned: set[str] = set()

    def enabled(self, team_id: str) -> bool:
        """Whether sessions are used in this workspace now."""
        if self._mode is AgentSessionsMode.OFF:
            return False
        if self._mode is AgentSessionsMode.ON:
            return True
        return self._not_an_agent_until.get(team_id, 0.0) <= self._clock()

    async def set_status(
        self,
        team_id: str,
        channel_id: str,
        thread_ts: str,
        status: SessionStatus,
        *,
        initiator: str | None = None,
    ) -> bool:
        """Set the thread's session status (creating the session, started by `initiator`);
        True when Slack took it."""
        clients = self._quick_clients if status is SessionStatus.PROCESSING else self._clients
        client = clients.for_team(team_id)
        return await self._call(
            team_id,
            "setStatus",
            lambda: client.agents_sessions_setStatus(
                channel_id=channel_id,
                thread_ts=thread_ts,
                status=status.value,
                initiator_user_id=initiator,
            ),
        )

    async def give_title(self, turn: Turn, thread_ts: str) -> None:
        """Title the thread's session with this question, if no question of its
        conversation did before (the first question names the thread)."""
        title = thread_title(turn.text)
        if not title or not self.enabled(turn.team_id):
            return
        try:
            first = await self._redis.set(
                self._keys.agent_session_titled(turn.conversation_key),
                "1",
                nx=True,
                ex=THREAD_TTL_SECONDS,
            )
        except RedisError as error:
            log.info("no session title (%s) %s", type(error).__name__, turn.log_context())
            return
        if first:
            await self._call(
                turn.team_id,
                "rename",
                lambda: self._clients.for_team(turn.team_id).agents_sessions_rename(
                    channel_id=turn.channel_id, thread_ts=thread_ts, title=title
                ),
            )

    async def _call(self, team_id: str, what: str, call: Callable[[], Awaitable[Any]]) -> bool:
        """Make one session call if sessions are on here; failures are logged, not raised."""
        if not self.enabled(team_id):
            return False
        try:
            async with asyncio.timeout(SESSION_CALL_SECONDS):
                response = await call()
        except SlackApiError as error:
            code = slack_error_code(error)
            if self._mode is AgentSessionsMode.AUTO and code in NOT_AN_AGENT:
                self._not_an_agent_until[team_id] = self._clock() + NOT_AN_AGENT_FOR_SECONDS
                log.info("no agent sessions in workspace %s (%s)", team_id, code)
            else:
                log.info("agent session %s failed (%s) team %s", what, code, team_id)
            return False
        except (aiohttp.ClientError, TimeoutError) as error:
            log.info("agent session %s failed (%s) team %s", what, type(error).__name__, team_id)
            return False
        warning = response.get("warning")
        if isinstance(warning, str) and warning not in self._warned:
            self._warned.add(warning)  # e.g. the agent_session_stopped subscription is missing
            log.warning("Slack warns about agent sessions: %s (see manifest.yml)", warning)
        return True
