"""TUTOR_PRICES: parsing the price table, a turn's cost, costs shown to people."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.backends.base import Usage
from bot.settings import ConfigError, Settings
from bot.tutor.prices import Price, PriceTable, format_usd, parse_prices


def test_several_models_with_three_prices_each() -> None:
    table = parse_prices("gpt-5.4-mini=0.25/0.025/2.00, gpt-5.5 = $1.25/$0.125/$10")
    assert table.for_model("gpt-5.4-mini") == Price(
        Decimal("0.25"), Decimal("0.025"), Decimal("2.00")
    )
    assert table.for_model("gpt-5.5") == Price(Decimal("1.25"), Decimal("0.125"), Decimal("10"))
    assert table.for_model("gpt-4o") is None


def test_two_prices_mean_no_discount_for_cached_input() -> None:
    price = parse_prices("local=0.1/0.4").for_model("local")
    assert price == Price(Decimal("0.1"), Decimal("0.1"), Decimal("0.4"))


def test_an_empty_table_is_false() -> None:
    assert not parse_prices(" , ")
    assert not PriceTable()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("gpt-5.4-mini", "must read model=input/cached/output"),
        ("=1/2/3", "must read model=input/cached/output"),
        ("m=1/2/3/4", "needs three prices"),
        ("m=1", "needs three prices"),
        ("m=cheap/1/2", "'cheap' in 'm=cheap/1/2' is not a price in dollars"),
        ("m=-1/1/2", "is not a price in dollars"),
        ("m=1/1/NaN", "is not a price in dollars"),
        ("m=1/1/2,m=2/2/3", "m is priced twice"),
    ],
)
def test_malformed_prices_are_explained(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_prices(text)


def test_a_malformed_price_table_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.load({"TUTOR_PRICES": "m=1/x/2"}, env_file=tmp_path / "none")
    assert str(raised.value).startswith("TUTOR_PRICES='m=1/x/2' is not valid: 'x' in")


def test_unset_prices_are_an_empty_table(tmp_path: Path) -> None:
    settings = Settings.load({}, env_file=tmp_path / "none")
    assert settings.prices == PriceTable() and not settings.show_usage
    assert settings.daily_tokens_per_user == 0 and settings.admins == frozenset()


def test_cost_bills_cached_input_at_its_own_rate() -> None:
    price = parse_prices("m=0.25/0.025/2.00").for_model("m")
    assert price is not None
    # 1,000 uncached input at $0.25/M, 1,000 cached at $0.025/M, 500 output at $2/M.
    usage = Usage(input_tokens=2_000, cached_tokens=1_000, output_tokens=500)
    assert price.cost_nanousd(usage) == 250_000 + 25_000 + 1_000_000


def test_cost_of_a_million_tokens_is_the_listed_price() -> None:
    price = parse_prices("m=0.25/0.025/2.00").for_model("m")
    assert price is not None
    assert price.cost_nanousd(Usage(input_tokens=1_000_000)) == 250_000_000
    assert price.cost_nanousd(Usage(output_tokens=1_000_000)) == 2_000_000_000


def test_a_server_reporting_more_cached_than_input_is_not_billed_negative() -> None:
    price = Price(Decimal(1), Decimal("0.1"), Decimal(2))
    assert price.cost_nanousd(Usage(input_tokens=10, cached_tokens=50)) == 1_000


@pytest.mark.parametrize(
    ("nanousd", "shown"),
    [
        (0, "$0"),
        (65_000, "$0.000065"),
        (4_200_000, "$0.0042"),
        (12_345_678, "$0.01"),
        (1_234_567_890_000, "$1,234.57"),
        (5, "under $0.000001"),
    ],
)
def test_costs_for_people(nanousd: int, shown: str) -> None:
    assert format_usd(nanousd) == shown
