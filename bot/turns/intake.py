"""Accepting a turn: drop repeats of a delivery, keep out what the door's rules refuse
(bot/turns/guards.py), record the turn durably and queue it.

This is all that happens before Slack gets its ack, so it is two Redis round trips (see
bot/turns/queue.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.turns.conversations import ConversationStore
from bot.turns.guards import DoorPolicy, Refusal, Refused
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
    so its placeholder can be shown before a worker is free to answer it. `policy` is the
    door's rules (none by default); `on_refused` hears of each question they refuse.
    """

    def __init__(
        self,
        queue: TurnQueue,
        conversations: ConversationStore,
        on_accepted: Callable[[Accepted], None] | None = None,
        policy: DoorPolicy | None = None,
        on_refused: Callable[[Refused], None] | None = None,
    ) -> None:
        self._queue = queue
        self._conversations = conversations
        self._on_accepted = on_accepted
        self._policy = policy or DoorPolicy()
        self._on_refused = on_refused

    async def has_conversation(self, conversation_key: str) -> bool:
        """True when the bot already talks in this Slack conversation (a thread it answered)."""
        return await self._conversations.find(conversation_key) is not None

    async def claim(
        self,
        delivery_id: str | None,
        channel_id: str,
        message_ts: str | None,
        conversation_key: str | None = None,
    ) -> bool:
        """True the first time this delivery (and message) is seen, False for repeats. Name
        the conversation the message is in, if any: a delivery of it that `accept`s a turn
        sets the same marker."""
        return await self._queue.claim_delivery(
            delivery_id, channel_id, message_ts, conversation_key
        )

    async def accept(
        self, turn: Turn, *, delivery_id: str | None, message_ts: str | None
    ) -> Accepted | Refused | None:
        """Queue `turn` unless this delivery was handled before (then None) or the door's
        rules refuse it (then why: nothing is recorded, and a repeat of it is a repeat).

        Raises redis errors: the caller tells the user the question could not be taken.
        """
        refused = self._policy.check(turn)
        if refused is not None:
            return await self._refuse(turn, refused, delivery_id, message_ts)
        queued = await self._queue.enqueue(turn, delivery_id, message_ts, self._policy.limits)
        if queued is None:
            log.info("dropped a repeated delivery %s", {"event": delivery_id, **turn.log_context()})
            return None
        if isinstance(queued, Refused):
            return self._refused(turn, queued)
        log.info("accepted a %s turn %s", turn.source.value, turn.log_context())
        accepted = Accepted(turn, queued)
        if self._on_accepted is not None:
            self._on_accepted(accepted)
        return accepted

    async def _refuse(
        self, turn: Turn, refused: Refused, delivery_id: str | None, message_ts: str | None
    ) -> Refused | None:
        """A question the allow-lists or its length keep out: its delivery is remembered (so
        a repeat is dropped, not refused twice), except for a workspace that is not allowed,
        which costs nothing at all."""
        if refused.reason is not Refusal.WORKSPACE and not await self._queue.claim_delivery(
            delivery_id, turn.channel_id, message_ts, turn.conversation_key
        ):
            log.info("dropped a repeated delivery %s", {"event": delivery_id, **turn.log_context()})
            return None
        return self._refused(turn, refused)

    def _refused(self, turn: Turn, refused: Refused) -> Refused:
        context = {**turn.log_context(), "user": turn.user_id}
        log.info("refused a %s question (%s) %s", turn.source.value, refused.reason.value, context)
        if self._on_refused is not None:
            self._on_refused(refused)
        return refused
