"""Who may ask, and how much: the rules a question passes before it becomes a turn.

Two kinds of rule. Those that need only the question itself (the allow-lists of workspaces,
channels and people, the longest question) are decided here, in `DoorPolicy.check`, without
a round trip. Those that count (questions per minute, questions waiting per conversation and
per person) are `Limits`, checked by Redis in the same atomic step that records the turn
(bot/turns/queue.py), so every process shares one count and nothing is recorded for a
question that is refused. Either way a refused question starts no turn and never reaches
the model; what the asker is told is the Slack side's business (bot/slack/refusals.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.turns.models import Turn

# In an allowed-channels list: direct messages with the bot (their ids are per person).
DIRECT_MESSAGES = "dm"


class Refusal(StrEnum):
    """Why a question was not taken."""

    WORKSPACE = "workspace"  # the workspace is not on the allow-list
    CHANNEL = "channel"  # the channel (or direct messages) is not on the allow-list
    USER = "user"  # the person is not on the allow-list
    TOO_LONG = "too_long"  # longer than the longest question allowed
    CONVERSATION_FULL = "conversation_full"  # too many questions of its conversation waiting
    USER_FULL = "user_full"  # too many of the person's questions waiting
    RATE = "rate"  # too many questions from the person in the last minute


@dataclass(frozen=True)
class Refused:
    """A question held back: why, the limit it ran into, and (RATE) in how many seconds the
    person may ask again; `size` is what went over the limit (TOO_LONG: the characters)."""

    reason: Refusal
    limit: int = 0
    retry_after: float = 0.0
    size: int = 0


@dataclass(frozen=True)
class Limits:
    """What is counted in Redis when a turn is recorded; 0 switches a limit off."""

    per_user_per_minute: int = 0  # questions accepted from one person in any 60 s
    queued_per_conversation: int = 0  # questions of one conversation not yet answered
    queued_per_user: int = 0  # questions of one person not yet answered

    def refused(self, reason: Refusal, retry_after: float = 0.0) -> Refused:
        """The refusal Redis decided on, with the limit that caused it."""
        limit = {
            Refusal.RATE: self.per_user_per_minute,
            Refusal.CONVERSATION_FULL: self.queued_per_conversation,
            Refusal.USER_FULL: self.queued_per_user,
        }.get(reason, 0)
        return Refused(reason, limit=limit, retry_after=retry_after)


@dataclass(frozen=True)
class DoorPolicy:
    """The allow-lists (None: everyone), the longest question (0: any) and the limits."""

    allowed_teams: frozenset[str] | None = None
    allowed_channels: frozenset[str] | None = None
    allowed_users: frozenset[str] | None = None
    max_question_chars: int = 0
    limits: Limits = field(default_factory=Limits)

    def check(self, turn: Turn) -> Refused | None:
        """Why this question may not be asked here by this person, or None when it may (as
        far as the allow-lists and its length go: the counted limits come when it is
        recorded)."""
        if self.allowed_teams is not None and turn.team_id not in self.allowed_teams:
            return Refused(Refusal.WORKSPACE)
        if not self._channel_allowed(turn.channel_id):
            return Refused(Refusal.CHANNEL)
        if self.allowed_users is not None and turn.user_id not in self.allowed_users:
            return Refused(Refusal.USER)
        if self.max_question_chars and len(turn.text) > self.max_question_chars:
            return Refused(Refusal.TOO_LONG, limit=self.max_question_chars, size=len(turn.text))
        return None

    def _channel_allowed(self, channel_id: str) -> bool:
        allowed = self.allowed_channels
        if allowed is None or channel_id in allowed:
            return True
        return is_direct_message(channel_id) and DIRECT_MESSAGES in allowed


def is_direct_message(channel_id: str) -> bool:
    """Slack's ids of direct-message channels start with D."""
    return channel_id.startswith("D")
