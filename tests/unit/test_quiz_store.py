"""Quizzes in Redis: the first answer to a question scores, per learner and course."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from bot.storage.keys import Keys
from bot.tutor.quiz import Question, Quiz
from bot.tutor.quiz_store import (
    QUIZ_TTL_SECONDS,
    CourseScore,
    CourseTotals,
    NotTheAsker,
    QuizGone,
    QuizRecord,
    QuizScores,
    QuizStore,
    course_of,
    is_quiz_id,
    new_quiz_id,
)

QUIZ = Quiz(
    "Roman roads",
    (
        Question("Which road led to Brindisi?", ("Via Flaminia", "Via Appia", "Via Aurelia"), 1,
                 "The Via Appia ran to Brindisi."),
        Question("Who began it?", ("Appius Claudius", "Augustus"), 0, "In 312 BC."),
    ),
)  # fmt: skip


def record(user: str = "U1", channel: str = "C1", team: str = "T1") -> QuizRecord:
    return QuizRecord(new_quiz_id(), QUIZ, team, channel, user, course_of(team, channel))


@pytest.fixture
def store(redis: Redis, keys: Keys) -> QuizStore:
    return QuizStore(redis, keys)


@pytest.fixture
def scores(redis: Redis, keys: Keys) -> QuizScores:
    return QuizScores(redis, keys)


def test_courses_are_channels_and_the_dms_of_a_workspace() -> None:
    assert course_of("T1", "C1") == "T1:C1"
    assert course_of("T1", "G9") == "T1:G9"
    assert course_of("T1", "D1") == course_of("T1", "D2") == "T1:dm"
    assert is_quiz_id(new_quiz_id()) and not is_quiz_id("quiz_x") and not is_quiz_id("turn_1")


async def test_a_quiz_is_kept_a_week_as_it_was_made(
    store: QuizStore, redis: Redis, keys: Keys
) -> None:
    made = record()
    await store.save(made)
    assert await store.load(made.quiz_id) == made
    assert 0 < await redis.ttl(keys.quiz(made.quiz_id)) <= QUIZ_TTL_SECONDS
    assert await store.load(new_quiz_id()) is None


async def test_the_first_answer_scores_and_later_ones_are_only_marked(
    store: QuizStore, scores: QuizScores
) -> None:
    made = record()
    await store.save(made)
    wrong = await store.answer(made.quiz_id, 0, 0, "U1")
    assert (wrong.right, wrong.counted, wrong.score) == (False, True, CourseScore("T1:C1", 0, 1))
    right = await store.answer(made.quiz_id, 0, 1, "U1")
    assert (right.right, right.counted, right.score) == (True, False, CourseScore("T1:C1", 0, 1))
    assert (right.progress.first, right.progress.last) == ({0: 0}, {0: 1})
    done = await store.answer(made.quiz_id, 1, 0, "U1")
    assert done.score == CourseScore("T1:C1", 1, 2)
    assert done.progress.right(QUIZ) == 1 and done.progress.first == {0: 0, 1: 0}
    assert await store.progress(made.quiz_id) == done.progress

    assert await scores.for_learner("T1", "U1") == [CourseScore("T1:C1", 1, 2)]
    assert await scores.for_course("T1", "T1:C1") == CourseTotals("T1:C1", 1, 2, 1, 1)


async def test_only_the_asker_answers_and_only_what_exists(store: QuizStore) -> None:
    made = record()
    await store.save(made)
    with pytest.raises(NotTheAsker) as refused:
        await store.answer(made.quiz_id, 0, 1, "U2")
    assert refused.value.asker == "U1"
    for question, choice in ((2, 0), (0, 3), (-1, 0)):
        with pytest.raises(QuizGone):
            await store.answer(made.quiz_id, question, choice, "U1")
    with pytest.raises(QuizGone):
        await store.answer(new_quiz_id(), 0, 0, "U1")


async def test_clicks_at_the_same_moment_score_once(store: QuizStore, scores: QuizScores) -> None:
    made = record()
    await store.save(made)
    marked = await asyncio.gather(*(store.answer(made.quiz_id, 0, c % 3, "U1") for c in range(8)))
    assert sum(m.counted for m in marked) == 1
    [score] = await scores.for_learner("T1", "U1")
    assert score.answered == 1


async def test_scores_per_learner_and_course_and_totals_per_course(
    store: QuizStore, scores: QuizScores
) -> None:
    for user, channel, choices in (
        ("U1", "C1", (1, 0)),
        ("U1", "D1", (0, 0)),
        ("U2", "C1", (1, 1)),
        ("U3", "C2", ()),
        ("U4", "C1", (1, 0)),
    ):
        made = record(user, channel)
        await store.save(made)
        for question, choice in enumerate(choices):
            await store.answer(made.quiz_id, question, choice, user)
    await store.save(record("U9", "C1", team="T2"))  # another workspace

    assert await scores.for_learner("T1", "U1") == [
        CourseScore("T1:C1", 2, 2),
        CourseScore("T1:dm", 1, 2),
    ]
    assert await scores.for_learner("T1", "U3") == []
    assert await scores.for_team("T1") == [
        CourseTotals("T1:C1", quizzes=3, answered=6, right=5, learners=3),
        CourseTotals("T1:C2", quizzes=1, answered=0, right=0, learners=0),
        CourseTotals("T1:dm", quizzes=1, answered=2, right=1, learners=1),
    ]
    assert await scores.for_team("T3") == []
    assert await scores.for_course("T1", "T1:C9") == CourseTotals("T1:C9", 0, 0, 0, 0)
