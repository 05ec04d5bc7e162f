"""Daily token budgets: the decision, the message, and the engine that refuses a run."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from redis.asyncio import Redis

from bot.backends.base import RunState, Usage
from bot.storage.keys import Keys
from bot.turns.conversations import ConversationStore
from bot.turns.engine import TurnEngine, TurnOutcome
from bot.turns.models import Turn
from bot.turns.records import InMemoryJournal, TurnProgress
from bot.tutor.budgets import DailyBudgetGate, DailyBudgets, Spent, in_words
from bot.tutor.ledger import UsageLedger
from bot.tutor.usage import UsageFigures
from tests.unit.test_engine import FakeClock, RecordingSurface, ScriptedBackend, make_turn

EVENING = datetime.datetime(2026, 11, 30, 20, 48, 10, tzinfo=datetime.UTC)


def used(tokens: int) -> UsageFigures:
    return UsageFigures(turns=1, input_tokens=tokens)


@pytest.mark.parametrize(
    ("budgets", "user", "workspace", "spent"),
    [
        (DailyBudgets(), 10**9, 10**9, None),
        (DailyBudgets(per_user=100), 99, 10**9, None),
        (DailyBudgets(per_user=100), 100, 100, Spent.USER),
        (DailyBudgets(per_workspace=1_000), 10, 999, None),
        (DailyBudgets(per_workspace=1_000), 10, 1_000, Spent.WORKSPACE),
        (DailyBudgets(per_user=100, per_workspace=1_000), 500, 5_000, Spent.USER),
    ],
)
def test_which_budget_is_spent(
    budgets: DailyBudgets, user: int, workspace: int, spent: Spent | None
) -> None:
    assert budgets.spent(used(user), used(workspace)) is spent


def test_output_tokens_count_too() -> None:
    figures = UsageFigures(turns=1, input_tokens=60, output_tokens=40)
    assert DailyBudgets(per_user=100).spent(figures, figures) is Spent.USER


def test_the_message_says_which_budget_and_when_it_resets() -> None:
    budgets = DailyBudgets(per_user=50_000, per_workspace=2_000_000)
    assert budgets.refusal(Spent.USER, EVENING) == (
        "You have used your 50,000 tokens for today, so I can't answer this one. "
        "Your budget starts again at midnight UTC (in 3 h 11 min)."
    )
    assert "This workspace has used its 2,000,000 tokens" in budgets.refusal(
        Spent.WORKSPACE, EVENING
    )


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (30, "in under a minute"),
        (45 * 60, "in 45 min"),
        (7200, "in 2 h"),
        (3 * 3600 + 60, "in 3 h 1 min"),
    ],
)
def test_waits_in_words(seconds: int, words: str) -> None:
    assert in_words(datetime.timedelta(seconds=seconds)) == words


async def test_the_gate_reads_today_from_the_ledger(redis: Redis, keys: Keys) -> None:
    now = EVENING
    ledger = UsageLedger(redis, keys, now=lambda: now)
    gate = DailyBudgetGate(ledger, DailyBudgets(per_user=100, per_workspace=150), lambda: now)
    alice, bob = make_turn(), dataclasses.replace(make_turn(), user_id="U2")
    assert await gate.refusal(alice) is None
    await ledger.record(alice, Usage(80, 20))
    assert "You have used your 100 tokens" in (await gate.refusal(alice) or "")
    assert await gate.refusal(bob) is None, "Bob has his own budget"
    await ledger.record(bob, Usage(50, 0))
    assert "This workspace has used its 150 tokens" in (await gate.refusal(bob) or "")
    now = EVENING + datetime.timedelta(hours=4)  # the next UTC day
    assert await gate.refusal(alice) is None and await gate.refusal(bob) is None


async def test_no_budget_no_redis_read() -> None:
    class Unused:
        async def today(self, *args: object) -> None:
            raise AssertionError("read without a budget")

    gate = DailyBudgetGate(Unused(), DailyBudgets())  # type: ignore[arg-type]
    assert await gate.refusal(make_turn()) is None


# The engine ------------------------------------------------------------------------------


class Refusing:
    def __init__(self, message: str | None = "Budget spent.") -> None:
        self.message = message
        self.asked: list[str] = []

    async def refusal(self, turn: Turn) -> str | None:
        self.asked.append(turn.turn_id)
        return self.message


class Recorder:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, Usage | None]] = []

    async def record(self, turn: Turn, usage: Usage | None) -> UsageFigures:
        self.recorded.append((turn.turn_id, usage))
        return UsageFigures.of_turn(usage, cost_nanousd=None)


class UsageSurface(RecordingSurface):
    async def show_answer(
        self, text: str, *, note: str | None = None, usage: object = None
    ) -> None:
        self.events.append(f"answer:{text} usage={usage}")


def engine(
    backend: ScriptedBackend, redis: Redis, keys: Keys, clock: FakeClock, **extra: object
) -> TurnEngine:
    store = ConversationStore(redis, keys, backend.name)
    return TurnEngine(
        backend, store, poll_interval=1.0, run_timeout=30.0, sleep=clock.sleep, clock=clock,
        **extra,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_a_spent_budget_replaces_the_run_with_its_message(redis: Redis, keys: Keys) -> None:
    backend, surface = ScriptedBackend(), RecordingSurface()
    turn_engine = engine(backend, redis, keys, FakeClock(), budgets=Refusing())
    outcome = await turn_engine.run(make_turn(), surface)
    assert outcome is TurnOutcome.OVER_BUDGET
    assert surface.events == ["placeholder", "error:Budget spent."]
    assert backend.calls == [], "nothing was sent to the model server"


async def test_a_turn_within_budget_runs_and_shows_its_usage(redis: Redis, keys: Keys) -> None:
    class Reporting(ScriptedBackend):
        async def run_state(self, conversation_id: str, run_id: str) -> RunState:
            state = await super().run_state(conversation_id, run_id)
            return dataclasses.replace(state, usage=Usage(10, 5))

    budgets, recorder, surface = Refusing(None), Recorder(), UsageSurface()
    turn_engine = engine(Reporting(), redis, keys, FakeClock(), budgets=budgets, usage=recorder)
    turn = make_turn()
    assert await turn_engine.run(turn, surface) is TurnOutcome.ANSWERED
    assert budgets.asked == [turn.turn_id]
    assert recorder.recorded == [(turn.turn_id, Usage(10, 5))]
    expected = UsageFigures(turns=1, input_tokens=10, output_tokens=5)
    assert surface.events[-1] == f"answer:An answer. usage={expected}"


@pytest.mark.parametrize("step", ["run_started", "run_starting"])
async def test_a_resumed_turn_whose_run_started_is_not_refused(
    redis: Redis, keys: Keys, step: str
) -> None:
    backend, budgets = ScriptedBackend(found=True), Refusing()
    progress = TurnProgress(conversation_id="conv-0", message_id="msg-1")
    if step == "run_started":
        progress.run_id = "run-1"
    else:
        progress.starting_run = True
    turn_engine = engine(backend, redis, keys, FakeClock(), budgets=budgets)
    outcome = await turn_engine.run(make_turn(), RecordingSurface(), InMemoryJournal(progress))
    assert outcome is TurnOutcome.ANSWERED and budgets.asked == []


async def test_bookkeeping_that_fails_neither_refuses_nor_loses_the_answer(
    redis: Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        async def refusal(self, turn: Turn) -> str | None:
            raise ConnectionError("Redis is away")

        async def record(self, turn: Turn, usage: Usage | None) -> UsageFigures:
            raise ConnectionError("Redis is away")

    backend, surface = ScriptedBackend(), UsageSurface()
    turn_engine = engine(backend, redis, keys, FakeClock(), budgets=Broken(), usage=Broken())
    assert await turn_engine.run(make_turn(), surface) is TurnOutcome.ANSWERED
    assert surface.events[-1] == "answer:An answer. usage=None"
    assert "daily budgets not checked" in caplog.text and "usage not counted" in caplog.text
