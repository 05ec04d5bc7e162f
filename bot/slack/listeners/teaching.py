"""`/tutor course` (admins: the channel's course, in a modal) and `/tutor mode` (a learner's
answer mode), both answered only to the person who typed them; subcommands of the one
`/tutor` listener (`bot.slack.listeners.commands`), which takes them from here.

`/tutor course` acks within Slack's 3 s after asking whether the person is an admin (at most
1.5 s, cached), then opens the modal with the command's `trigger_id`, which Slack accepts
for 3 s. The form is checked again on submission: errors are shown next to their fields.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.admins import WorkspaceAdmins
from bot.slack.background import BackgroundTasks
from bot.slack.client import slack_error_code
from bot.slack.course_modal import (
    BLOCK_OF,
    COURSE_CALLBACK,
    FILES_BLOCK,
    channel_of,
    course_modal,
    delete_asked,
    materials_to_remove,
    slack_errors,
    submitted_files,
    submitted_form,
)
from bot.slack.home_publisher import HomePublisher
from bot.slack.interactions import send_ephemeral
from bot.slack.listeners.commands import Subcommand
from bot.slack.listeners.recording import ACK_PATH_SECONDS
from bot.slack.materials_desk import MaterialsDesk, file_refusals
from bot.slack.render import escape_mrkdwn
from bot.turns.forget import ForgetOutcome
from bot.tutor.courses import CourseField, CourseStore, LearnerStore, Mode, course_from_form
from bot.tutor.instructions import ModeSource, effective_mode
from bot.tutor.materials import CourseRef, Material
from bot.tutor.teaching import TurnTeacher, is_direct_message

log = logging.getLogger(__name__)

COURSE_WORD = "course"
MODE_WORDS: dict[str, Mode | None] = {
    "mode": None,
    "mode guided": Mode.GUIDED,
    "mode direct": Mode.DIRECT,
}
# The admin check and reading the course, before the ack.
CHECK_SECONDS = 2.0
# views.open, after the ack: Slack's trigger_id lives 3 s from the command.
OPEN_SECONDS = 2.5

NOT_IN_A_CHANNEL = "`/tutor course` sets the tutor of a channel: type it in the course's channel."
NOT_AN_ADMIN = (
    "Only the workspace's admins (and the people the bot's TUTOR_ADMINS names) can set a "
    "channel's course. Ask one of them."
)
NOT_AVAILABLE = (
    "I can't open the course settings right now (my storage is unavailable). Try again soon."
)
NOT_OPENED = (
    "Slack did not let me open the course settings in time. Please try `/tutor course` again."
)
NOT_SAVED = "I couldn't save the course just now (my storage is unavailable). Please try again."
ADMINS_ONLY = "Only admins can change a course."
COURSE_SAVED = (
    "The tutor of this channel is now *{name}* ({mode} answers by default). It applies to "
    "every question asked here from now on."
)
COURSE_DELETED = (
    "The course *{name}* is deleted, with its materials: this channel has the default tutor again."
)
COURSE_DELETED_LATER = (
    "The course *{name}* is deleted. The model server did not delete its files just now; I "
    "keep trying until it does."
)
NOT_DELETED = "I couldn't delete the course just now (my storage is unavailable). Please try again."
MATERIALS_ADDING = "Reading {count} file(s) for the course's materials…"
MATERIALS_FAILED = (
    "I couldn't change the course's materials just now (my storage or the model server is "
    "unavailable). Please try again."
)
MODE_UNKNOWN = (
    "I can't read your answer mode right now (my storage is unavailable). Try again soon."
)
MODE_SET = {
    Mode.GUIDED: "Done: your answers are *guided* from now on. I'll ask what you know and give "
    "hints and next steps first; the *Show me the answer* button under an answer gives it in full.",
    Mode.DIRECT: "Done: your answers are *direct* from now on, also in courses that default to "
    "guided.",
}
SOURCE_WORDS = {
    ModeSource.LEARNER: "your choice",
    ModeSource.COURSE: "this course's default",
    ModeSource.DEFAULT: "the default",
}
MODE_HINT = (
    "`/tutor mode guided` for hints and questions first, `/tutor mode direct` for the answer "
    "at once."
)


def register_teaching_listeners(
    app: AsyncApp,
    teacher: TurnTeacher,
    courses: CourseStore,
    learners: LearnerStore,
    admins: WorkspaceAdmins,
    home: HomePublisher,
    background: BackgroundTasks,
    desk: MaterialsDesk | None = None,
    max_material_bytes: int = 10_000_000,
) -> dict[str, Subcommand]:
    """Register the course form's listener; return the `/tutor` subcommands `course` and
    `mode …` for `register_command_listeners`.

    Without a `desk` the form takes no materials (a backend that keeps none)."""

    async def course_command(
        ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient
    ) -> None:
        team_id, user_id, channel_id = _who(command)
        if is_direct_message(channel_id):
            await ack(response_type="ephemeral", text=NOT_IN_A_CHANNEL)
            return
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                admin, course, materials = await asyncio.gather(
                    admins.is_admin(team_id, user_id),
                    courses.get(team_id, channel_id),
                    _materials(team_id, channel_id),
                )
        except Exception as error:  # Redis away or slow
            log.warning("course not read (%s) %s", type(error).__name__, _context(command))
            await ack(response_type="ephemeral", text=NOT_AVAILABLE)
            return
        if not admin:
            await ack(response_type="ephemeral", text=NOT_AN_ADMIN)
            return
        await ack()
        view = course_modal(channel_id, course, materials, with_files=desk is not None)
        background.spawn(open_modal(client, command, view))

    async def _materials(team_id: str, channel_id: str) -> list[Material]:
        if desk is None:
            return []
        return await desk.materials.store.list(CourseRef(team_id, channel_id))

    async def open_modal(
        client: AsyncWebClient, command: dict[str, Any], view: dict[str, Any]
    ) -> None:
        try:
            async with asyncio.timeout(OPEN_SECONDS):
                await client.views_open(trigger_id=command.get("trigger_id") or "", view=view)
        except (SlackApiError, TimeoutError) as error:
            code = slack_error_code(error) if isinstance(error, SlackApiError) else "timeout"
            log.warning("views.open failed (%s) %s", code, _context(command))
            await send_ephemeral(command.get("response_url"), NOT_OPENED)

    async def mode_command(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        team_id, user_id, channel_id = _who(command)
        chosen = MODE_WORDS[_words(command)]
        try:
            async with asyncio.timeout(ACK_PATH_SECONDS):
                if chosen is not None:
                    await learners.set_mode(team_id, user_id, chosen)
                    text = MODE_SET[chosen]
                else:
                    course, choices = await teacher.course_and_choices(team_id, channel_id, user_id)
                    mode, source = effective_mode(course, choices.mode)
                    why = SOURCE_WORDS[source]
                    text = f"Your answers here are *{mode.value}* ({why}). {MODE_HINT}"
        except Exception as error:  # Redis away or slow
            log.warning("mode not read or set (%s) %s", type(error).__name__, _context(command))
            await ack(response_type="ephemeral", text=MODE_UNKNOWN)
            return
        await ack(response_type="ephemeral", text=text)
        if chosen is not None:
            background.spawn(home.publish(client, team_id, user_id))

    @app.view(COURSE_CALLBACK)
    async def on_course_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        team_id = str(
            (body.get("team") or {}).get("id") or view.get("team_id") or user.get("team_id") or ""
        )
        channel_id = channel_of(view)
        name_block = BLOCK_OF[CourseField.NAME]
        if channel_id is None or not user_id:
            await ack(response_action="errors", errors={name_block: NOT_SAVED})
            return
        if delete_asked(view):  # the rest of the form does not matter then
            await delete_course(ack, client, team_id, channel_id, user_id)
            return
        course, errors = course_from_form(channel_id, submitted_form(view), user_id)
        files = submitted_files(view)
        refused = file_refusals(files, max_material_bytes)
        if errors or course is None or refused:
            shown = slack_errors(errors)
            if refused:
                shown[FILES_BLOCK] = " ".join(refused)[:2000]
            await ack(response_action="errors", errors=shown)
            return
        where = {"team": team_id, "channel": channel_id, "user": user_id}
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                if not await admins.is_admin(team_id, user_id):
                    await ack(response_action="errors", errors={name_block: ADMINS_ONLY})
                    return
                await courses.save(team_id, course)
        except Exception as error:  # Redis away or slow
            log.warning("course not saved (%s) %s", type(error).__name__, where)
            await ack(response_action="errors", errors={name_block: NOT_SAVED})
            return
        await ack()
        log.info("course set %s", where)
        saved = COURSE_SAVED.format(name=escape_mrkdwn(course.name), mode=course.mode.value)
        background.spawn(_tell(client, channel_id, user_id, saved))
        background.spawn(home.publish(client, team_id, user_id))
        removed = materials_to_remove(view)
        if desk is not None and (files or removed):
            course_ref = CourseRef(team_id, channel_id)
            background.spawn(_change_materials(desk, client, course_ref, user_id, files, removed))

    async def delete_course(
        ack: AsyncAck, client: AsyncWebClient, team_id: str, channel_id: str, user_id: str
    ) -> None:
        name_block = BLOCK_OF[CourseField.NAME]
        where = {"team": team_id, "channel": channel_id, "user": user_id}
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                admin = await admins.is_admin(team_id, user_id)
        except Exception as error:  # Redis away or slow
            log.warning("course not deleted (%s) %s", type(error).__name__, where)
            await ack(response_action="errors", errors={name_block: NOT_DELETED})
            return
        if not admin:
            await ack(response_action="errors", errors={name_block: ADMINS_ONLY})
            return
        await ack()
        background.spawn(_delete_course(client, team_id, channel_id, user_id))

    async def _delete_course(
        client: AsyncWebClient, team_id: str, channel_id: str, user_id: str
    ) -> None:
        """Its materials first (at the provider and in Redis), then the course: a failure
        leaves the course there, for the admin to delete again."""
        where = {"team": team_id, "channel": channel_id, "user": user_id}
        try:
            course = await courses.get(team_id, channel_id)
            outcome = ForgetOutcome.FORGOTTEN
            if desk is not None:
                outcome = await desk.materials.forget(CourseRef(team_id, channel_id))
            await courses.delete(team_id, channel_id)
        except Exception as error:  # Redis away: the admin is told, nothing is hidden
            log.warning("course not deleted (%s) %s", type(error).__name__, where)
            await _tell(client, channel_id, user_id, NOT_DELETED)
            return
        log.info("course deleted %s (materials at the provider: %s)", where, outcome.value)
        words = COURSE_DELETED if outcome is ForgetOutcome.FORGOTTEN else COURSE_DELETED_LATER
        name = escape_mrkdwn(course.name) if course is not None else "of this channel"
        await _tell(client, channel_id, user_id, words.format(name=name))
        await home.publish(client, team_id, user_id)

    return {COURSE_WORD: course_command} | dict.fromkeys(MODE_WORDS, mode_command)


async def _change_materials(
    desk: MaterialsDesk,
    client: AsyncWebClient,
    course: CourseRef,
    user_id: str,
    files: list[dict[str, Any]],
    removed: list[str],
) -> None:
    """Add and remove the materials of a submitted form, and tell the admin how it went."""
    if files:
        await _tell(client, course.channel_id, user_id, MATERIALS_ADDING.format(count=len(files)))
    try:
        report = await desk.apply(client, course, user_id, files, removed)
        text = report.text()
    except Exception as error:  # Redis away, a bug: the admin is told, nothing is hidden
        log.warning("materials not changed (%s) course=%s", type(error).__name__, course)
        text = MATERIALS_FAILED
    if text:
        await _tell(client, course.channel_id, user_id, text)


async def _tell(client: AsyncWebClient, channel_id: str, user_id: str, text: str) -> None:
    """An ephemeral note in the course's channel (not there if the bot is not a member)."""
    try:
        await client.chat_postEphemeral(channel=channel_id, user=user_id, text=text)
    except SlackApiError as error:
        log.info("course confirmation not shown (%s)", slack_error_code(error))


def _words(command: dict[str, Any]) -> str:
    return " ".join(str(command.get("text") or "").lower().split())


def _who(command: dict[str, Any]) -> tuple[str, str, str]:
    return str(command.get("team_id") or ""), str(command["user_id"]), str(command["channel_id"])


def _context(command: dict[str, Any]) -> dict[str, str]:
    team_id, user_id, channel_id = _who(command)
    return {"team": team_id, "user": user_id, "channel": channel_id}
