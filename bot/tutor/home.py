"""What the App Home shows, read from the tutor's records: a learner's own page, and for
admins the figures of every course.

Reads are bounded whatever the number of courses: the learner's page is one round of
concurrent reads, the courses' figures two (workspace-wide hashes first, then one pipeline
for the courses shown). Quiz scores come from whoever keeps them, through `QuizScores`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from bot.tutor.activity import LearnerActivity, Topic
from bot.tutor.courses import CourseStore, LearnerStore, Mode
from bot.tutor.feedback import FeedbackStore, Rating
from bot.tutor.ledger import UsageLedger
from bot.tutor.usage import UsageFigures

log = logging.getLogger(__name__)

COMMENTS_SHOWN = 3


@dataclass(frozen=True)
class QuizScore:
    """A learner's quiz results in one course ("" for quizzes outside any course)."""

    course_channel: str
    right: int
    answered: int


class QuizScores(Protocol):
    """Where quiz scores are kept, per learner and course (the quizzes' store)."""

    async def scores(self, team_id: str, user_id: str) -> list[QuizScore]:
        """The learner's scores, one per course they took quizzes in."""
        ...


@dataclass(frozen=True)
class LearnerHome:
    """One learner's page."""

    user_id: str
    mode: Mode | None  # their own choice; None: each course's default
    dm_course: str | None  # the course of their DMs; None: the default tutor
    courses: dict[str, str]  # the workspace's courses: channel → name
    my_courses: list[str]  # channels of the courses that taught them, by name
    topics: list[Topic]
    quiz_scores: list[QuizScore] | None  # None: no quizzes kept (not wired)


@dataclass(frozen=True)
class CourseFigures:
    """One course as its teacher sees it."""

    channel_id: str
    name: str
    questions: int = 0
    learners: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    latest_comments: list[str] = field(default_factory=list)
    tokens: UsageFigures = field(default_factory=UsageFigures)


@dataclass(frozen=True)
class CoursesOverview:
    """The busiest courses (at most the number asked for) and how many there are."""

    courses: list[CourseFigures]
    total: int


class HomeReader:
    def __init__(
        self,
        courses: CourseStore,
        learners: LearnerStore,
        activity: LearnerActivity,
        feedback: FeedbackStore,
        ledger: UsageLedger,
        quizzes: QuizScores | None = None,
    ) -> None:
        self._courses = courses
        self._learners = learners
        self._activity = activity
        self._feedback = feedback
        self._ledger = ledger
        self._quizzes = quizzes

    async def learner(self, team_id: str, user_id: str) -> LearnerHome:
        """The learner's page, in one round of concurrent reads."""
        choices, names, taught_by, topics, scores = await asyncio.gather(
            self._learners.get(team_id, user_id),
            self._courses.names(team_id),
            self._activity.learner_courses(team_id, user_id),
            self._activity.topics(team_id, user_id),
            self._quiz_scores(team_id, user_id),
        )
        mine = sorted((c for c in taught_by if c in names), key=lambda c: names[c].lower())
        dm_course = choices.dm_course if choices.dm_course in names else None
        return LearnerHome(user_id, choices.mode, dm_course, names, mine, topics, scores)

    async def _quiz_scores(self, team_id: str, user_id: str) -> list[QuizScore] | None:
        """The learner's quiz scores; a store that fails leaves them out of the page."""
        if self._quizzes is None:
            return None
        try:
            return await self._quizzes.scores(team_id, user_id)
        except Exception as error:
            log.warning("quiz scores not read (%s)", type(error).__name__)
            return None

    async def overview(self, team_id: str, limit: int) -> CoursesOverview:
        """The figures of the `limit` busiest courses: two rounds of reads, however many."""
        names, questions, counts, tokens = await asyncio.gather(
            self._courses.names(team_id),
            self._activity.questions_per_course(team_id),
            self._feedback.counts(team_id),
            self._ledger.channels(team_id),
        )
        order = sorted(names, key=lambda c: (-questions.get(c, 0), names[c].lower(), c))
        shown = order[: max(limit, 0)]
        learners, comments = await asyncio.gather(
            self._activity.learners_per_course(team_id, shown),
            self._feedback.latest_comments_of(team_id, shown, COMMENTS_SHOWN),
        )
        figures = []
        for channel in shown:
            rated = counts.get(channel, {})
            figures.append(
                CourseFigures(
                    channel_id=channel,
                    name=names[channel],
                    questions=questions.get(channel, 0),
                    learners=learners.get(channel, 0),
                    thumbs_up=rated.get(Rating.UP, 0),
                    thumbs_down=rated.get(Rating.DOWN, 0),
                    latest_comments=[c.get("comment", "") for c in comments.get(channel, [])],
                    tokens=tokens.get(channel, UsageFigures()),
                )
            )
        return CoursesOverview(figures, len(names))
