"""What a person is told when the door's rules (bot/turns/guards.py) refuse their question.

Every refusal is a kind note only its author sees: the ack of a `/tutor` command, or
`chat.postEphemeral` where they wrote. A workspace that is not allowed is told nothing: the
bot acts there as if it were not installed, and spends no Slack call on it (the refusal is
logged at INFO with its ids).

Ephemeral posts are Slack calls too, so a flood of refused questions must not turn into a
flood of notes: a person gets at most one note a minute for each reason, across every
process (a key in Redis); the others are dropped, logged at DEBUG. The ack of a command
costs no call and always carries its note.
"""

from __future__ import annotations

import asyncio
import logging
import math

from redis.asyncio import Redis
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.background import BackgroundTasks
from bot.slack.client import slack_error_code
from bot.storage.keys import Keys
from bot.turns.guards import Refusal, Refused, is_direct_message
from bot.turns.models import Turn

log = logging.getLogger(__name__)

NOTICE_EVERY_SECONDS = 60
# A note is not worth waiting for Redis: without an answer in this time it is dropped.
REDIS_WAIT_SECONDS = 0.5

NOT_HERE = (
    "I'm not set up to answer questions in this channel, so I didn't take this one. "
    "Please ask me in a channel where I'm available."
)
NOT_IN_DIRECT_MESSAGES = (
    "I'm not set up to answer direct messages, so I didn't take this one. "
    "Please ask me in a channel where I'm available."
)
NOT_FOR_YOU = (
    "Sorry, I'm set up to answer questions from certain people only, so I didn't take this "
    "one. If you think you should be able to ask me, please check with whoever runs me here."
)
TOO_LONG = (
    "Your question is {size:,} characters long, and I can take at most {limit:,}, so I didn't "
    "take it. Please shorten it and ask again."
)
CONVERSATION_FULL = (
    "This conversation already has {questions} waiting for my answers, so I didn't take this "
    "one. Please ask it again once I have answered."
)
USER_FULL = (
    "You already have {questions} waiting for my answers, so I didn't take this one. "
    "Please ask it again once I have answered."
)
TOO_MANY = (
    "You've asked me {questions} in the last minute, as many as I take, so I didn't take "
    "this one. You can ask again in {wait}."
)


def refusal_text(refused: Refused, channel_id: str) -> str | None:
    """The note for a refused question asked in `channel_id`; None: say nothing."""
    match refused.reason:
        case Refusal.WORKSPACE:
            return None
        case Refusal.CHANNEL:
            return NOT_IN_DIRECT_MESSAGES if is_direct_message(channel_id) else NOT_HERE
        case Refusal.USER:
            return NOT_FOR_YOU
        case Refusal.TOO_LONG:
            return TOO_LONG.format(size=refused.size, limit=refused.limit)
        case Refusal.CONVERSATION_FULL:
            return CONVERSATION_FULL.format(questions=_count(refused.limit, "question"))
        case Refusal.USER_FULL:
            return USER_FULL.format(questions=_count(refused.limit, "question"))
        case Refusal.RATE:
            wait = _count(max(1, math.ceil(refused.retry_after)), "second")
            return TOO_MANY.format(questions=_count(refused.limit, "question"), wait=wait)


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}" if number == 1 else f"{number} {thing}s"


class RefusalNotices:
    """Posts refusal notes after the ack, at most one a minute per person and reason."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        background: BackgroundTasks,
        *,
        every_seconds: int = NOTICE_EVERY_SECONDS,
    ) -> None:
        self._redis = redis  # the quick client: a note never waits out an outage
        self._keys = keys
        self._background = background
        self._every_seconds = every_seconds

    def tell(
        self, client: AsyncWebClient, turn: Turn, refused: Refused, thread_ts: str | None
    ) -> None:
        """Tell the asker why `turn` was refused, in `thread_ts` (None: in the channel, as
        Slack shows a note in a thread only once the thread exists)."""
        text = refusal_text(refused, turn.channel_id)
        if text is not None:
            self._background.spawn(self._tell(client, turn, refused.reason, text, thread_ts))

    async def _tell(
        self,
        client: AsyncWebClient,
        turn: Turn,
        reason: Refusal,
        text: str,
        thread_ts: str | None,
    ) -> None:
        context = {**turn.log_context(), "user": turn.user_id, "reason": reason.value}
        if not await self._first_this_minute(turn, reason):
            log.debug("refusal note left out (one a minute) %s", context)
            return
        try:
            await client.chat_postEphemeral(
                channel=turn.channel_id, user=turn.user_id, thread_ts=thread_ts, text=text
            )
        except SlackApiError as error:
            log.warning("could not post a refusal note (%s) %s", slack_error_code(error), context)

    async def _first_this_minute(self, turn: Turn, reason: Refusal) -> bool:
        key = self._keys.refusal_notice(turn.team_id, turn.user_id, reason.value)
        try:
            async with asyncio.timeout(REDIS_WAIT_SECONDS):
                return bool(await self._redis.set(key, "1", nx=True, ex=self._every_seconds))
        except (RedisError, OSError, TimeoutError) as error:
            log.info("refusal note left out: Redis unavailable (%s)", type(error).__name__)
            return False
