"""Courses and learners' choices: what a teacher sets for a channel, what a learner picks.

A course belongs to one channel of one workspace: its name and subject, the teacher's
instructions, the default answer mode and the answer length. Every conversation in that
channel uses it, from the next turn on. A learner's own mode (`/tutor mode`) overrides the
course's default for them; their direct messages use the course they chose in the App Home,
or the default tutor of the settings.

Keys (see `bot.storage.keys`): `course:<team>:<channel>` (a hash per course),
`courses:<team>` (channel → name, for listing), `learner:<team>:<user>` (mode, dm_course).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis

from bot.storage.keys import Keys
from bot.turns.text import clean_text

NAME_LIMIT = 80
SUBJECT_LIMIT = 150
INSTRUCTIONS_LIMIT = 3000


class Mode(StrEnum):
    """How the tutor answers."""

    GUIDED = "guided"  # questions and hints first, the answer on request
    DIRECT = "direct"  # the answer at once


class AnswerLength(StrEnum):
    SHORT = "short"
    MEDIUM = "medium"
    LONG = "long"


class CourseField(StrEnum):
    """The fields of the course form, for errors shown next to them."""

    NAME = "name"
    SUBJECT = "subject"
    INSTRUCTIONS = "instructions"
    MODE = "mode"
    LENGTH = "length"


@dataclass(frozen=True)
class Course:
    """A channel's tutor, as its teacher set it."""

    channel_id: str
    name: str
    subject: str = ""
    instructions: str = ""
    mode: Mode = Mode.DIRECT
    length: AnswerLength = AnswerLength.SHORT
    set_by: str = ""
    set_at: float = 0.0

    def fields(self) -> dict[str, str]:
        return {
            "channel": self.channel_id,
            "name": self.name,
            "subject": self.subject,
            "instructions": self.instructions,
            "mode": self.mode.value,
            "length": self.length.value,
            "set_by": self.set_by,
            "set_at": f"{self.set_at:.3f}",
        }

    @classmethod
    def from_fields(cls, stored: Mapping[str, str]) -> Course | None:
        """The stored course; None when there is none (or it is unreadable)."""
        if not stored.get("name") or not stored.get("channel"):
            return None
        return cls(
            channel_id=stored["channel"],
            name=stored["name"],
            subject=stored.get("subject", ""),
            instructions=stored.get("instructions", ""),
            mode=_mode(stored.get("mode")) or Mode.DIRECT,
            length=_length(stored.get("length")),
            set_by=stored.get("set_by", ""),
            set_at=float(stored.get("set_at") or 0),
        )


@dataclass(frozen=True)
class CourseForm:
    """What a teacher typed and picked in the course form, as it arrived (None: left empty)."""

    name: str | None
    subject: str | None
    instructions: str | None
    mode: str | None
    length: str | None


def course_from_form(
    channel_id: str, form: CourseForm, set_by: str, now: float | None = None
) -> tuple[Course | None, dict[CourseField, str]]:
    """The course the form describes, or the errors to show next to its fields."""
    errors: dict[CourseField, str] = {}
    name = _one_line(form.name)
    subject = _one_line(form.subject)
    instructions = clean_text(form.instructions or "").strip()
    if not name:
        errors[CourseField.NAME] = "Give the course a name."
    elif len(name) > NAME_LIMIT:
        errors[CourseField.NAME] = f"At most {NAME_LIMIT} characters, please."
    if len(subject) > SUBJECT_LIMIT:
        errors[CourseField.SUBJECT] = f"At most {SUBJECT_LIMIT} characters, please."
    if len(instructions) > INSTRUCTIONS_LIMIT:
        errors[CourseField.INSTRUCTIONS] = f"At most {INSTRUCTIONS_LIMIT} characters, please."
    mode = _mode(form.mode)
    if mode is None:
        errors[CourseField.MODE] = "Pick guided or direct."
    if form.length not in {length.value for length in AnswerLength}:
        errors[CourseField.LENGTH] = "Pick an answer length."
    if errors or mode is None:
        return None, errors
    course = Course(
        channel_id=channel_id,
        name=name,
        subject=subject,
        instructions=instructions,
        mode=mode,
        length=AnswerLength(form.length),
        set_by=set_by,
        set_at=time.time() if now is None else now,
    )
    return course, {}


@dataclass(frozen=True)
class LearnerChoices:
    """A learner's own settings: their mode (None: the course's default) and the course
    their direct messages use (None: the default tutor)."""

    mode: Mode | None = None
    dm_course: str | None = None


def _one_line(text: str | None) -> str:
    return " ".join(clean_text(text or "").split())


def _mode(value: str | None) -> Mode | None:
    return Mode(value) if value in {mode.value for mode in Mode} else None


def _length(value: str | None) -> AnswerLength:
    known = {length.value for length in AnswerLength}
    return AnswerLength(value) if value in known else AnswerLength.SHORT


class CourseStore:
    """Courses per workspace and channel, in Redis."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def get(self, team_id: str, channel_id: str) -> Course | None:
        return Course.from_fields(await self._redis.hgetall(self._keys.course(team_id, channel_id)))

    async def save(self, team_id: str, course: Course) -> None:
        """Set (or replace) a channel's course; turns that start from now on use it."""
        async with self._redis.pipeline(transaction=True) as pipe:
            key = self._keys.course(team_id, course.channel_id)
            pipe.delete(key)
            pipe.hset(key, mapping=course.fields())
            pipe.hset(self._keys.course_names(team_id), course.channel_id, course.name)
            await pipe.execute()

    async def delete(self, team_id: str, channel_id: str) -> bool:
        """The channel has no course any more (its materials go separately); False when it
        had none."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.course(team_id, channel_id))
            pipe.hdel(self._keys.course_names(team_id), channel_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def names(self, team_id: str) -> dict[str, str]:
        """The workspace's courses: channel id → course name."""
        return dict(await self._redis.hgetall(self._keys.course_names(team_id)))


class LearnerStore:
    """Each learner's mode and DM course, in Redis (kept until they change them)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def get(self, team_id: str, user_id: str) -> LearnerChoices:
        stored = await self._redis.hgetall(self._keys.learner(team_id, user_id))
        return LearnerChoices(_mode(stored.get("mode")), stored.get("dm_course") or None)

    async def set_mode(self, team_id: str, user_id: str, mode: Mode | None) -> None:
        """Their own mode from now on; None: the course's default again."""
        await self._set(team_id, user_id, "mode", mode.value if mode else None)

    async def set_dm_course(self, team_id: str, user_id: str, channel_id: str | None) -> None:
        """The course their direct messages use; None: the default tutor."""
        await self._set(team_id, user_id, "dm_course", channel_id)

    async def _set(self, team_id: str, user_id: str, name: str, value: str | None) -> None:
        key = self._keys.learner(team_id, user_id)
        if value is None:
            await self._redis.hdel(key, name)
        else:
            await self._redis.hset(key, name, value)
