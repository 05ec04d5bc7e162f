"""The usage ledger: figures per turn, conversation, user, workspace, UTC day and month."""

from __future__ import annotations

import datetime

import pytest
from redis.asyncio import Redis

from bot.backends.base import Usage
from bot.storage.keys import TURN_TTL_SECONDS, Keys
from bot.turns.models import Turn, TurnSource
from bot.tutor.ledger import USAGE_TTL_SECONDS, UsageLedger
from bot.tutor.prices import parse_prices
from bot.tutor.usage import UsageFigures, day_of, month_of, until_next_day

NOW = datetime.datetime(2026, 11, 30, 23, 59, 30, tzinfo=datetime.UTC)


class Clock:
    def __init__(self, now: datetime.datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


def turn(user: str = "U1", conversation: str = "T1:C1:1.1", team: str = "T1") -> Turn:
    return Turn(conversation, team, "C1", "1.1", user, "a question", TurnSource.MENTION)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(redis: Redis, keys: Keys, clock: Clock) -> UsageLedger:
    prices = parse_prices("gpt-5.4-mini=0.25/0.025/2.00")
    return UsageLedger(redis, keys, model="gpt-5.4-mini", prices=prices, now=clock)


# The arithmetic ---------------------------------------------------------------------------


def test_one_turn_reported_estimated_or_unreported() -> None:
    reported = UsageFigures.of_turn(Usage(100, 20, 30), cost_nanousd=7)
    assert reported == UsageFigures(
        turns=1, input_tokens=100, output_tokens=20, cached_tokens=30, priced_turns=1,
        cost_nanousd=7,
    )  # fmt: skip
    assert reported.total_tokens == 120 and reported.uncached_input_tokens == 70
    estimated = UsageFigures.of_turn(Usage(10, 5, estimated=True), cost_nanousd=None)
    assert estimated.estimated_turns == 1 and estimated.includes_estimates
    assert estimated.unpriced_turns == 1 and estimated.priced_turns == 0
    unreported = UsageFigures.of_turn(None, cost_nanousd=None)
    assert unreported == UsageFigures(turns=1, unreported_turns=1)
    assert unreported.unpriced_turns == 0, "nothing to price"


def test_figures_add_up_field_by_field() -> None:
    a = UsageFigures.of_turn(Usage(100, 20, 30), cost_nanousd=7)
    b = UsageFigures.of_turn(Usage(10, 5, estimated=True), cost_nanousd=None)
    c = UsageFigures.of_turn(None, cost_nanousd=None)
    total = a + b + c
    assert total == UsageFigures(
        turns=3, input_tokens=110, output_tokens=25, cached_tokens=30, estimated_turns=1,
        unreported_turns=1, priced_turns=1, cost_nanousd=7,
    )  # fmt: skip
    assert total.unpriced_turns == 1
    assert UsageFigures.from_fields(total.fields()) == total


def test_odd_server_figures_are_clamped() -> None:
    figures = UsageFigures.of_turn(Usage(10, -3, 50), cost_nanousd=None)
    assert (figures.input_tokens, figures.cached_tokens, figures.output_tokens) == (10, 10, 0)
    assert UsageFigures.from_fields({"turns": "x", "input_tokens": None}) == UsageFigures()


def test_periods_are_utc_days_and_months() -> None:
    evening_in_new_york = datetime.datetime(
        2026, 12, 31, 20, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
    )
    assert day_of(evening_in_new_york) == "2027-01-01"
    assert month_of(evening_in_new_york) == "2027-01"
    assert until_next_day(NOW) == datetime.timedelta(seconds=30)


# The ledger in Redis ---------------------------------------------------------------------


async def test_a_turn_is_counted_everywhere_at_once(
    ledger: UsageLedger, redis: Redis, keys: Keys
) -> None:
    figures = await ledger.record(turn(), Usage(1_000, 200, 400))
    # 600 uncached at $0.25/M + 400 cached at $0.025/M + 200 out at $2/M
    expected_cost = 150_000 + 10_000 + 400_000
    assert figures == UsageFigures(
        turns=1, input_tokens=1_000, output_tokens=200, cached_tokens=400, priced_turns=1,
        cost_nanousd=expected_cost,
    )  # fmt: skip
    assert await ledger.turn(turn().turn_id) is None, "another turn id: not counted"
    report = await ledger.report("T1", "U1")
    assert report.day == "2026-11-30" and report.month == "2026-11"
    assert report.user_today == report.user_month == figures
    assert report.workspace_today == report.workspace_month == figures
    assert await ledger.conversation("T1:C1:1.1") == figures
    # The daily hash keeps the field names the README documents.
    assert await redis.hget(keys.usage("2026-11-30"), "T1:input_tokens") == "1000"
    assert await redis.hget(keys.usage("2026-11-30"), "T1:U1:output_tokens") == "200"


async def test_totals_per_user_workspace_and_conversation(
    ledger: UsageLedger, clock: Clock
) -> None:
    await ledger.record(turn("U1", "T1:C1:1.1"), Usage(100, 10))
    await ledger.record(turn("U2", "T1:C1:1.1"), Usage(200, 20, estimated=True))
    await ledger.record(turn("U1", "T1:D1:top"), None)
    await ledger.record(turn("U1", "T2:C9:1.1", team="T2"), Usage(5_000, 5_000))
    clock.now = NOW + datetime.timedelta(minutes=1)  # the next day, the next month
    await ledger.record(turn("U1", "T1:C1:1.1"), Usage(1, 1))

    user, workspace = await ledger.today("T1", "U1")
    assert (user.turns, user.total_tokens) == (1, 2)
    assert (workspace.turns, workspace.total_tokens) == (1, 2)
    november = await ledger.period("2026-11", "T1")
    assert (november.turns, november.total_tokens, november.estimated_turns) == (3, 330, 1)
    assert november.unreported_turns == 1
    u1_november = await ledger.period("2026-11-30", "T1", "U1")
    assert (u1_november.turns, u1_november.total_tokens) == (2, 110)
    assert (await ledger.period("2026-12", "T2")).turns == 0
    thread = await ledger.conversation("T1:C1:1.1")
    assert (thread.turns, thread.total_tokens, thread.estimated_turns) == (3, 332, 1)


async def test_a_resumed_turn_is_not_counted_twice(ledger: UsageLedger) -> None:
    resumed = turn()
    first = await ledger.record(resumed, Usage(100, 10))
    again = await ledger.record(resumed, Usage(999, 999))
    assert again == first, "the figures first recorded"
    report = await ledger.report("T1", "U1")
    assert report.workspace_today.turns == 1 and report.workspace_today.total_tokens == 110
    assert await ledger.turn(resumed.turn_id) == first


async def test_keys_expire(ledger: UsageLedger, redis: Redis, keys: Keys) -> None:
    counted = turn()
    await ledger.record(counted, Usage(1, 1))
    assert 0 < await redis.ttl(keys.turn_usage(counted.turn_id)) <= TURN_TTL_SECONDS
    for key in (
        keys.usage("2026-11-30"),
        keys.usage("2026-11"),
        keys.conversation_usage("T1:C1:1.1"),
    ):
        assert USAGE_TTL_SECONDS - 60 < await redis.ttl(key) <= USAGE_TTL_SECONDS


async def test_without_a_price_for_the_model_no_cost_is_counted(
    redis: Redis, keys: Keys, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = UsageLedger(
        redis, keys, model="other", prices=parse_prices("gpt-5.4-mini=1/1/1"), now=clock
    )
    assert "no price for the model other" in caplog.text
    figures = await ledger.record(turn(), Usage(100, 10))
    assert figures.priced_turns == 0 and figures.cost_nanousd == 0
    assert figures.unpriced_turns == 1


async def test_a_recording_whose_reply_was_lost_still_counts_the_turn_once(
    ledger: UsageLedger,
) -> None:
    """The client sends the claim again when its reply was lost (a dropped connection): the
    figures it finds are its own, so the totals still get them, once."""
    claim = ledger._claim_script

    async def sent_twice(**arguments: object) -> object:
        await claim(**arguments)  # it ran; its reply never came back
        return await claim(**arguments)

    ledger._claim_script = sent_twice  # type: ignore[method-assign]
    asked = turn()
    await ledger.record(asked, Usage(100, 10))
    assert (await ledger.conversation(asked.conversation_key)).input_tokens == 100
    await ledger.record(asked, Usage(100, 10))
    assert (await ledger.conversation(asked.conversation_key)).input_tokens == 100
