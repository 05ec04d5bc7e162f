"""Accepting a turn: drop repeats of a delivery, record the turn durably and queue it.

This is all that happens before Slack gets its ack, so it is one Redis round trip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.turns.conversations import ConversationStore
from bot.turns.models import Turn
from bot.turns.queue import TurnQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    """A turn recorded and queued; `ahead`: earlier turns of its conversation still waiting."""

    turn: Turn
    ahead: int


class TurnIntake:
    """The one door through which every surface hands the engine a turn.

    `on_accepted` hears of each accepted turn at once (it must not block: the ack waits),
    so its placeholder can be shown before a worker is free to answer it.
    """

    def __init__(
        self,
        queue: TurnQueue,
        conversations: ConversationStore,
        on_accepted: Callable[[Accepted], None] | None = None,
    ) -> None:
        self._queue = queue
        self._conversations = conversations
        self._on_accepted = on_accepted

    async def has_conversation(self, conversation_key: str) -> bool:
        """True when the bot already talks in this Slack conversation (a thread it answered)."""
        return await self._conversations.find(conversation_key) is not None

    async def claim(self, delivery_id: str | None, channel_id: str, message_ts: str | None) -> bool:
        """True the first time this delivery (and message) is seen, False for repeats."""
        return await self._queue.claim_delivery(delivery_id, channel_id, message_ts)

    async def accept(
        self, turn: Turn, *, delivery_id: str | None, message_ts: str | None
    ) -> Accepted | None:
        """Queue `turn` unless this delivery was accepted before (then None).

        Raises redis errors: the caller tells the user the question could not be taken.
        """
        ahead = await self._queue.enqueue(turn, delivery_id, message_ts)
        if ahead is None:
            log.info("dropped a repeated delivery %s", {"event": delivery_id, **turn.log_context()})
            return None
        log.info("accepted a %s turn %s", turn.source.value, turn.log_context())
        accepted = Accepted(turn, ahead)
        if self._on_accepted is not None:
            self._on_accepted(accepted)
        return accepted
