"""Token figures of one turn or of many, added up; and the UTC periods they are kept for.

Pure arithmetic: the Redis ledger (`bot.tutor.ledger`) stores these figures as hash fields,
`/tutor usage` and the usage line show them.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from dataclasses import dataclass

from bot.backends.base import Usage


@dataclass(frozen=True)
class UsageFigures:
    """Token totals of some turns, as the model server reported them.

    `input_tokens` includes `cached_tokens` (the part billed at the cached rate), as in
    OpenAI's usage. `estimated_turns` counts turns whose figures the bot estimated because
    the server reported none; `unreported_turns` turns with no figures at all. The cost is
    kept in billionths of a US dollar, so it adds up exactly; `priced_turns` says how many
    turns it covers (a model without a price adds none).
    """

    turns: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    estimated_turns: int = 0
    unreported_turns: int = 0
    priced_turns: int = 0
    cost_nanousd: int = 0

    @classmethod
    def of_turn(cls, usage: Usage | None, cost_nanousd: int | None) -> UsageFigures:
        """One turn's figures; `cost_nanousd` None: its model has no price."""
        if usage is None:  # nothing to price either
            return cls(turns=1, unreported_turns=1)
        priced = cost_nanousd is not None
        return cls(
            turns=1,
            input_tokens=max(usage.input_tokens, 0),
            cached_tokens=min(max(usage.cached_tokens, 0), max(usage.input_tokens, 0)),
            output_tokens=max(usage.output_tokens, 0),
            estimated_turns=1 if usage.estimated else 0,
            priced_turns=1 if priced else 0,
            cost_nanousd=cost_nanousd or 0,
        )

    @property
    def total_tokens(self) -> int:
        """Input (cached included) and output tokens: what a daily budget counts."""
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cached_tokens

    @property
    def includes_estimates(self) -> bool:
        return self.estimated_turns > 0

    @property
    def unpriced_turns(self) -> int:
        """Turns with figures but no cost: they ran a model the price table does not name."""
        return max(self.turns - self.unreported_turns - self.priced_turns, 0)

    def __add__(self, other: UsageFigures) -> UsageFigures:
        return UsageFigures(**{name: a + b for name, a, b in _pairs(self, other)})

    def fields(self) -> dict[str, int]:
        """The figures by name, as the ledger keeps them (zeros left out)."""
        return {name: value for name, value in dataclasses.asdict(self).items() if value}

    @classmethod
    def from_fields(cls, stored: Mapping[str, str | int | None]) -> UsageFigures:
        """Figures from stored fields; missing or unreadable ones count as 0."""
        return cls(**{name: _count(stored.get(name)) for name in FIGURE_NAMES})


FIGURE_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(UsageFigures))


def _pairs(a: UsageFigures, b: UsageFigures) -> list[tuple[str, int, int]]:
    return [(name, getattr(a, name), getattr(b, name)) for name in FIGURE_NAMES]


def _count(raw: str | int | None) -> int:
    try:
        return int(raw or 0)
    except (TypeError, ValueError):
        return 0


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def day_of(moment: datetime.datetime) -> str:
    """The UTC day a moment falls in, as the ledger names it: `YYYY-MM-DD`."""
    return moment.astimezone(datetime.UTC).date().isoformat()


def month_of(moment: datetime.datetime) -> str:
    """The UTC month a moment falls in: `YYYY-MM`."""
    return day_of(moment)[:7]


def until_next_day(moment: datetime.datetime) -> datetime.timedelta:
    """Time from `moment` to the next midnight UTC, when daily figures start again."""
    utc = moment.astimezone(datetime.UTC)
    midnight = datetime.datetime.combine(
        utc.date() + datetime.timedelta(days=1), datetime.time(), tzinfo=datetime.UTC
    )
    return midnight - utc
