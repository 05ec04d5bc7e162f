"""The placeholder of a question, shown the moment it is accepted.

A worker answers a conversation only when one of its slots is free and the conversation's
earlier questions are answered; the person who asked should not wait for that to see that
the question arrived. So the intake hands each accepted turn here, and its placeholder is
posted at once, saying why it waits when it does. Whoever claims the post first (this, or
the worker that takes the turn) posts it; the other continues in the place recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.storage.keys import Keys
from bot.turns.intake import Accepted
from bot.turns.models import Turn
from bot.turns.post_lanes import PostLanes, channel_lane
from bot.turns.queue import TurnQueue
from bot.turns.records import TurnJournal, TurnProgress, TurnStore
from bot.turns.surface import ReplyImpossible, SurfaceFactory, Waiting

log = logging.getLogger(__name__)


# A placeholder waits this long at most for those of earlier questions of its conversation
# to be posted, so that placeholders (and so answers) stand in the order of the questions.
EARLIER_FIRST_SECONDS = 1.5
EARLIER_CHECK_SECONDS = 0.05


class EarlyPlaceholders:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        surfaces: SurfaceFactory,
        busy: Callable[[], Awaitable[bool]],
        lanes: PostLanes | None = None,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._surfaces = surfaces
        self._busy = busy
        self._lanes = lanes or PostLanes()
        self._queue = TurnQueue(redis, keys)
        self._store = TurnStore(redis, keys)

    async def show(self, accepted: Accepted) -> None:
        """Post the turn's placeholder unless a worker already claimed that.

        Best effort: when Redis or Slack fail here, the worker posts it when it takes the turn.
        """
        try:
            await self._show(accepted)
        except RedisError as error:
            log.warning("no early placeholder (%s) %s", error, accepted.turn.log_context())

    async def _show(self, accepted: Accepted) -> None:
        turn = accepted.turn
        if accepted.ahead:
            earlier = await self._queue.first(turn.conversation_key, accepted.ahead)
            for turn_id in earlier:
                if turn_id != turn.turn_id:
                    await self._place_earlier(turn_id)
        waiting = Waiting.BEHIND if accepted.ahead else None
        await self._post(turn, waiting)

    async def _place_earlier(self, turn_id: str) -> None:
        """Make sure an earlier question's placeholder stands before this one: post it if
        nobody did (its own early post failed), or wait (briefly) for the one being posted."""
        found = await self._store.peek(turn_id)
        if found is None or found[1].place is not None:
            return
        earlier, progress = found
        if not progress.posting_placeholder and await self._post(earlier, None):
            return
        for _ in range(int(EARLIER_FIRST_SECONDS / EARLIER_CHECK_SECONDS)):
            if await self._store.all_placed([turn_id]):
                return
            await asyncio.sleep(EARLIER_CHECK_SECONDS)

    async def _post(self, turn: Turn, waiting: Waiting | None) -> bool:
        """Claim, post and record the turn's placeholder; False when another claimed it.

        The claim is made once the channel's lane is ours (see post_lanes.py): a claim is a
        promise to post at once, which whoever takes the turn waits for."""
        async with self._lanes.turn(channel_lane(turn), turn.user_id) as lane_turn:
            lane_turn.posted = await self._claim_and_post(turn, waiting)
            return lane_turn.posted

    async def _claim_and_post(self, turn: Turn, waiting: Waiting | None) -> bool:
        journal = TurnJournal(self._redis, self._keys, turn, TurnProgress())
        if not await journal.claim_placeholder():
            return False  # a worker took the turn first and posts it itself
        try:
            if waiting is None and await self._busy():
                waiting = Waiting.BUSY
            place = await self._surfaces(turn, journal).show_placeholder(waiting)
        except ReplyImpossible as error:  # Slack will never take it: the turn ends here
            log.warning("turn dropped: Slack refused the reply (%s) %s", error, turn.log_context())
            await journal.delivered()
            return True
        except BaseException:
            await journal.unclaim_placeholder()  # the worker posts it when it takes the turn
            raise
        await journal.answer_placed(place)
        return True
