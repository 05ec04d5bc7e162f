"""The App Home: its figures read in a bounded number of round trips, and its Block Kit
within Slack's limits however many courses there are."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from bot.local.slack_views import check_view
from bot.slack.home_view import (
    COURSE_DEFAULT,
    DEFAULT_TUTOR,
    MAX_BLOCKS,
    chosen_dm_course,
    chosen_mode,
    courses_that_fit,
    home_view,
    learner_blocks,
)
from bot.storage.keys import Keys
from bot.tutor.activity import LearnerActivity, Topic
from bot.tutor.courses import Course, CourseStore, LearnerStore, Mode
from bot.tutor.feedback import FeedbackStore
from bot.tutor.home import CourseFigures, CoursesOverview, HomeReader, LearnerHome, QuizScore
from bot.tutor.ledger import UsageLedger


def learner(courses: int = 3, **changes: Any) -> LearnerHome:
    names = {f"C{n}": f"Course <{n}>" for n in range(courses)}
    fields: dict[str, Any] = {
        "user_id": "U1", "mode": None, "dm_course": None, "courses": names,
        "my_courses": list(names)[:2],
        "topics": [Topic("T1:C0:1.0", "C0", 1_700_000_000.0)], "quiz_scores": None,
    }  # fmt: skip
    fields.update(changes)
    return LearnerHome(**fields)


def test_a_learners_home_is_a_valid_view_with_their_choices() -> None:
    view = home_view(learner(mode=Mode.GUIDED, dm_course="C1"))
    check_view(view, "home")
    text = str(view)
    assert "Course &lt;0&gt;" in text, "escaped"
    date = "<!date^1700000000^{date_short_pretty} at {time}|2023-11-14 22:13 UTC>"
    assert f"*Recent conversations*\\n• <#C0>, {date}" in text
    assert "Courses (you see this as an admin)" not in text
    selects = {
        b["accessory"]["action_id"]: b["accessory"] for b in view["blocks"] if "accessory" in b
    }
    assert selects["home_mode"]["initial_option"]["value"] == "guided"
    assert selects["home_dm_course"]["initial_option"]["value"] == "C1"


def test_the_quiz_scores_hook_is_shown_when_wired() -> None:
    scores = [QuizScore("C0", 3, 4), QuizScore("", 1, 2)]
    text = str(home_view(learner(quiz_scores=scores)))
    assert "*Course &lt;0&gt;*: 3 of 4 right" in text and "Outside courses: 1 of 2 right" in text


def test_many_courses_stay_within_slacks_limits_with_a_note() -> None:
    many = learner(courses=250)
    room = courses_that_fit(len(learner_blocks(many)))
    figures = [CourseFigures(f"C{n}", f"Course {n}", questions=250 - n) for n in range(room)]
    view = home_view(many, CoursesOverview(figures, total=250))
    check_view(view, "home")
    assert len(view["blocks"]) <= MAX_BLOCKS
    assert f"{250 - room} more courses not shown" in str(view["blocks"][-1])
    [dm_select] = [b["accessory"] for b in view["blocks"] if "accessory" in b][1:]
    assert len(dm_select["options"]) == 100 and dm_select["options"][0]["value"] == DEFAULT_TUTOR


def test_the_selects_values_are_read_back() -> None:
    assert chosen_mode("guided") == (True, Mode.GUIDED)
    assert chosen_mode(COURSE_DEFAULT) == (True, None)
    assert chosen_mode("loud") == (False, None)
    assert chosen_dm_course(DEFAULT_TUTOR) is None and chosen_dm_course("C7") == "C7"


def count_round_trips(redis: Redis) -> list[int]:
    """Count the commands and pipelines sent through `redis` from now on (one each)."""
    counted = [0]
    send = redis.execute_command
    make_pipeline = redis.pipeline

    async def execute_command(*args: Any, **options: Any) -> Any:
        counted[0] += 1
        return await send(*args, **options)

    def pipeline(*args: Any, **options: Any) -> Any:
        pipe = make_pipeline(*args, **options)
        execute = pipe.execute

        async def counted_execute(*a: Any, **k: Any) -> Any:
            counted[0] += 1
            return await execute(*a, **k)

        pipe.execute = counted_execute  # type: ignore[method-assign]
        return pipe

    redis.execute_command = execute_command  # type: ignore[method-assign]
    redis.pipeline = pipeline  # type: ignore[method-assign]
    return counted


async def test_the_home_costs_the_same_few_round_trips_with_three_courses_or_three_hundred(
    redis: Redis, keys: Keys
) -> None:
    courses = CourseStore(redis, keys)
    reader = HomeReader(
        courses, LearnerStore(redis, keys), LearnerActivity(redis, keys),
        FeedbackStore(redis, keys), UsageLedger(redis, keys),
    )  # fmt: skip
    costs = []
    for total in (3, 300):
        for n in range(total):
            await courses.save(f"T{total}", Course(f"C{n}", f"Course {n}"))
        counted = count_round_trips(redis)
        await reader.learner(f"T{total}", "U1")
        overview = await reader.overview(f"T{total}", limit=40)
        costs.append(counted[0])
        assert overview.total == total and len(overview.courses) == min(total, 40)
    assert costs[0] == costs[1] <= 10, costs
