"""The engine asks how a turn is taught once, keeps it in the journal, and sends it."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis

from bot.backends.base import UserMessage
from bot.storage.keys import Keys
from bot.turns.conversations import ConversationStore
from bot.turns.engine import TurnEngine, TurnOutcome
from bot.turns.models import Turn
from bot.turns.queue import TurnQueue
from bot.turns.records import InMemoryJournal, TurnProgress, TurnStore
from bot.tutor.courses import Mode
from bot.tutor.instructions import Teaching
from tests.unit.test_engine import FakeClock, RecordingSurface, ScriptedBackend, make_turn


@dataclass
class InstructionsBackend(ScriptedBackend):
    sent: list[UserMessage] = field(default_factory=list)

    async def start_run(self, conversation_id: str, message: UserMessage) -> str:
        self.sent.append(message)
        return await super().start_run(conversation_id, message)


@dataclass
class FixedTeacher:
    teaching: Teaching
    asked: int = 0
    fails: bool = False

    async def prepare(self, turn: Turn) -> Teaching:
        self.asked += 1
        if self.fails:
            raise ConnectionError("Redis is away")
        return self.teaching


GUIDED = Teaching(Mode.GUIDED, "Course tutor.", "Guide.")


def engine(
    backend: InstructionsBackend, redis: Redis, keys: Keys, teacher: FixedTeacher
) -> TurnEngine:
    clock = FakeClock()
    store = ConversationStore(redis, keys, backend.name)
    return TurnEngine(
        backend, store, poll_interval=1.0, run_timeout=30.0, sleep=clock.sleep, clock=clock,
        teacher=teacher,
    )  # fmt: skip


async def test_the_turns_teaching_is_chosen_kept_and_sent(redis: Redis, keys: Keys) -> None:
    backend, teacher, journal = InstructionsBackend(), FixedTeacher(GUIDED), InMemoryJournal()
    outcome = await engine(backend, redis, keys, teacher).run(
        make_turn(), RecordingSurface(), journal
    )
    assert outcome is TurnOutcome.ANSWERED
    [sent] = backend.sent
    assert (sent.instructions, sent.additional_instructions) == ("Course tutor.", "Guide.")
    assert journal.progress.teaching == GUIDED


async def test_a_resumed_turn_keeps_the_teaching_it_began_with(redis: Redis, keys: Keys) -> None:
    """The course changed meanwhile: the turn still runs with what its journal kept."""
    backend, teacher = InstructionsBackend(), FixedTeacher(Teaching(Mode.DIRECT, "New course."))
    journal = InMemoryJournal(TurnProgress(teaching=GUIDED))
    await engine(backend, redis, keys, teacher).run(make_turn(), RecordingSurface(), journal)
    assert teacher.asked == 0
    assert backend.sent[0].instructions == "Course tutor."


async def test_a_course_that_cannot_be_read_leaves_the_default_tutor(
    redis: Redis, keys: Keys
) -> None:
    backend, teacher = InstructionsBackend(), FixedTeacher(GUIDED, fails=True)
    outcome = await engine(backend, redis, keys, teacher).run(make_turn(), RecordingSurface())
    assert outcome is TurnOutcome.ANSWERED
    assert (backend.sent[0].instructions, backend.sent[0].additional_instructions) == (None, "")


async def test_the_teaching_is_kept_in_the_turns_record_in_redis(redis: Redis, keys: Keys) -> None:
    turn = make_turn()
    await TurnQueue(redis, keys).enqueue(turn, None, None)
    opened = await TurnStore(redis, keys).open(turn.turn_id)
    assert opened is not None and opened[1].progress.teaching is None
    await opened[1].teaching_chosen(GUIDED)
    reopened = await TurnStore(redis, keys).open(turn.turn_id)
    assert reopened is not None and reopened[1].progress.teaching == GUIDED
    assert reopened[0].mode_override is None
