"""Quizzes in Redis: each quiz with its right answers (never sent to Slack), the answers
clicked on it, and the scores they make per learner and course.

A quiz is kept for `QUIZ_TTL_SECONDS` (a week) after it was shown. The first answer to a
question counts for the score; later clicks on the same question are only marked. Scores
are kept per learner and course, and per course for whoever looks after it (admins): quizzes
shown, questions answered, answered right, learners. They hold no text of a quiz or of a
conversation.

A course is, for now, a channel (`<team>:<channel>`); every direct message with the bot
counts for one course of its own per workspace (`<team>:dm`). `QuizScores` is the read side
for the App Home.

Keys (see `bot.storage.keys`): `quiz:<id>`, `quiz:answers:<id>`, `quiz:scores:<team>:<user>`
(fields `right:<course>`, `answered:<course>`), `quiz:courses:<team>` (fields
`quizzes:<course>`, `answered:<course>`, `right:<course>`), `quiz:learners:<course>`. The
scores are in other slots than the quiz on Redis Cluster: a click is stored first, deciding
once whether it counts, then counted (see `QuizStore.answer`).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import NamedTuple

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.storage.keys import Keys
from bot.tutor.home import QuizScore
from bot.tutor.quiz import Question, Quiz

QUIZ_TTL_SECONDS = 7 * 24 * 60 * 60
SCORES_TTL_SECONDS = 400 * 24 * 60 * 60  # a bit over a year, like the usage ledger
DM_COURSE = "dm"
_QUIZ_ID = re.compile(r"quiz_[0-9a-f]{16}")


def new_quiz_id() -> str:
    return "quiz_" + secrets.token_hex(8)


def is_quiz_id(text: str) -> bool:
    return bool(_QUIZ_ID.fullmatch(text))


def course_of(team_id: str, channel_id: str) -> str:
    """The course a quiz asked in this channel counts for: the channel itself, and for
    direct messages (channel ids starting with D) one course per workspace."""
    place = DM_COURSE if channel_id.startswith("D") else channel_id
    return f"{team_id}:{place}"


@dataclass(frozen=True)
class QuizRecord:
    """A quiz as shown to the learner who asked for it, and where it counts."""

    quiz_id: str
    quiz: Quiz
    team_id: str
    channel_id: str
    user_id: str  # the learner who asked: only their answers count
    course_key: str

    def to_json(self) -> str:
        return json.dumps({
            "id": self.quiz_id, "team": self.team_id, "channel": self.channel_id,
            "user": self.user_id, "course": self.course_key, "title": self.quiz.title,
            "questions": [
                {"text": q.text, "choices": list(q.choices), "right": q.right,
                 "explanation": q.explanation}
                for q in self.quiz.questions
            ],
        })  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> QuizRecord:
        data = json.loads(text)
        questions = tuple(
            Question(q["text"], tuple(q["choices"]), int(q["right"]), q["explanation"])
            for q in data["questions"]
        )
        return cls(
            data["id"], Quiz(data["title"], questions), data["team"], data["channel"],
            data["user"], data["course"],
        )  # fmt: skip


@dataclass(frozen=True)
class Progress:
    """The answers clicked on one quiz, per question index: the first (it counts) and the
    latest (it is shown)."""

    first: dict[int, int]
    last: dict[int, int]

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Progress:
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for name, value in fields.items():
            kind, _, index = name.partition(":")
            if kind in ("first", "last") and index.isdigit() and value.isdigit():
                (first if kind == "first" else last)[int(index)] = int(value)
        return cls(first, last)

    def right(self, quiz: Quiz) -> int:
        """How many questions were first answered right."""
        return sum(
            1
            for index, choice in self.first.items()
            if index < len(quiz.questions) and quiz.questions[index].right == choice
        )


class CourseScore(NamedTuple):
    """One learner's quiz score in one course: questions answered right of those answered
    (first answers only)."""

    course_key: str
    right: int
    answered: int


class CourseTotals(NamedTuple):
    """A course's quizzes, for whoever looks after it: quizzes shown, questions answered
    and answered right (first answers), and how many learners answered any."""

    course_key: str
    quizzes: int
    answered: int
    right: int
    learners: int


@dataclass(frozen=True)
class Marked:
    """A click on a quiz's choice, as stored: whether it is right, whether it counted (the
    question's first answer), the quiz's answers so far and the learner's course score."""

    record: QuizRecord
    progress: Progress
    question: int
    choice: int
    right: bool
    counted: bool
    score: CourseScore


class QuizGone(LookupError):
    """No such quiz (it expired, or the click names none of ours)."""


class NotTheAsker(PermissionError):
    """Someone else clicked on a learner's quiz."""

    def __init__(self, asker: str) -> None:
        super().__init__("not the asker")
        self.asker = asker


class QuizStore:
    """Quizzes shown, and the answers clicked on them."""

    def __init__(self, redis: Redis, keys: Keys, *, ttl_seconds: int = QUIZ_TTL_SECONDS) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = ttl_seconds

    async def save(self, record: QuizRecord) -> None:
        """Keep the quiz (for a week) and count it for its course."""
        totals = self._keys.quiz_course_totals(record.team_id)
        # The quiz, then its count (another slot on Redis Cluster): a process dying in
        # between leaves the quiz uncounted, never counted without being kept.
        await self._redis.set(self._keys.quiz(record.quiz_id), record.to_json(), ex=self._ttl)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(totals, f"quizzes:{record.course_key}", 1)
            pipe.expire(totals, SCORES_TTL_SECONDS)
            await pipe.execute()

    async def load(self, quiz_id: str) -> QuizRecord | None:
        stored = await self._redis.get(self._keys.quiz(quiz_id))
        return None if stored is None else QuizRecord.from_json(stored)

    async def progress(self, quiz_id: str) -> Progress:
        return Progress.from_fields(await self._redis.hgetall(self._keys.quiz_answers(quiz_id)))

    async def answer(self, quiz_id: str, question: int, choice: int, user_id: str) -> Marked:
        """Store `user_id`'s click on a choice; the first answer to a question scores.

        Raises QuizGone for a quiz (or question, or choice) that does not exist (any more),
        NotTheAsker when `user_id` is not the learner the quiz was made for.
        """
        record = await self.load(quiz_id)
        if record is None:
            raise QuizGone(quiz_id)
        if user_id != record.user_id:
            raise NotTheAsker(record.user_id)
        questions = record.quiz.questions
        if not (0 <= question < len(questions) and 0 <= choice < len(questions[question].choices)):
            raise QuizGone(quiz_id)
        right = choice == questions[question].right
        answers = self._keys.quiz_answers(quiz_id)
        scores = self._keys.quiz_learner_scores(record.team_id, user_id)
        course = record.course_key
        # Step 1, the quiz's own slot: the click is stored and decides once whether it counts
        # (the question's first answer). One transaction on one key: no retry loop needed.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(answers, f"first:{question}", choice)
            pipe.hset(answers, f"last:{question}", choice)
            pipe.expire(answers, self._ttl)
            pipe.hgetall(answers)
            counted, *_, fields = await pipe.execute()
        # Step 2, other slots: the scores, only by the click that counted. A click sent again
        # (or a retried step 1) counts nothing; a process dying between the steps leaves
        # that answer out of the scores, never in them twice.
        async with self._redis.pipeline(transaction=False) as pipe:
            if counted:
                self._score(pipe, record, right)
            pipe.hmget(scores, [f"right:{course}", f"answered:{course}"])
            *_, (of_right, of_answered) = await pipe.execute()
        score = CourseScore(course, int(of_right or 0), int(of_answered or 0))
        progress = Progress.from_fields(fields)
        return Marked(record, progress, question, choice, right, bool(counted), score)

    def _score(self, pipe: Pipeline, record: QuizRecord, right: bool) -> None:
        """A first answer counts for the learner's course score and the course's totals."""
        course = record.course_key
        scores = self._keys.quiz_learner_scores(record.team_id, record.user_id)
        totals = self._keys.quiz_course_totals(record.team_id)
        learners = self._keys.quiz_course_learners(course)
        for key in (scores, totals):
            pipe.hincrby(key, f"answered:{course}", 1)
            pipe.hincrby(key, f"right:{course}", 1 if right else 0)
            pipe.expire(key, SCORES_TTL_SECONDS)
        pipe.sadd(learners, record.user_id)
        pipe.expire(learners, SCORES_TTL_SECONDS)


class QuizScores:
    """Reading the scores back (the App Home): per learner, per course, per workspace."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def for_learner(self, team_id: str, user_id: str) -> list[CourseScore]:
        """The learner's score in each course they answered a quiz in, by course key."""
        fields = await self._redis.hgetall(self._keys.quiz_learner_scores(team_id, user_id))
        counts = _by_course(fields)
        return [
            CourseScore(course, figures.get("right", 0), figures.get("answered", 0))
            for course, figures in sorted(counts.items())
        ]

    async def scores(self, team_id: str, user_id: str) -> list[QuizScore]:
        """The learner's scores as the App Home lists them: by the course's channel ("" for
        quizzes taken in DMs, which belong to no channel's course)."""
        return [
            QuizScore(_place_of(score.course_key, team_id), score.right, score.answered)
            for score in await self.for_learner(team_id, user_id)
        ]

    async def for_team(self, team_id: str) -> list[CourseTotals]:
        """The totals of every course of the workspace with a quiz, by course key (one read
        of the totals, one round trip for the learners of all courses)."""
        counts = _by_course(await self._redis.hgetall(self._keys.quiz_course_totals(team_id)))
        courses = sorted(counts)
        async with self._redis.pipeline(transaction=False) as pipe:
            for course in courses:
                pipe.scard(self._keys.quiz_course_learners(course))
            learners = await pipe.execute() if courses else []
        return [
            _totals(course, counts[course], int(count))
            for course, count in zip(courses, learners, strict=True)
        ]

    async def for_course(self, team_id: str, course_key: str) -> CourseTotals:
        """One course's totals (zeros when it had no quiz)."""
        names = [f"{figure}:{course_key}" for figure in ("quizzes", "answered", "right")]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._keys.quiz_course_totals(team_id), names)
            pipe.scard(self._keys.quiz_course_learners(course_key))
            (quizzes, answered, right), learners = await pipe.execute()
        return CourseTotals(
            course_key, int(quizzes or 0), int(answered or 0), int(right or 0), int(learners)
        )


def _place_of(course_key: str, team_id: str) -> str:
    """The channel of a `<team>:<channel>` course key; "" for the DM course."""
    place = course_key.removeprefix(f"{team_id}:")
    return "" if place == DM_COURSE else place


def _by_course(fields: dict[str, str]) -> dict[str, dict[str, int]]:
    """`<figure>:<course>` fields as {course: {figure: count}}."""
    counts: dict[str, dict[str, int]] = {}
    for name, value in fields.items():
        figure, _, course = name.partition(":")
        if course and value.lstrip("-").isdigit():
            counts.setdefault(course, {})[figure] = int(value)
    return counts


def _totals(course: str, figures: dict[str, int], learners: int) -> CourseTotals:
    return CourseTotals(
        course,
        figures.get("quizzes", 0),
        figures.get("answered", 0),
        figures.get("right", 0),
        learners,
    )
