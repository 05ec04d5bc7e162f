"""Daily token budgets per person and per workspace (TUTOR_DAILY_TOKENS_PER_USER,
TUTOR_DAILY_TOKENS_PER_WORKSPACE; 0 is no limit).

Decided before a turn's run is started, from the ledger's figures of the current UTC day:
once a budget is spent, the turn gets a message saying so, and when it resets (midnight
UTC), instead of a run. Input and output tokens count (cached input included). The turn
that crosses a budget still finishes: a budget bounds a day, not one answer.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.turns.models import Turn
from bot.tutor.ledger import UsageLedger
from bot.tutor.usage import UsageFigures, until_next_day, utc_now

USER_SPENT = (
    "You have used your {limit:,} tokens for today, so I can't answer this one. "
    "Your budget starts again at midnight UTC ({wait})."
)
WORKSPACE_SPENT = (
    "This workspace has used its {limit:,} tokens for today, so I can't answer this one. "
    "The budget starts again at midnight UTC ({wait})."
)


class Spent(StrEnum):
    """Which daily budget is spent."""

    USER = "user"
    WORKSPACE = "workspace"


@dataclass(frozen=True)
class DailyBudgets:
    """Tokens per UTC day; 0: no limit."""

    per_user: int = 0
    per_workspace: int = 0

    @property
    def limited(self) -> bool:
        return self.per_user > 0 or self.per_workspace > 0

    def spent(self, user: UsageFigures, workspace: UsageFigures) -> Spent | None:
        """Which budget today's figures have used up (the person's first), or None."""
        if self.per_user and user.total_tokens >= self.per_user:
            return Spent.USER
        if self.per_workspace and workspace.total_tokens >= self.per_workspace:
            return Spent.WORKSPACE
        return None

    def refusal(self, spent: Spent, now: datetime.datetime) -> str:
        """The message a turn gets instead of an answer once `spent`."""
        wait = in_words(until_next_day(now))
        if spent is Spent.USER:
            return USER_SPENT.format(limit=self.per_user, wait=wait)
        return WORKSPACE_SPENT.format(limit=self.per_workspace, wait=wait)


def in_words(span: datetime.timedelta) -> str:
    """`in 3 h 12 min`, `in 45 min`, `in under a minute`."""
    minutes = int(span.total_seconds() // 60)
    if minutes < 1:
        return "in under a minute"
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"in {minutes} min"
    return f"in {hours} h {minutes} min" if minutes else f"in {hours} h"


class DailyBudgetGate:
    """The engine's `Budgets`: asks the ledger for today's figures when a budget is set."""

    def __init__(
        self,
        ledger: UsageLedger,
        budgets: DailyBudgets,
        now: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        self._ledger = ledger
        self._budgets = budgets
        self._now = now

    async def refusal(self, turn: Turn) -> str | None:
        if not self._budgets.limited:
            return None
        now = self._now()
        user, workspace = await self._ledger.today(turn.team_id, turn.user_id, now)
        spent = self._budgets.spent(user, workspace)
        return None if spent is None else self._budgets.refusal(spent, now)
