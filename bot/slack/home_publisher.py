"""Publishing a person's App Home (`views.publish`): when they open it, and after they (or an
admin) changed a mode or a course. Cosmetic like a status edit: a failure is logged, never
shown, and the next opening publishes it again."""

from __future__ import annotations

import asyncio
import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.admins import WorkspaceAdmins
from bot.slack.client import slack_error_code
from bot.slack.home_view import courses_that_fit, home_view, learner_blocks
from bot.tutor.home import HomeReader

log = logging.getLogger(__name__)

# Reading the figures, asking Slack who is an admin and publishing, together.
PUBLISH_SECONDS = 10.0


class HomePublisher:
    def __init__(self, reader: HomeReader, admins: WorkspaceAdmins) -> None:
        self._reader = reader
        self._admins = admins

    async def publish(self, client: AsyncWebClient, team_id: str, user_id: str) -> bool:
        """Publish the person's Home; True when Slack took it."""
        context = {"team": team_id, "user": user_id}
        try:
            async with asyncio.timeout(PUBLISH_SECONDS):
                learner, admin = await asyncio.gather(
                    self._reader.learner(team_id, user_id),
                    self._admins.is_admin(team_id, user_id),
                )
                overview = None
                if admin:
                    room = courses_that_fit(len(learner_blocks(learner)))
                    overview = await self._reader.overview(team_id, room)
                await client.views_publish(user_id=user_id, view=home_view(learner, overview))
        except SlackApiError as error:
            log.warning("views.publish failed (%s) %s", slack_error_code(error), context)
            return False
        except Exception as error:  # Redis away or slow, Slack unreachable: next time
            log.warning("the App Home was not published (%s) %s", type(error).__name__, context)
            return False
        return True
