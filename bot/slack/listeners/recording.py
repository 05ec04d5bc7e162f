"""Recording a message before Slack gets its ack, or making Slack deliver it again.

A listener records a person's message in Redis before its ack, so an acked message is
never lost. When that cannot be done (Redis unreachable or too slow), the message must not
be acked: over HTTP the bot answers 503, in Socket Mode it sends no ack, and Slack delivers
the message again (at once, after a minute, after five). The person is told once, after
Slack's first delivery (which reaches one process; redeliveries may reach others), and never
twice by the same process; and only if Slack's immediate redelivery did not get the message
recorded meanwhile (`recorded`): a Redis that was only slow for a moment is nobody's news.

Everything on this path is bounded by `ACK_PATH_SECONDS`, well inside Slack's 3 seconds
(Redis' own retries cost about 0.7 s when it refuses connections, far more when its host
does not answer at all).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from redis.exceptions import RedisError
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.background import BackgroundTasks
from bot.slack.seen_recently import SeenRecently
from bot.turns.models import Turn

log = logging.getLogger(__name__)

ACK_PATH_SECONDS = 1.5
# The notice waits this long for Slack's immediate redelivery to be recorded, then asks
# Redis (for at most NOTICE_CHECK_SECONDS) whether it was.
NOTICE_DELAY_SECONDS = 3.0
NOTICE_CHECK_SECONDS = 1.0
NOT_RECORDED_STATUS = 503
NOT_ACCEPTING = (
    ":warning: I can't take questions right now (my storage is unavailable). Slack hands me "
    "yours again over the next few minutes; if no answer comes by then, please ask again."
)


class Delivery(NamedTuple):
    """One delivery of a message: Slack's event id (each copy of a message has its own),
    the message's ts, and whether Slack is delivering it again (`X-Slack-Retry-Num`)."""

    event_id: str | None
    message_ts: str
    redelivery: bool = False


def delivery_of(body: dict[str, Any], event: dict[str, Any], request: AsyncBoltRequest) -> Delivery:
    """The delivery a listener handles; a redelivery is told by Slack's retry header."""
    retry = request.headers.get("x-slack-retry-num") or [""]
    return Delivery(body.get("event_id"), event["ts"], retry[0] not in ("", "0"))


class NotRecorded(Exception):
    """A message could not be recorded: Slack must deliver it again (503, or no ack)."""


@dataclass
class Attempt:
    """One try at recording a message. `notify`: the message is for the bot, so a failure
    is worth a notice in its place (a listener may learn that only midway)."""

    notify: bool


class MessageRecording:
    """Runs a listener's Redis work under one deadline and turns its failure into a retry."""

    def __init__(
        self,
        background: BackgroundTasks,
        *,
        seconds: float = ACK_PATH_SECONDS,
        notified: SeenRecently | None = None,
        recorded: Callable[[Turn, Delivery], Awaitable[bool]] | None = None,
        notice_delay: float = NOTICE_DELAY_SECONDS,
    ) -> None:
        """`recorded`: whether a message was recorded after all (None: the notice is not
        deferred)."""
        self._background = background
        self._seconds = seconds
        self._notified = notified or SeenRecently()
        self._recorded = recorded
        self._notice_delay = notice_delay

    @asynccontextmanager
    async def attempt(
        self,
        client: AsyncWebClient,
        turn: Turn,
        delivery: Delivery,
        *,
        notify: bool,
    ) -> AsyncIterator[Attempt]:
        """Bound the block by the deadline; on any failure post at most one notice for the
        message (`notify`) and raise NotRecorded."""
        attempt = Attempt(notify)
        try:
            async with asyncio.timeout(self._seconds):
                yield attempt
        except Exception as error:
            context = {"event": delivery.event_id or "-", **turn.log_context()}
            if isinstance(error, RedisError | TimeoutError):
                log.warning(
                    "could not record a message (%s) %s; Slack will deliver it again",
                    type(error).__name__,
                    context,
                )
            else:
                log.exception("could not record a message %s; Slack will deliver it again", context)
            if attempt.notify:
                self._notify_once(client, turn, delivery)
            raise NotRecorded from error

    def _notify_once(self, client: AsyncWebClient, turn: Turn, delivery: Delivery) -> None:
        """Only Slack's first delivery of a message gives a notice: redeliveries may reach
        other processes, which cannot know (Redis is away) that one was given."""
        if delivery.redelivery:
            return
        keys = [f"message:{turn.channel_id}:{delivery.message_ts}"]
        if delivery.event_id:
            keys.append(f"event:{delivery.event_id}")
        if self._notified.first_time(*keys):
            self._background.spawn(self._notice_unless_recorded(client, turn, delivery))

    async def _notice_unless_recorded(
        self, client: AsyncWebClient, turn: Turn, delivery: Delivery
    ) -> None:
        if self._recorded is not None:
            await asyncio.sleep(self._notice_delay)  # Slack's first redelivery comes at once
            try:
                async with asyncio.timeout(NOTICE_CHECK_SECONDS):
                    if await self._recorded(turn, delivery):
                        return  # recorded after all: it is answered as usual
            except Exception as error:  # Redis still away: the notice is due
                log.info("no record of the message yet (%s)", type(error).__name__)
        await client.chat_postMessage(
            channel=turn.channel_id, thread_ts=turn.thread_ts, text=NOT_ACCEPTING
        )


def answer_not_recorded_with_503(app: AsyncApp) -> None:
    """Bolt's error handler: NotRecorded becomes a 503 (logged where it was raised); any
    other listener failure stays Bolt's 500, logged with its traceback."""

    async def on_error(error: Exception) -> BoltResponse | None:
        if isinstance(error, NotRecorded):
            return BoltResponse(status=NOT_RECORDED_STATUS, body="")
        log.error("handling a Slack request failed: %s", error, exc_info=error)
        return None

    app.error(on_error)
