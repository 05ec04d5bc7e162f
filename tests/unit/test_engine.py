"""The turn engine's logic against a scripted backend, with a fake clock (no real waiting)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from bot.backends.base import (
    Answer,
    BackendError,
    ConversationBusy,
    RunState,
    RunStatus,
    StepKind,
    ToolStep,
    UserMessage,
)
from bot.storage.keys import Keys
from bot.turns.conversations import ConversationStore
from bot.turns.engine import TurnEngine, TurnOutcome
from bot.turns.models import Turn, TurnSource
from bot.turns.records import AnswerPlace, InMemoryJournal, PlaceKind, TurnProgress
from bot.turns.surface import ReplyImpossible
from tests.conftest import until


@dataclass
class ScriptedBackend:
    """Each run walks through `statuses`; records every call."""

    statuses: list[RunStatus] = field(
        default_factory=lambda: [RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.COMPLETED]
    )
    answer_text: str = "An answer."
    busy_times: int = 0
    poll_errors: int = 0
    error: str | None = None
    found: bool = False
    partials: list[str] = field(default_factory=list)  # partial text per poll, if streaming
    steps: tuple[ToolStep, ...] = ()  # the tool steps every unfinished poll reports
    name: str = "scripted"
    calls: list[str] = field(default_factory=list)
    forgotten_runs: list[str] = field(default_factory=list)
    _polls: int = 0

    async def create_conversation(self, conversation_key: str) -> str:
        self.calls.append("create")
        return f"conv-{len(self.calls)}"

    async def add_message(self, conversation_id: str, message: UserMessage) -> str:
        if self.busy_times:
            self.busy_times -= 1
            raise ConversationBusy("busy")
        self.calls.append(f"add:{conversation_id}:{message.text}")
        return "msg-1"

    async def start_run(self, conversation_id: str, message: UserMessage) -> str:
        self.calls.append("run")
        return "run-1"

    async def run_state(self, conversation_id: str, run_id: str) -> RunState:
        if self.poll_errors:
            self.poll_errors -= 1
            raise BackendError("poll failed")
        status = self.statuses[min(self._polls, len(self.statuses) - 1)]
        partial = self.partials[self._polls] if self._polls < len(self.partials) else ""
        self._polls += 1
        error = self.error if status.is_final else None
        return RunState(
            status,
            error=error,
            partial_text="" if status.is_final else partial,
            steps=() if status.is_final else self.steps,
        )

    async def find_message(self, conversation_id: str, message: UserMessage) -> str | None:
        self.calls.append("find_message")
        return "msg-found" if self.found else None

    async def find_run(self, conversation_id: str, message: UserMessage) -> str | None:
        self.calls.append("find_run")
        return "run-found" if self.found else None

    async def answer(self, conversation_id: str, run_id: str, after_message_id: str) -> Answer:
        self.calls.append(f"answer:after={after_message_id}")
        return Answer(self.answer_text)

    async def cancel_run(self, conversation_id: str, run_id: str) -> None:
        self.calls.append("cancel")

    async def delete_conversation(self, conversation_id: str, run_ids: Sequence[str]) -> None:
        self.calls.append(f"delete:{conversation_id}")

    async def delete_file(self, file_id: str) -> None:
        self.calls.append(f"delete_file:{file_id}")

    async def forget_run(self, conversation_id: str, run_id: str) -> None:
        self.forgotten_runs.append(run_id)

    async def close(self) -> None:
        pass

    def release(self, run_id: str) -> None:
        self.calls.append(f"release:{run_id}")

    def streamed_state(self, run_id: str) -> RunState | None:
        return None  # polled: see StreamingBackend for one that streams

    def stream_changed(self, run_id: str) -> asyncio.Event | None:
        return None


@dataclass
class RecordingSurface:
    events: list[str] = field(default_factory=list)
    orphan: str | None = None
    streams: bool = True
    steps_held_back: int = 0  # how many show_steps calls find the edits held back

    async def restore(self, place: AnswerPlace) -> None:
        self.events.append(f"restore:{place.ref}")

    async def find_placeholder(self) -> AnswerPlace | None:
        self.events.append("find")
        return AnswerPlace(PlaceKind.MESSAGE, self.orphan) if self.orphan else None

    async def remove_strays(self) -> None:
        self.events.append("remove_strays")

    async def show_placeholder(self) -> AnswerPlace:
        self.events.append("placeholder")
        return AnswerPlace(PlaceKind.MESSAGE, "1.5")

    async def show_status(
        self, status: RunStatus, elapsed_seconds: float, *, retrying: bool = False
    ) -> None:
        self.events.append(f"status:{status.value}" + (" (retrying)" if retrying else ""))

    async def show_steps(self, steps: tuple[ToolStep, ...]) -> bool:
        self.events.append("steps:" + ",".join(f"{s.title}/{s.status.value}" for s in steps))
        if self.steps_held_back:
            self.steps_held_back -= 1
            return False
        return True

    async def show_partial(self, text: str) -> bool:
        if self.streams:
            self.events.append(f"partial:{text}")
        return self.streams

    async def show_answer(
        self, text: str, *, note: str | None = None, usage: object = None
    ) -> None:
        self.events.append(f"answer:{text}" + (f" ({note})" if note else ""))

    async def show_error(self, message: str) -> None:
        self.events.append(f"error:{message}")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def make_turn(key: str = "T1:C1:1.1", text: str = "Who was Hypatia?") -> Turn:
    return Turn(key, "T1", "C1", "1.1", "U1", text, TurnSource.MENTION)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_engine(backend: ScriptedBackend, redis: Redis, keys: Keys, clock: FakeClock) -> TurnEngine:
    store = ConversationStore(redis, keys, backend.name)
    return TurnEngine(
        backend, store, poll_interval=1.0, run_timeout=30.0, sleep=clock.sleep, clock=clock
    )


async def test_completed_run_shows_each_status_once_then_the_answer(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    backend = ScriptedBackend(
        statuses=[RunStatus.QUEUED, RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.COMPLETED]
    )
    surface = RecordingSurface()
    outcome = await make_engine(backend, redis, keys, clock).run(make_turn(), surface)
    assert outcome is TurnOutcome.ANSWERED
    assert surface.events == [
        "placeholder",
        "status:queued",
        "status:in_progress",
        "answer:An answer.",
    ]
    assert backend.calls == [
        "create", "add:conv-1:Who was Hypatia?", "run", "answer:after=msg-1", "release:run-1"
    ]  # fmt: skip


async def test_tool_steps_held_back_are_shown_again_shortly(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    searching = ToolStep("ws_1", StepKind.WEB_SEARCH)
    backend = ScriptedBackend(statuses=[RunStatus.IN_PROGRESS] * 8 + [RunStatus.COMPLETED])
    backend.steps = (searching,)
    surface = RecordingSurface(steps_held_back=1)  # the first edit comes too soon after another
    assert await make_engine(backend, redis, keys, clock).run(make_turn(), surface) == (
        TurnOutcome.ANSWERED
    )
    shown = [event for event in surface.events if event.endswith("/in_progress")]
    assert shown == [f"steps:{searching.title}/in_progress"] * 2, surface.events


async def test_second_turn_reuses_the_conversation(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    backend = ScriptedBackend()
    engine = make_engine(backend, redis, keys, clock)
    await engine.run(make_turn(), RecordingSurface())
    await engine.run(make_turn(text="And then?"), RecordingSurface())
    assert backend.calls.count("create") == 1
    assert "add:conv-1:And then?" in backend.calls


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (RunStatus.FAILED, "couldn't answer"),
        (RunStatus.EXPIRED, "took too long"),
        (RunStatus.CANCELLED, "stopped"),
    ],
)
async def test_unsuccessful_runs_end_in_a_plain_message(
    redis: Redis, keys: Keys, clock: FakeClock, status: RunStatus, expected: str
) -> None:
    backend = ScriptedBackend(statuses=[RunStatus.IN_PROGRESS, status], error="boom")
    surface = RecordingSurface()
    outcome = await make_engine(backend, redis, keys, clock).run(make_turn(), surface)
    assert outcome is not TurnOutcome.ANSWERED
    assert surface.events[-1].startswith("error:") and expected in surface.events[-1]


async def test_incomplete_run_shows_the_partial_answer_with_a_note(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    backend = ScriptedBackend(statuses=[RunStatus.INCOMPLETE], error="incomplete: max_tokens")
    surface = RecordingSurface()
    await make_engine(backend, redis, keys, clock).run(make_turn(), surface)
    assert surface.events[-1] == "answer:An answer. (" + (
        "The answer was cut short because it reached the length limit.)"
    )


async def test_run_past_the_deadline_is_cancelled_and_explained(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    backend = ScriptedBackend(statuses=[RunStatus.IN_PROGRESS])
    surface = RecordingSurface()
    outcome = await make_engine(backend, redis, keys, clock).run(make_turn(), surface)
    assert outcome is TurnOutcome.TIMED_OUT
    assert "cancel" in backend.calls
    assert "longer than 30 seconds" in surface.events[-1]
    assert clock.now == pytest.approx(30.0)


async def test_busy_conversation_is_retried_until_free(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    backend = ScriptedBackend(busy_times=3)
    surface = RecordingSurface()
    outcome = await make_engine(backend, redis, keys, clock).run(make_turn(), surface)
    assert outcome is TurnOutcome.ANSWERED
    assert backend.calls.count("run") == 1


async def test_status_checks_failing_repeatedly_end_the_turn_with_an_error(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    backend = ScriptedBackend(poll_errors=5)
    surface = RecordingSurface()
    outcome = await make_engine(backend, redis, keys, clock).run(make_turn(), surface)
    assert outcome is TurnOutcome.FAILED
    assert "cancel" in backend.calls
    assert surface.events[-1].startswith("error:")


async def test_a_single_failed_status_check_is_survived(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    backend = ScriptedBackend(poll_errors=1)
    surface = RecordingSurface()
    assert await make_engine(backend, redis, keys, clock).run(make_turn(), surface) is (
        TurnOutcome.ANSWERED
    )
    assert surface.events == [
        "placeholder", "status:in_progress (retrying)", "status:queued",
        "status:in_progress", "answer:An answer.",
    ], "the user sees the retry, then the statuses again"  # fmt: skip


async def test_unexpected_exception_still_replaces_the_placeholder(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    class Broken(ScriptedBackend):
        async def start_run(self, conversation_id: str, message: UserMessage) -> str:
            raise RuntimeError("bug")

    surface = RecordingSurface()
    outcome = await make_engine(Broken(), redis, keys, clock).run(make_turn(), surface)
    assert outcome is TurnOutcome.ERROR
    assert surface.events[-1].startswith("error:Sorry, something went wrong")


async def test_a_resumed_turn_follows_the_recorded_run_without_repeating_steps(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    backend = ScriptedBackend()
    journal = InMemoryJournal(
        TurnProgress(
            place=AnswerPlace(PlaceKind.MESSAGE, "1.5"),
            conversation_id="conv-9",
            message_id="m",
            run_id="r",
        )
    )
    surface = RecordingSurface()
    outcome = await make_engine(backend, redis, keys, clock).run(make_turn(), surface, journal)
    assert outcome is TurnOutcome.ANSWERED
    assert backend.calls == ["answer:after=m", "release:r"]
    assert surface.events[0] == "restore:1.5" and "placeholder" not in surface.events
    assert journal.progress.delivered


@pytest.mark.parametrize("found", [True, False])
async def test_an_interrupted_create_is_looked_for_before_it_is_repeated(
    redis: Redis, keys: Keys, clock: FakeClock, found: bool
) -> None:
    backend = ScriptedBackend(found=found)
    journal = InMemoryJournal(
        TurnProgress(
            place=AnswerPlace(PlaceKind.MESSAGE, "1.5"),
            conversation_id="conv-9",
            adding_message=True,
            starting_run=True,
        )
    )
    await make_engine(backend, redis, keys, clock).run(make_turn(), RecordingSurface(), journal)
    if found:
        assert backend.calls[:2] == ["find_message", "find_run"]
        assert not any(c.startswith("add:") or c == "run" for c in backend.calls)
        assert journal.progress.run_id == "run-found"
    else:
        assert backend.calls[:4] == [
            "find_message",
            "add:conv-9:Who was Hypatia?",
            "find_run",
            "run",
        ]


async def test_steps_are_recorded_as_they_happen(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    backend = ScriptedBackend()
    journal = InMemoryJournal()
    await make_engine(backend, redis, keys, clock).run(make_turn(), RecordingSurface(), journal)
    progress = journal.progress
    assert (progress.conversation_id, progress.message_id, progress.run_id) == (
        "conv-1",
        "msg-1",
        "run-1",
    )
    assert progress.adding_message and progress.starting_run and progress.delivered


@pytest.mark.parametrize("orphan", ["7.7", None])
async def test_a_placeholder_posted_before_a_crash_is_looked_for_first(
    redis: Redis, keys: Keys, clock: FakeClock, orphan: str | None
) -> None:
    journal = InMemoryJournal(TurnProgress(posting_placeholder=True))
    surface = RecordingSurface(orphan=orphan)
    await make_engine(ScriptedBackend(), redis, keys, clock).run(make_turn(), surface, journal)
    if orphan:
        assert surface.events[:2] == ["find", "status:queued"]
        assert journal.progress.place == AnswerPlace(PlaceKind.MESSAGE, "7.7")
    else:
        assert surface.events[:2] == ["find", "placeholder"]
        assert journal.progress.place == AnswerPlace(PlaceKind.MESSAGE, "1.5")


async def test_a_long_run_is_shown_to_be_still_working(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    backend = ScriptedBackend(statuses=[RunStatus.IN_PROGRESS] * 38 + [RunStatus.COMPLETED])
    surface = RecordingSurface()
    await make_engine(backend, redis, keys, clock).run(make_turn(), surface)
    assert surface.events.count("status:in_progress") == 3, "at 0 s, 10 s and 20 s"


def test_status_words() -> None:
    from bot.slack.placeholder import status_text

    assert "waiting" in (status_text(RunStatus.QUEUED, 0) or "")
    assert "still working on it, 12 s" in (status_text(RunStatus.IN_PROGRESS, 12.4) or "")
    assert status_text(RunStatus.COMPLETED, 1) is None


@pytest.mark.parametrize("streams", [True, False], ids=["streaming", "not-streaming"])
async def test_a_growing_answer_is_shown_instead_of_statuses(
    redis: Redis, keys: Keys, clock: FakeClock, streams: bool
) -> None:
    statuses = [RunStatus.QUEUED] + [RunStatus.IN_PROGRESS] * 4 + [RunStatus.COMPLETED]
    backend = ScriptedBackend(
        statuses=statuses, partials=["", "", "An", "An", "An ans"], answer_text="An answer."
    )
    surface = RecordingSurface(streams=streams)
    await make_engine(backend, redis, keys, clock).run(make_turn(), surface)
    if streams:
        assert surface.events == [
            "placeholder", "status:queued", "status:in_progress",
            "partial:An", "partial:An ans", "answer:An answer.",
        ]  # fmt: skip
    else:
        assert surface.events == [
            "placeholder", "status:queued", "status:in_progress", "answer:An answer.",
        ]  # fmt: skip


async def test_what_the_backend_kept_for_a_run_is_released_however_the_turn_ends(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    class Crashing(ScriptedBackend):
        async def run_state(self, conversation_id: str, run_id: str) -> RunState:
            raise RuntimeError("bug")

    backend = Crashing()
    outcome = await make_engine(backend, redis, keys, clock).run(make_turn(), RecordingSurface())
    assert outcome is TurnOutcome.ERROR
    assert backend.calls[-1] == "release:run-1"


async def test_a_reply_slack_refuses_for_good_ends_the_turn_and_cancels_its_run(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    class Refusing(RecordingSurface):
        async def show_answer(
            self, text: str, *, note: str | None = None, usage: object = None
        ) -> None:
            raise ReplyImpossible("channel_not_found")

    backend = ScriptedBackend()
    journal = InMemoryJournal()
    outcome = await make_engine(backend, redis, keys, clock).run(make_turn(), Refusing(), journal)
    assert outcome is TurnOutcome.UNDELIVERABLE
    assert journal.progress.delivered
    assert "cancel" in backend.calls


class StreamingBackend(ScriptedBackend):
    """A run this process streams: its news arrive through `push`, never through a poll."""

    def __init__(self) -> None:
        super().__init__()
        self.state = RunState(RunStatus.QUEUED)
        self.changed = asyncio.Event()
        self.polls = 0

    async def run_state(self, conversation_id: str, run_id: str) -> RunState:
        self.polls += 1
        return self.state

    def streamed_state(self, run_id: str) -> RunState | None:
        return self.state

    def stream_changed(self, run_id: str) -> asyncio.Event | None:
        return self.changed

    def push(self, state: RunState) -> None:
        self.state = state
        self.changed.set()


async def test_a_streamed_run_is_followed_by_its_stream_without_a_poll(
    redis: Redis, keys: Keys
) -> None:
    backend, surface = StreamingBackend(), RecordingSurface()
    store = ConversationStore(redis, keys, backend.name)
    engine = TurnEngine(backend, store, poll_interval=1.0, run_timeout=60.0)
    turn = asyncio.create_task(engine.run(make_turn(), surface))
    await until(lambda: "status:queued" in surface.events)
    backend.push(RunState(RunStatus.IN_PROGRESS, partial_text="An"))
    await until(lambda: "partial:An" in surface.events)
    backend.push(RunState(RunStatus.COMPLETED))
    assert await turn is TurnOutcome.ANSWERED
    assert backend.polls == 0, "the stream said everything; the server was never asked"
    assert surface.events[-1] == "answer:An answer."


async def test_a_run_that_is_not_streamed_is_asked_about_less_often_as_it_goes_on(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    """Over the whole run, never more often than the classic loop's every 0.5 s."""
    backend = ScriptedBackend(statuses=[RunStatus.IN_PROGRESS] * 200 + [RunStatus.COMPLETED])
    store = ConversationStore(redis, keys, backend.name)
    engine = TurnEngine(
        backend, store, poll_interval=2.0, run_timeout=60.0, sleep=clock.sleep, clock=clock
    )
    await engine.run(make_turn(), RecordingSurface())
    polls = backend._polls
    assert polls <= clock.now / 0.5 + 1
    assert polls < clock.now / 0.5 * 0.6, "backs off for a long run"


async def test_the_servers_poll_after_hint_is_honoured(
    redis: Redis, keys: Keys, clock: FakeClock
) -> None:
    class Hinting(ScriptedBackend):
        async def run_state(self, conversation_id: str, run_id: str) -> RunState:
            state = await super().run_state(conversation_id, run_id)
            return RunState(state.status, poll_after=1.5)

    backend = Hinting(statuses=[RunStatus.IN_PROGRESS] * 4 + [RunStatus.COMPLETED])
    store = ConversationStore(redis, keys, backend.name)
    engine = TurnEngine(
        backend, store, poll_interval=1.0, run_timeout=60.0, sleep=clock.sleep, clock=clock
    )
    await engine.run(make_turn(), RecordingSurface())
    assert clock.now == pytest.approx(0.5 + 4 * 1.5), "the first check after 0.5 s"
