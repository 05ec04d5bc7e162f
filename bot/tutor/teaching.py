"""Choosing how a turn is taught, as its run is about to be created (the engine's `Teacher`).

A channel's turns use its course; a direct message uses the course the learner chose in the
App Home, or the default tutor. The learner's own mode overrides the course's default, and a
"Show me the answer" turn is direct whatever they say. See `bot.tutor.instructions` for the
pure part; this module reads the records and notes the turn (`bot.tutor.activity`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from bot.turns.models import Turn
from bot.tutor.activity import LearnerActivity
from bot.tutor.courses import Course, CourseStore, LearnerChoices, LearnerStore, Mode
from bot.tutor.instructions import Teaching, choose_teaching
from bot.tutor.materials import CourseRef

log = logging.getLogger(__name__)


def is_direct_message(channel_id: str) -> bool:
    """Slack's DM channel ids start with D."""
    return channel_id.startswith("D")


class TurnTeacher:
    """Courses, learners' choices and their activity, behind the engine's `Teacher`."""

    def __init__(
        self, courses: CourseStore, learners: LearnerStore, activity: LearnerActivity
    ) -> None:
        self._courses = courses
        self._learners = learners
        self._activity = activity

    async def prepare(self, turn: Turn) -> Teaching:
        """The turn's teaching; its question is noted for the learner's Home (and for "Show
        me the answer" when guided). Raises Redis errors only while reading the course: a
        turn whose activity cannot be noted is taught all the same."""
        course, choices = await self.course_and_choices(turn.team_id, turn.channel_id, turn.user_id)
        override = Mode(turn.mode_override) if turn.mode_override in set(Mode) else None
        teaching = choose_teaching(course, choices.mode, override)
        if course is not None:  # its materials, searched by the run
            teaching = replace(teaching, course=str(CourseRef(turn.team_id, course.channel_id)))
        try:
            await self._activity.record_turn(
                turn, course.channel_id if course else None, guided=teaching.guided
            )
        except Exception as error:
            log.warning("activity not noted (%s) %s", error, turn.log_context())
        return teaching

    async def course_and_choices(
        self, team_id: str, channel_id: str, user_id: str
    ) -> tuple[Course | None, LearnerChoices]:
        """The course that teaches this learner here (None: the default tutor), and the
        learner's own choices."""
        if is_direct_message(channel_id):
            choices = await self._learners.get(team_id, user_id)
            if choices.dm_course is None:
                return None, choices
            return await self._courses.get(team_id, choices.dm_course), choices
        course, choices = await asyncio.gather(
            self._courses.get(team_id, channel_id), self._learners.get(team_id, user_id)
        )
        return course, choices
