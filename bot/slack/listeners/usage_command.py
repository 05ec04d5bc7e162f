"""`/tutor usage`: the asker's tokens (and cost) today and this month, the workspace's for
admins; ephemeral, answered in the command's ack (Slack waits 3 s at most)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.admins import WorkspaceAdmins
from bot.slack.usage_text import usage_report
from bot.tutor.ledger import UsageLedger

log = logging.getLogger(__name__)

# Reading the figures and asking Slack whether the asker is an admin, together.
REPORT_SECONDS = 2.0
UNAVAILABLE = (
    "I can't read the usage figures right now (my storage is unavailable). Try again soon."
)


class UsageCommand:
    """The `usage` subcommand of /tutor (see `bot.slack.listeners.commands`)."""

    def __init__(self, ledger: UsageLedger, admins: WorkspaceAdmins) -> None:
        self._ledger = ledger
        self._admins = admins

    async def __call__(
        self, ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient
    ) -> None:
        team_id, user_id = command.get("team_id") or "", command["user_id"]
        try:
            async with asyncio.timeout(REPORT_SECONDS):
                report, admin = await asyncio.gather(
                    self._ledger.report(team_id, user_id),
                    self._admins.is_admin(team_id, user_id),
                )
        except Exception as error:  # Redis unreachable or slow: say so
            log.warning("could not read usage (%s) %s", type(error).__name__,
                        {"team": team_id, "user": user_id})  # fmt: skip
            await ack(response_type="ephemeral", text=UNAVAILABLE)
            return
        await ack(response_type="ephemeral", text=usage_report(report, admin=admin))
