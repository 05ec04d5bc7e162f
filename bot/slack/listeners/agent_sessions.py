"""Slack's native Stop button: `agent_session_stopped` stops the thread's turn in progress.

Slack shows Stop on a thread whose agent session is `processing` (also under a streamed
answer, whose streams it stops itself) and sends this event, for whoever clicked. As with
the Stop button on the placeholder, only the person who asked may stop their answer: their
stop is recorded (one Redis step, before the ack) and the worker running the turn cancels
the run, ends the turn saying it was stopped and sets the session's status. Anyone else is
told, only to them, that it is not theirs to stop. Slack does not change the status itself:
with no turn in progress the session is set `active` here, so no spinner is left.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError
from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.slack.agent_sessions import AgentSessions, SessionStatus
from bot.slack.background import BackgroundTasks
from bot.slack.command_threads import CommandThreads
from bot.slack.conversation_keys import thread_key
from bot.slack.listeners.actions import NOT_YOURS
from bot.slack.listeners.recording import ACK_PATH_SECONDS, NotRecorded
from bot.turns.models import Turn
from bot.turns.queue import TurnQueue
from bot.turns.records import TurnStore
from bot.turns.stops import StopRequests

log = logging.getLogger(__name__)


def register_agent_session_listeners(
    app: AsyncApp,
    stops: StopRequests,
    queue: TurnQueue,
    store: TurnStore,
    command_threads: CommandThreads,
    sessions: AgentSessions,
    background: BackgroundTasks,
) -> None:
    async def turn_in_progress(team_id: str, channel: str, thread_ts: str) -> Turn | None:
        """The thread's turn being answered now (the oldest of its conversation's queue)."""
        key = await command_threads.resolve(thread_key(team_id, channel, thread_ts))
        turn_id = await queue.head(key)
        found = await store.peek(turn_id) if turn_id else None
        if found is None or found[1].delivered:
            return None
        return found[0]

    @app.event("agent_session_stopped")
    async def on_session_stopped(
        body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        team_id = context.team_id or body.get("team_id") or ""
        channel, thread_ts, user = event["channel"], event["thread_ts"], event["user"]
        where = {"team": team_id, "channel": channel, "thread": thread_ts}
        try:
            async with asyncio.timeout(ACK_PATH_SECONDS):
                turn = await turn_in_progress(team_id, channel, thread_ts)
                if turn is not None and turn.user_id == user:
                    await stops.request(turn.turn_id)
        except (RedisError, TimeoutError) as error:  # Slack delivers the event again
            log.warning("native stop not recorded (%s) %s", type(error).__name__, where)
            raise NotRecorded from error
        if turn is None:
            log.info("native stop with no turn in progress %s", where)
            background.spawn(sessions.set_status(team_id, channel, thread_ts, SessionStatus.ACTIVE))
        elif turn.user_id != user:
            log.info("native stop refused: not the asker %s", turn.log_context())
            if context.client is not None:
                background.spawn(
                    context.client.chat_postEphemeral(
                        channel=channel,
                        user=user,
                        thread_ts=thread_ts,
                        text=NOT_YOURS.format(asker=turn.user_id),
                    )
                )
        else:
            log.info("native stop requested for %s", turn.turn_id)
