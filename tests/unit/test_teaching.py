"""Courses, modes and the instructions of a turn: the pure logic, and its Redis records."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.backends.base import UserMessage
from bot.storage.keys import Keys
from bot.turns.models import Turn, TurnSource
from bot.tutor.activity import (
    TOPICS_KEPT,
    LearnerActivity,
)
from bot.tutor.courses import (
    AnswerLength,
    Course,
    CourseField,
    CourseForm,
    CourseStore,
    LearnerStore,
    Mode,
    course_from_form,
)
from bot.tutor.instructions import (
    GUIDED_INSTRUCTIONS,
    ModeSource,
    Teaching,
    choose_teaching,
    course_instructions,
    effective_mode,
)
from bot.tutor.teaching import TurnTeacher
from tests.redis_contents import redis_contents

PHYSICS = Course("C1", "Physics 9", "mechanics", "Use SI units.", Mode.GUIDED, AnswerLength.MEDIUM)


def form(**changes: str | None) -> CourseForm:
    fields: dict[str, str | None] = {
        "name": "Physics 9", "subject": "mechanics", "instructions": "Use SI units.",
        "mode": "guided", "length": "medium",
    }  # fmt: skip
    fields.update(changes)
    return CourseForm(**fields)


def test_a_valid_form_makes_a_course() -> None:
    course, errors = course_from_form("C1", form(name="  Physics \n 9 "), "UADMIN", now=5.0)
    assert not errors and course is not None
    assert course.name == "Physics 9", "one line, spaces collapsed"
    assert (course.mode, course.length, course.set_by) == (
        Mode.GUIDED,
        AnswerLength.MEDIUM,
        "UADMIN",
    )
    assert Course.from_fields(course.fields()) == course


def test_a_form_with_mistakes_names_each_field() -> None:
    course, errors = course_from_form(
        "C1", form(name=" ", subject="s" * 151, instructions="i" * 3001, mode="x", length=None), "U"
    )
    assert course is None
    assert set(errors) == set(CourseField)
    _, errors = course_from_form("C1", form(name="n" * 81), "U")
    assert set(errors) == {CourseField.NAME}


def test_the_mode_comes_from_the_turn_the_learner_the_course_then_the_default() -> None:
    assert effective_mode(None, None) == (Mode.DIRECT, ModeSource.DEFAULT)
    assert effective_mode(PHYSICS, None) == (Mode.GUIDED, ModeSource.COURSE)
    assert effective_mode(PHYSICS, Mode.DIRECT) == (Mode.DIRECT, ModeSource.LEARNER)
    assert effective_mode(None, Mode.GUIDED, Mode.DIRECT) == (Mode.DIRECT, ModeSource.TURN)


def test_a_course_replaces_the_default_instructions_and_guided_adds_its_guidance() -> None:
    assert choose_teaching(None, None) == Teaching(Mode.DIRECT, None, "")
    default_guided = choose_teaching(None, Mode.GUIDED)
    assert default_guided.instructions is None and default_guided.additional == GUIDED_INSTRUCTIONS
    teaching = choose_teaching(PHYSICS, None)
    assert teaching.guided and teaching.additional == GUIDED_INSTRUCTIONS
    assert teaching.instructions == course_instructions(PHYSICS)
    assert '"Physics 9", on mechanics.' in teaching.instructions
    assert "Use SI units." in teaching.instructions and "short paragraph" in teaching.instructions
    revealed = choose_teaching(PHYSICS, Mode.GUIDED, Mode.DIRECT)
    assert not revealed.guided and revealed.additional == ""
    assert revealed.instructions == teaching.instructions, "the same course, so the same cache"
    assert Teaching.from_fields(teaching.fields()) == teaching
    assert Teaching.from_fields(Teaching(Mode.DIRECT).fields()) == Teaching(Mode.DIRECT)
    assert Teaching.from_fields({}) is None


def test_guided_instructions_ask_hint_check_then_explain() -> None:
    text = GUIDED_INSTRUCTIONS.lower()
    for idea in ("already know", "hint", "check understanding", "show me the answer"):
        assert idea in text


def test_a_message_carries_its_instructions_over_the_backend_default() -> None:
    assert UserMessage("q", "turn_1").instructions_over("Default.") == "Default."
    guided = UserMessage("q", "turn_1", None, "Guide.")
    assert guided.instructions_over("Default.") == "Default.\n\nGuide."
    assert UserMessage("q", "turn_1", "Course.", "").instructions_over("Default.") == "Course."


async def test_courses_and_learner_choices_are_kept_per_workspace(redis: Redis, keys: Keys) -> None:
    courses, learners = CourseStore(redis, keys), LearnerStore(redis, keys)
    assert await courses.get("T1", "C1") is None
    await courses.save("T1", PHYSICS)
    assert await courses.get("T1", "C1") == PHYSICS
    assert await courses.get("T2", "C1") is None
    assert await courses.names("T1") == {"C1": "Physics 9"}
    await learners.set_mode("T1", "U1", Mode.GUIDED)
    await learners.set_dm_course("T1", "U1", "C1")
    choices = await learners.get("T1", "U1")
    assert (choices.mode, choices.dm_course) == (Mode.GUIDED, "C1")
    await learners.set_mode("T1", "U1", None)
    assert (await learners.get("T1", "U1")).mode is None


def turn(channel: str, user: str, text: str, thread: str = "1.0", **changes: object) -> Turn:
    key = f"T1:{channel}:{thread}"
    return Turn(key, "T1", channel, thread, user, text, TurnSource.MENTION, **changes)  # type: ignore[arg-type]


async def test_a_turn_is_taught_by_its_channels_course_or_the_learners_dm_course(
    redis: Redis, keys: Keys
) -> None:
    courses, learners = CourseStore(redis, keys), LearnerStore(redis, keys)
    teacher = TurnTeacher(courses, learners, LearnerActivity(redis, keys))
    await courses.save("T1", PHYSICS)
    in_course = await teacher.prepare(turn("C1", "U1", "Why do things fall?"))
    assert in_course.guided and in_course.instructions == course_instructions(PHYSICS)
    assert await teacher.prepare(turn("C2", "U1", "Hi")) == Teaching(Mode.DIRECT)
    dm = turn("D1", "U1", "Hello", thread="top")
    assert (await teacher.prepare(dm)).instructions is None
    await learners.set_dm_course("T1", "U1", "C1")
    assert (await teacher.prepare(dm)).instructions == course_instructions(PHYSICS)
    await learners.set_mode("T1", "U1", Mode.DIRECT)
    assert not (await teacher.prepare(dm)).guided, "the learner's mode beats the course's"
    revealed = await teacher.prepare(turn("C1", "U2", "Show me", mode_override="direct"))
    assert not revealed.guided


async def test_activity_counts_courses_keeps_topics_and_guided_turns_without_text(
    redis: Redis, keys: Keys
) -> None:
    activity = LearnerActivity(redis, keys)
    asked = turn("C1", "U1", "Why is the sky blue and not green at noon?", thread="5.0")
    await activity.record_turn(asked, "C1", guided=True)
    await activity.record_turn(turn("C1", "U1", "And at dusk?", thread="5.0"), "C1", guided=False)
    await activity.record_turn(turn("C1", "U2", "Me too", thread="6.0"), "C1", guided=False)
    assert await redis.hget(keys.course_stats("T1"), "C1:questions") == "3"
    assert await redis.scard(keys.course_learners("T1", "C1")) == 2
    [topic] = await activity.topics("T1", "U1")
    assert (topic.conversation_key, topic.channel_id) == (asked.conversation_key, "C1")
    found = await activity.guided_question(asked.conversation_key, asked.turn_id)
    assert found is not None and found.user_id == "U1" and found.thread_ts == "5.0"
    kept = str(await redis_contents(redis, keys.prefix))
    assert "sky" not in kept and "dusk" not in kept, "no question's text is kept"
    assert await activity.guided_question(asked.conversation_key, "turn_0") is None


async def test_a_learner_keeps_only_the_newest_topics(redis: Redis, keys: Keys) -> None:
    clock = iter(range(100))
    activity = LearnerActivity(redis, keys, clock=lambda: float(next(clock)))
    for n in range(TOPICS_KEPT + 3):
        await activity.record_turn(
            turn("C1", "U1", f"question {n}", thread=f"{n}.0"), None, guided=False
        )
    topics = await activity.topics("T1", "U1")
    newest = [f"T1:C1:{n}.0" for n in range(TOPICS_KEPT + 2, 2, -1)]
    assert [t.conversation_key for t in topics] == newest
    assert await redis.hlen(keys.learner_topics("T1", "U1")) == TOPICS_KEPT
    assert not await redis.exists(keys.topic_learners("T1:C1:0.0"))
