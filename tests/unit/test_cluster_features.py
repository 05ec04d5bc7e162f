"""The features whose Redis steps touch keys of several slots, on one Redis and on a real
Redis Cluster: forgetting a conversation (and resuming a forget cut short), finishing a
`chat` run, feedback and quiz answers, a course's materials. On a cluster each step must
stay in one slot (no CROSSSLOT), with the same outcomes as on one Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import openai
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.backends.base import RunStatus, Usage, UserMessage
from bot.backends.chat import ChatBackend
from bot.backends.chat_history import ChatHistoryStore
from bot.backends.passages import LocalLibrary
from bot.backends.provider_files import ProviderFiles
from bot.local.openai_api import OpenAIStandIn
from bot.settings import TokenLimitField
from bot.slack.command_threads import CommandThreads
from bot.storage.keys import Keys
from bot.turns.conversations import ConversationStore
from bot.turns.forget import JOB_RETRY_SECONDS, ConversationForgetter, ForgetOutcome
from bot.turns.lease import ConversationLeases
from bot.turns.models import Turn, TurnSource
from bot.turns.queue import TurnQueue
from bot.turns.records import TurnStore
from bot.tutor.activity import LearnerActivity
from bot.tutor.feedback import Click, FeedbackStore, Rating
from bot.tutor.ledger import UsageLedger
from bot.tutor.material_text import pages_of
from bot.tutor.materials import (
    CourseMaterials,
    CourseRef,
    MaterialKind,
    MaterialStore,
    new_material,
)
from bot.tutor.quiz import Question, Quiz
from bot.tutor.quiz_store import CourseScore, CourseTotals, QuizRecord, QuizScores, QuizStore
from tests.redis_contents import naming, redis_contents

NOW = 1_800_000_000.0
KEY = "T1:C1:1.1"  # the conversation forgotten
OTHER = "T1:C1:9.9"  # another one, kept


# -- forgetting a conversation ----------------------------------------------------------------


@dataclass
class RecordingBackend:
    name: str = "fake"
    deleted: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    async def delete_conversation(self, conversation_id: str, run_ids: Sequence[str]) -> None:
        self.deleted.append((conversation_id, tuple(run_ids)))

    async def delete_file(self, file_id: str) -> None:
        self.deleted.append((file_id, ()))


def forgetter(redis: Redis, keys: Keys, backend: RecordingBackend) -> ConversationForgetter:
    leases = ConversationLeases(redis, keys, seconds=5)
    return ConversationForgetter(redis, keys, backend, leases, clock=lambda: NOW)


def question(key: str, number: int) -> Turn:
    return Turn(key, "T1", "C1", "1.1", "U1", f"Secret question {number}", TurnSource.MENTION)


async def answered(redis: Redis, keys: Keys, key: str, number: int) -> Turn:
    """A turn answered as a worker does, leaving its record (a week), its run, its usage,
    the learner's topic and guided question, an uploaded file, a stop flag and an alias."""
    turn = question(key, number)
    queue = TurnQueue(redis, keys, clock=lambda: NOW)
    assert await queue.enqueue(turn, f"Ev{uuid.uuid4().hex}", None) is not None

    async def create(_: str) -> str:
        return f"conv-{key}"

    await ConversationStore(redis, keys, "fake").find_or_create(key, create)
    opened = await TurnStore(redis, keys).open(turn.turn_id)
    assert opened is not None
    await opened[1].run_started(f"run-{key}-{number}")
    await UsageLedger(redis, keys).record(turn, Usage(100, 10))
    await LearnerActivity(redis, keys, clock=lambda: NOW).record_turn(turn, None, guided=True)
    await ProviderFiles(redis, keys).remember(key, f"file-{key}-{number}")
    await redis.set(keys.stop(turn.turn_id), "1")
    await redis.set(keys.agent_session_titled(key), "1")
    await CommandThreads(redis, keys).link("T1", "C1", f"{number}.5", key)
    await opened[1].delivered()
    await queue.remove(key, turn.turn_id, turn)
    return turn


async def left_of(redis: Redis, keys: Keys, *words: str) -> list[str]:
    return sorted(naming(await redis_contents(redis, keys.prefix), *words))


async def test_a_conversation_is_forgotten_key_by_key_once_no_question_waits(
    where: tuple[Redis, Keys],
) -> None:
    redis, keys = where
    backend = RecordingBackend()
    await answered(redis, keys, OTHER, 9)
    turns = [await answered(redis, keys, KEY, number) for number in (1, 2)]
    waiting = question(KEY, 3)
    assert await TurnQueue(redis, keys).enqueue(waiting, "EvWaiting", None) == 0
    forget = forgetter(redis, keys, backend)

    assert await forget.forget(KEY) is ForgetOutcome.BUSY, "a question waits"
    assert backend.deleted == [] and await forget.knows(KEY)
    assert await TurnQueue(redis, keys).waiting(KEY) == 1
    assert all([await redis.exists(keys.turn(t.turn_id)) for t in turns])
    assert not await redis.exists(keys.forget_jobs), "the job of a BUSY forget is dropped"

    await TurnQueue(redis, keys).remove(KEY, waiting.turn_id, waiting)  # it was answered
    assert await forget.forget(KEY) is ForgetOutcome.FORGOTTEN

    runs = tuple(f"run-{KEY}-{n}" for n in (1, 2))
    assert backend.deleted[0] == (f"conv-{KEY}", runs)
    assert sorted(backend.deleted[1:]) == [(f"file-{KEY}-{n}", ()) for n in (1, 2)]
    assert await left_of(redis, keys, KEY, "Secret question 1", "Secret question 2") == []
    assert await left_of(redis, keys, "Secret question 3") == [], "the answered turn's record"
    assert await left_of(redis, keys, OTHER), "other conversations stay"
    assert await left_of(redis, keys, "forget") == []
    assert not await forget.knows(KEY)


@pytest.mark.parametrize("dies_at", ["_commit", "_delete_named", "_keep_backend_part"])
async def test_a_forget_cut_short_is_finished_by_the_sweep_of_another_process(
    where: tuple[Redis, Keys], dies_at: str
) -> None:
    """The process dies after recording the job: before the commit, after it, or once the
    map went. Another process finishes it; nothing of the conversation is left."""
    redis, keys = where
    backend = RecordingBackend()
    await answered(redis, keys, KEY, 1)
    dying = forgetter(redis, keys, backend)

    async def died(*_: object, **__: object) -> None:
        raise RedisConnectionError("the process died here")

    setattr(dying, dies_at, died)
    with pytest.raises(RedisConnectionError):
        await dying.forget(KEY)
    assert backend.deleted == []
    assert await redis.zcard(keys.forget_jobs) == 1, "the job was recorded first"

    other = forgetter(redis, keys, backend)
    assert await other.resume_jobs(NOW + JOB_RETRY_SECONDS + 1) == 1
    assert sorted(backend.deleted) == [(f"conv-{KEY}", (f"run-{KEY}-1",)), (f"file-{KEY}-1", ())]
    assert await left_of(redis, keys, KEY, "Secret question") == []
    assert await left_of(redis, keys, "forget") == []
    assert await other.forget(KEY) is ForgetOutcome.NOTHING


# -- the chat backend's finishing step --------------------------------------------------------


async def test_a_chat_run_ends_with_its_answer_in_the_history_once(
    where: tuple[Redis, Keys], stand_in: OpenAIStandIn
) -> None:
    redis, keys = where
    client = openai.AsyncOpenAI(api_key="k", base_url=stand_in.base_url, max_retries=0)
    backend = ChatBackend(
        client, redis, keys, model="m", instructions="Teach.", max_output_tokens=100,
        token_budget=6000, token_field=TokenLimitField.MAX_TOKENS,
    )  # fmt: skip
    try:
        message = UserMessage("Who was Solon?", "turn-1")
        conversation = await backend.create_conversation(KEY)
        await backend.add_message(conversation, message)
        run_id = await backend.start_run(conversation, message)
        deadline = time.monotonic() + 10
        while not (state := await backend.run_state(conversation, run_id)).status.is_final:
            assert time.monotonic() < deadline, f"still {state.status}"
            await asyncio.sleep(0.01)  # the run's task goes on
        assert (state.status, state.error) == (RunStatus.COMPLETED, None)
        assert (await backend.answer(conversation, run_id, "")).text == "Answer 1: Who was Solon?"
        history = await ChatHistoryStore(redis, keys).read(conversation)
        assert [m.role for m in history] == ["user", "assistant"]
        assert await backend.find_run(conversation, message) == run_id
        await backend.cancel_run(conversation, run_id)  # too late: the answer stands
        assert (await backend.run_state(conversation, run_id)).status is RunStatus.COMPLETED
        await backend.delete_conversation(conversation, [run_id])
        assert await backend.find_run(conversation, message) is None
        assert await left_of(redis, keys, conversation, run_id) == []
    finally:
        await backend.close()


# -- feedback and quizzes ---------------------------------------------------------------------


async def test_feedback_counts_follow_the_last_click_once(where: tuple[Redis, Keys]) -> None:
    redis, keys = where
    store = FeedbackStore(redis, keys, clock=lambda: NOW)
    turn = "turn_0123abcd"
    assert await store.record(Click(turn, Rating.UP, "U1", "T1", "C1")) is None
    assert await store.record(Click(turn, Rating.UP, "U1", "T1", "C1")) is Rating.UP
    assert await store.counts("T1") == {"C1": {Rating.UP: 1, Rating.DOWN: 0}}, "counted once"
    assert await store.record(Click(turn, Rating.DOWN, "U2", "T1", "C1")) is Rating.UP
    assert await store.counts("T1") == {"C1": {Rating.UP: 0, Rating.DOWN: 1}}, "moved"
    assert await store.comment(turn, "U2", "Too short")
    assert (await store.of_turn(turn))["comment"] == "Too short"
    assert [c["comment"] for c in await store.latest_comments("T1", "C1")] == ["Too short"]


async def test_a_quiz_question_scores_its_first_answer_once(where: tuple[Redis, Keys]) -> None:
    redis, keys = where
    store, scores = QuizStore(redis, keys), QuizScores(redis, keys)
    quiz = Quiz(
        "Roman roads",
        (
            Question("Which road led to Brindisi?", ("Flaminia", "Appia"), 1, "The Appia."),
            Question("Who began it?", ("Appius Claudius", "Augustus"), 0, "In 312 BC."),
        ),
    )
    record = QuizRecord("quiz_0123456789abcdef", quiz, "T1", "C1", "U1", "T1:C1")
    await store.save(record)
    first = await store.answer(record.quiz_id, 0, 1, "U1")
    again = await store.answer(record.quiz_id, 0, 0, "U1")
    last = await store.answer(record.quiz_id, 1, 1, "U1")
    assert (first.right, first.counted, again.counted, last.right) == (True, True, False, False)
    assert last.score == CourseScore("T1:C1", 1, 2)
    assert (again.progress.first, again.progress.last) == ({0: 1}, {0: 0})
    assert await scores.for_learner("T1", "U1") == [CourseScore("T1:C1", 1, 2)]
    assert await scores.for_team("T1") == [CourseTotals("T1:C1", 1, 2, 1, 1)]


# -- course materials --------------------------------------------------------------------------


async def test_a_courses_materials_are_added_removed_and_forgotten(
    where: tuple[Redis, Keys],
) -> None:
    """Its list, version and passages change together (the workspace's slot on a cluster)."""
    redis, keys = where
    store = MaterialStore(redis, keys)
    library = LocalLibrary(redis, keys, store)
    materials = CourseMaterials(store, library, forgetter(redis, keys, RecordingBackend()))
    course = CourseRef("T1", "C1")
    added = []
    for name, text in (
        ("charter.txt", b"King John sealed the Magna Carta at Runnymede in 1215."),
        ("roads.txt", b"Roman roads ran straight across Britain from London to York."),
    ):
        material = new_material(name, MaterialKind.TEXT, len(text), "U1")
        added.append(await materials.add(course, material, pages_of(MaterialKind.TEXT, text), text))
    [best, *_] = await library.passages_for(course, "Who sealed the Magna Carta?", 0)
    assert "Runnymede" in best.text
    assert await materials.remove(course, added[0].material_id)
    assert [m.name for m in await store.list(course)] == ["roads.txt"]
    assert await store.version(course) == 3
    assert await materials.forget(course) is ForgetOutcome.FORGOTTEN
    assert naming(await redis_contents(redis, keys.prefix), "material") == {}
