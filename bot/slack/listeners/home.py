"""The App Home tab: published when someone opens it (`app_home_opened`, tab `home`), and
again after they change their mode or the course of their direct messages in it.

Listeners run before Slack gets its ack: a choice is stored (one bounded Redis step) before
it, and the Home is published after it, in the background.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.background import BackgroundTasks
from bot.slack.home_publisher import HomePublisher
from bot.slack.home_view import DM_COURSE_ACTION, MODE_ACTION, chosen_dm_course, chosen_mode
from bot.slack.listeners.recording import ACK_PATH_SECONDS
from bot.tutor.courses import CourseStore, LearnerStore

log = logging.getLogger(__name__)


async def is_home_tab(event: dict[str, Any]) -> bool:
    """A Bolt matcher (async, as AsyncApp wants): the Home tab, not the Messages tab."""
    return event.get("tab") == "home"


def register_home_listeners(
    app: AsyncApp,
    home: HomePublisher,
    learners: LearnerStore,
    courses: CourseStore,
    background: BackgroundTasks,
) -> None:
    """Register before the Messages tab's listener of `app_home_opened` (Bolt runs the
    first listener that matches): this one takes only the Home tab."""

    @app.event("app_home_opened", matchers=[is_home_tab])
    async def on_home_opened(
        body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        team_id = context.team_id or body.get("team_id") or ""
        user_id = event.get("user") or ""
        if user_id and context.client is not None:
            background.spawn(home.publish(context.client, team_id, user_id))

    @app.action(MODE_ACTION)
    async def on_mode_chosen(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        team_id, user_id = _who(body)
        understood, mode = chosen_mode(_selected(action))
        if not understood or not user_id:
            log.info("a mode choice the bot did not offer was ignored")
            return
        if await _stored(learners.set_mode(team_id, user_id, mode), "mode", body):
            background.spawn(home.publish(client, team_id, user_id))

    @app.action(DM_COURSE_ACTION)
    async def on_dm_course_chosen(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        team_id, user_id = _who(body)
        channel = chosen_dm_course(_selected(action))
        if not user_id:
            return

        async def choose() -> None:
            if channel is not None and channel not in await courses.names(team_id):
                raise LookupError("no such course")  # a course that was not offered
            await learners.set_dm_course(team_id, user_id, channel)

        if await _stored(choose(), "DM course", body):
            background.spawn(home.publish(client, team_id, user_id))


async def _stored(step: Any, what: str, body: dict[str, Any]) -> bool:
    """Run a storing step within the ack path's bound; False (logged) when it failed: the
    Home, published again at its next opening, shows what is stored."""
    try:
        async with asyncio.timeout(ACK_PATH_SECONDS):
            await step
    except Exception as error:
        team_id, user_id = _who(body)
        log.warning("%s not stored (%s) %s", what, type(error).__name__,
                    {"team": team_id, "user": user_id})  # fmt: skip
        return False
    return True


def _who(body: dict[str, Any]) -> tuple[str, str]:
    """(team, user) of an interaction."""
    user = body.get("user") or {}
    team = body.get("team") or {}
    return str(team.get("id") or user.get("team_id") or ""), str(user.get("id") or "")


def _selected(action: dict[str, Any]) -> str | None:
    option = action.get("selected_option") or {}
    value = option.get("value")
    return value if isinstance(value, str) else None
