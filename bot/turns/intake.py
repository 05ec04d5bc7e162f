"""Accepting a turn: drop repeats of a delivery, then queue it for its conversation."""

from __future__ import annotations

import logging

from bot.turns.dedup import DeliveryDeduplicator
from bot.turns.models import Turn
from bot.turns.scheduler import ConversationScheduler

log = logging.getLogger(__name__)


class TurnIntake:
    """The one door through which every surface hands the engine a turn."""

    def __init__(self, deduplicator: DeliveryDeduplicator, scheduler: ConversationScheduler):
        self._deduplicator = deduplicator
        self._scheduler = scheduler

    async def claim(self, delivery_id: str | None, channel_id: str, message_ts: str | None) -> bool:
        """True the first time this delivery (and message) is seen, False for repeats."""
        return await self._deduplicator.first_delivery(delivery_id, channel_id, message_ts)

    async def accept(self, turn: Turn, *, delivery_id: str | None, message_ts: str | None) -> bool:
        """Queue `turn` unless this delivery was accepted before; True when queued.

        Raises redis errors: the caller tells the user the question could not be taken.
        """
        if not await self.claim(delivery_id, turn.channel_id, message_ts):
            log.info("dropped a repeated delivery %s", {"event": delivery_id, **turn.log_context()})
            return False
        self._scheduler.submit(turn)
        return True
