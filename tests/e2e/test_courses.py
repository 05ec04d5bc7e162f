"""Courses from Slack: an admin sets a channel's course in a modal, its turns use it."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot.settings import BackendKind, Settings
from bot.slack.listeners.teaching import NOT_AN_ADMIN, NOT_IN_A_CHANNEL
from bot.tutor.courses import AnswerLength, Course, Mode
from bot.tutor.instructions import course_instructions
from tests.e2e.conftest import CREATE_PATH, Harness

CHANNEL, OTHER_CHANNEL = "C700", "C701"
ADMIN, LEARNER = "U700", "U701"
PHYSICS = Course(CHANNEL, "Physics 9", "mechanics", "Use SI units.", Mode.DIRECT, AnswerLength.LONG)


async def command(harness: Harness, text: str, user: str, channel: str = CHANNEL) -> str:
    """`/tutor <text>`; the text of its ephemeral ack ("" for an empty ack)."""
    status, body = await harness.events.slash_command(
        "/tutor", text, channel_id=channel, user_id=user,
        response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    assert status == 200
    if not body:
        return ""
    answer = json.loads(body)
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"])


async def open_course_form(harness: Harness, user: str = ADMIN) -> dict[str, Any]:
    opened = len(harness.slack.calls_to("views.open"))
    assert await command(harness, "course", user) == ""
    await harness.slack.wait_for(lambda: len(harness.slack.calls_to("views.open")) > opened)
    return harness.slack.modal_of(user)


def course_answers(course: Course) -> dict[str, str | None]:
    return {
        "course_name": course.name, "course_subject": course.subject,
        "course_instructions": course.instructions, "course_mode": course.mode.value,
        "course_length": course.length.value,
    }  # fmt: skip


def instructions_sent(harness: Harness, backend: BackendKind, index: int = -1) -> str:
    """The instructions of a run as the model server received them."""
    creates = [
        r for r in harness.openai.requests
        if r.method == "POST" and re.search(CREATE_PATH[backend], r.path)
    ]  # fmt: skip
    body = creates[index].json
    assert isinstance(body, dict)
    if backend is BackendKind.CHAT:
        system = body["messages"][0]
        assert system["role"] == "system"
        return str(system["content"])
    if backend is BackendKind.ASSISTANTS:
        assert "additional_instructions" not in body, "a direct course adds nothing"
        return str(body.get("instructions", "<the assistant's own>"))
    return str(body["instructions"])


async def ask(harness: Harness, channel: str, question: str) -> None:
    _, _, root = await harness.events.mention(channel, LEARNER, f"<@UBOT> {question}")
    await harness.wait_for_bot_replies(channel, root, 1)
    await harness.wait_idle()


async def test_an_admin_sets_a_course_in_a_modal_and_mentions_there_use_it(
    harness: Harness, backend: BackendKind
) -> None:
    harness.slack.workspace_admins.add(ADMIN)
    form = await open_course_form(harness)
    [opened] = harness.slack.calls_to("views.open")
    assert opened.response["view"]["callback_id"] == "tutor_course"

    status, body = await harness.events.submit_view(
        form, user_id=ADMIN, answers={**course_answers(PHYSICS), "course_name": "  "}
    )
    assert status == 200 and json.loads(body)["response_action"] == "errors"
    assert set(json.loads(body)["errors"]) == {"course_name"}, "shown next to the name"

    status, body = await harness.events.submit_view(
        form, user_id=ADMIN, answers=course_answers(PHYSICS)
    )
    assert status == 200 and not body, "saved: the modal closes"
    await harness.slack.wait_for(lambda: bool(harness.slack.ephemerals))
    assert "Physics 9" in harness.slack.ephemerals[-1]["text"]

    await ask(harness, CHANNEL, "Why do things fall?")
    assert instructions_sent(harness, backend) == course_instructions(PHYSICS)
    await ask(harness, OTHER_CHANNEL, "Who was Newton?")
    assert instructions_sent(harness, backend) == _default_instructions(harness.settings, backend)

    # Opened again, the form shows the course as it is now.
    again = await open_course_form(harness)
    [name] = [b for b in again["blocks"] if b.get("block_id") == "course_name"]
    assert name["element"]["initial_value"] == "Physics 9"


def _default_instructions(settings: Settings, backend: BackendKind) -> str:
    if backend is BackendKind.ASSISTANTS:
        return "<the assistant's own>"
    return settings.tutor_instructions


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_course_is_refused_to_a_non_admin_and_outside_channels(harness: Harness) -> None:
    harness.slack.workspace_admins.add(ADMIN)
    assert await command(harness, "course", LEARNER) == NOT_AN_ADMIN
    assert await command(harness, "course", ADMIN, channel="D700") == NOT_IN_A_CHANNEL
    assert not harness.slack.calls_to("views.open")

    # A form submitted by someone who is no admin (a forged payload) changes nothing.
    form = await open_course_form(harness)
    _, body = await harness.events.submit_view(
        form, user_id=LEARNER, answers=course_answers(PHYSICS)
    )
    assert json.loads(body)["errors"] == {"course_name": "Only admins can change a course."}
    await ask(harness, CHANNEL, "Why do things fall?")
    assert instructions_sent(harness, BackendKind.RESPONSES) == harness.settings.tutor_instructions


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_a_trigger_past_slacks_three_seconds_is_said_to_the_admin(harness: Harness) -> None:
    harness.slack.workspace_admins.add(ADMIN)
    harness.slack.fail("views.open", "expired_trigger_id")
    assert await command(harness, "course", ADMIN) == ""
    await harness.slack.wait_for(lambda: bool(harness.slack.response_url_posts))
    [told] = harness.slack.response_url_posts
    assert told["response_type"] == "ephemeral" and "try `/tutor course` again" in told["text"]
