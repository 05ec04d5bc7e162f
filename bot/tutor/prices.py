"""What tokens cost: a small price table per model (TUTOR_PRICES), and a turn's cost.

Prices are US dollars per million tokens, as providers publish them, for input, cached
input and output. Costs are computed per turn, from the model that ran it, in billionths of
a dollar (integers, so totals add up exactly).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from bot.backends.base import Usage

# Dollars per million tokens → billionths of a dollar per token.
NANOUSD_PER_TOKEN_PER_PRICE = 1000
EXAMPLE = "gpt-5.4-mini=0.25/0.025/2.00"


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens of input, cached input and output."""

    input: Decimal
    cached_input: Decimal
    output: Decimal

    def cost_nanousd(self, usage: Usage) -> int:
        """What one run's usage costs, in billionths of a dollar (rounded)."""
        input_tokens = max(usage.input_tokens, 0)
        cached = min(max(usage.cached_tokens, 0), input_tokens)
        dollars_per_million = (
            (input_tokens - cached) * self.input
            + cached * self.cached_input
            + max(usage.output_tokens, 0) * self.output
        )
        return int((dollars_per_million * NANOUSD_PER_TOKEN_PER_PRICE).to_integral_value())


@dataclass(frozen=True)
class PriceTable:
    """Prices by model name (exact names, as TUTOR_MODEL gives them)."""

    prices: Mapping[str, Price] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.prices)

    def for_model(self, model: str) -> Price | None:
        return self.prices.get(model)


def parse_prices(text: str) -> PriceTable:
    """`model=input/cached/output,…` (dollars per million tokens) → a PriceTable.

    `model=input/output` is accepted too (cached input then costs as much as input).
    Raises ValueError with a message meant for the person who wrote the setting.
    """
    prices: dict[str, Price] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        model, sign, figures = entry.partition("=")
        model = model.strip()
        if not sign or not model:
            raise ValueError(f"{entry!r} must read model=input/cached/output, e.g. {EXAMPLE}")
        if model in prices:
            raise ValueError(f"{model} is priced twice")
        amounts = [_dollars(part, entry) for part in figures.split("/")]
        if len(amounts) == 2:
            amounts.insert(1, amounts[0])
        if len(amounts) != 3:
            raise ValueError(
                f"{entry!r} needs three prices, input/cached/output (dollars per million "
                f"tokens), e.g. {EXAMPLE}"
            )
        prices[model] = Price(*amounts)
    return PriceTable(prices)


def _dollars(text: str, entry: str) -> Decimal:
    try:
        amount = Decimal(text.strip().removeprefix("$"))
    except InvalidOperation:
        raise ValueError(f"{text.strip()!r} in {entry!r} is not a price in dollars") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{text.strip()!r} in {entry!r} is not a price in dollars")
    return amount


def format_usd(nanousd: int) -> str:
    """A cost for people: cents from a cent up, six decimals below (a turn costs little)."""
    dollars = Decimal(nanousd) / Decimal(1_000_000_000)
    if dollars == 0:
        return "$0"
    if dollars >= Decimal("0.01"):
        return f"${dollars:,.2f}"
    if dollars < Decimal("0.000001"):
        return "under $0.000001"
    return f"${dollars:.6f}".rstrip("0")
