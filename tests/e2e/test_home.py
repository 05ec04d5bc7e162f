"""The App Home: a learner's courses, mode and recent conversations; each course's figures for
admins."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from bot.local.slack_api import blocks_text
from bot.settings import BackendKind
from bot.storage.keys import Keys
from bot.tutor.courses import AnswerLength, Course, CourseStore, LearnerStore, Mode
from tests.e2e.conftest import Harness
from tests.e2e.test_feedback import feedback_buttons

pytestmark = pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
CHANNEL, OTHER_CHANNEL = "C500", "C501"
LEARNER, ADMIN = "U500", "U501"


async def set_courses(redis: Redis, keys: Keys) -> None:
    courses = CourseStore(redis, keys)
    await courses.save(
        "T1", Course(CHANNEL, "History 10", "Rome", "", Mode.DIRECT, AnswerLength.SHORT)
    )
    await courses.save(
        "T1", Course(OTHER_CHANNEL, "Latin", "", "", Mode.GUIDED, AnswerLength.SHORT)
    )


async def open_home(harness: Harness, user: str) -> dict[str, Any]:
    """Open the Home tab; the view published for it."""
    before = harness.slack.home_views.get(user)
    await harness.events.app_home_opened(user)
    return await harness.wait_for_home(user, lambda view: view is not before)


def select(view: dict[str, Any], action_id: str) -> dict[str, Any]:
    return next(
        b["accessory"]
        for b in view["blocks"]
        if (b.get("accessory") or {}).get("action_id") == action_id
    )


async def test_a_learner_sees_their_courses_mode_and_topics_and_changes_them(
    harness: Harness, redis: Redis, keys: Keys
) -> None:
    await set_courses(redis, keys)
    _, _, root = await harness.events.mention(
        CHANNEL, LEARNER, "<@UBOT> Who founded the city of Rome, and when?"
    )
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.wait_idle()

    view = await open_home(harness, LEARNER)
    text = blocks_text(view["blocks"])
    assert "*History 10* in <#C500>" in text, "the course that taught them"
    assert "Latin" not in text.split("*Your courses*")[1].split("Course for")[0]
    assert "*Recent conversations*\n• <#C500>, <!date^" in text, "where and when, not what"
    assert "Who founded" not in text, "no question's text is kept"
    assert "*Quiz scores*" in text
    assert "Courses (you see this as an admin)" not in text
    assert select(view, "home_mode")["initial_option"]["value"] == "course"

    await harness.events.select_in_home(view, "home_mode", "guided", user_id=LEARNER)
    view = await harness.wait_for_home(
        LEARNER, lambda v: select(v, "home_mode")["initial_option"]["value"] == "guided"
    )
    await harness.events.select_in_home(view, "home_dm_course", OTHER_CHANNEL, user_id=LEARNER)
    await harness.wait_for_home(
        LEARNER, lambda v: select(v, "home_dm_course")["initial_option"]["value"] == OTHER_CHANNEL
    )
    choices = await LearnerStore(redis, keys).get("T1", LEARNER)
    assert (choices.mode, choices.dm_course) == (Mode.GUIDED, OTHER_CHANNEL)

    # The DM now uses that course: its tutor's instructions reach the model.
    await harness.events.dm("D500", LEARNER, "Salve?")
    await harness.wait_idle()
    sent = [r.json for r in harness.openai.requests if r.path.endswith("/responses")][-1]
    assert isinstance(sent, dict) and '"Latin"' in sent["instructions"]


async def test_an_admin_sees_each_courses_figures(
    harness: Harness, redis: Redis, keys: Keys
) -> None:
    harness.slack.workspace_admins.add(ADMIN)
    await set_courses(redis, keys)
    for user, question in ((LEARNER, "Who was Caesar?"), (ADMIN, "Who was Cicero?")):
        _, _, root = await harness.events.mention(CHANNEL, user, f"<@UBOT> {question}")
    [reply] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.wait_idle()
    buttons = feedback_buttons(reply.blocks)
    await harness.events.feedback_click(
        buttons, positive=False, channel=CHANNEL, message_ts=reply.ts, user_id=ADMIN,
        response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    await harness.slack.wait_for(lambda: bool(harness.slack.response_url_posts))
    [input_block] = [
        b for b in harness.slack.response_url_posts[0]["blocks"] if b["type"] == "input"
    ]
    await harness.events.input_entered(
        input_block, "Too short", channel=CHANNEL, message_ts=reply.ts, user_id=ADMIN,
        response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    await harness.slack.wait_for(lambda: len(harness.slack.response_url_posts) == 2)

    view = await open_home(harness, ADMIN)
    text = blocks_text(view["blocks"])
    assert "Courses (you see this as an admin)" in text
    [history] = [b for b in view["blocks"] if "fields" in b and "*History 10*" in b["text"]["text"]]
    fields = [f["text"] for f in history["fields"]]
    assert "*Questions*\n2" in fields and "*Learners*\n2" in fields
    assert "*Feedback*\n👍 0 · 👎 1" in fields
    tokens = next(f for f in fields if f.startswith("*Tokens*"))
    assert " in · " in tokens and not tokens.startswith("*Tokens*\n0 in")
    assert "“Too short”" in text, "the latest comments"
    assert "*Latin* in <#C501>" in text, "a course nobody asked in yet"
    assert len(view["blocks"]) <= 100

    # The learner's own Home has no course figures.
    learner_view = await open_home(harness, LEARNER)
    assert "Courses (you see this as an admin)" not in blocks_text(learner_view["blocks"])
