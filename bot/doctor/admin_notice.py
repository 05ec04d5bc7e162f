"""Telling a workspace's admins, in a DM, that the model the bot runs is about to shut down.

Once a day per workspace however many processes run: the process that sets the day's key
first (SET NX EX) sends it. The admins are TUTOR_ADMINS or, when that is empty, the
workspace's admins and owners from users.list (the users:read scope).
"""

from __future__ import annotations

import logging
from datetime import date

import aiohttp
from redis.asyncio import Redis
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.doctor.results import ModelShutdown
from bot.slack.client import slack_error_code
from bot.slack.identity import BotIdentity
from bot.storage.keys import Keys

log = logging.getLogger(__name__)

# The day's key outlives the day (UTC), so that a clock a little off cannot send it twice.
NOTICE_TTL_SECONDS = 2 * 24 * 60 * 60
USERS_PAGE_SIZE = 200  # what Slack advises for users.list
MAX_USERS_PAGES = 25  # 5,000 members; beyond that set TUTOR_ADMINS
MAX_ADMINS_TOLD = 20


class ShutdownNotice:
    """Says once a day, to each admin in a DM, what the model check said."""

    def __init__(
        self, redis: Redis, keys: Keys, client: AsyncWebClient, admins: frozenset[str]
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._client = client
        self._admins = admins

    async def tell_once_today(
        self, team_id: str, shutdown: ModelShutdown, text: str, today: date
    ) -> int:
        """DM `text` to the admins unless some process did today; how many were told.

        When nobody could be told (no admins found, Slack refused), the day's key is
        removed again, so that a later check tries once more.
        """
        key = self._keys.model_shutdown_notice(team_id, shutdown.model, today.isoformat())
        if not await self._redis.set(key, "1", nx=True, ex=NOTICE_TTL_SECONDS):
            return 0
        told = 0
        try:
            for user in (await self.admins())[:MAX_ADMINS_TOLD]:
                told += await self._tell(user, text)
        finally:
            if told == 0:
                await self._redis.delete(key)
        log.info("told %d admins that %s shuts down on %s", told, shutdown.model, shutdown.date)
        return told

    async def admins(self) -> list[str]:
        """TUTOR_ADMINS, else the workspace's admins and owners (people, not bots)."""
        if self._admins:
            return sorted(self._admins)
        found: list[str] = []
        cursor = ""
        for _ in range(MAX_USERS_PAGES):
            try:
                page = await self._client.users_list(limit=USERS_PAGE_SIZE, cursor=cursor or None)
            except SlackApiError as error:
                log.warning(
                    "cannot list the workspace's admins (users.list: %s): set TUTOR_ADMINS",
                    slack_error_code(error),
                )
                return found
            for member in page.get("members") or []:
                if _is_admin(member):
                    found.append(str(member["id"]))
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return found
        log.warning("the workspace has too many members to find its admins: set TUTOR_ADMINS")
        return found

    async def _tell(self, user: str, text: str) -> int:
        """1 once `user` has the DM, else 0 (logged)."""
        try:
            opened = await self._client.conversations_open(users=user)
            channel = (opened.get("channel") or {}).get("id")
            await self._client.chat_postMessage(channel=channel, text=text)
        except SlackApiError as error:
            log.warning("cannot tell admin %s (%s)", user, slack_error_code(error))
            return 0
        return 1


def _is_admin(member: dict[str, object]) -> bool:
    return bool(
        (member.get("is_admin") or member.get("is_owner"))
        and not member.get("deleted")
        and not member.get("is_bot")
        and member.get("id")
    )


async def workspace_of(identity: BotIdentity, client: AsyncWebClient) -> str | None:
    """The bot's workspace: as learnt at start, or asked now (None when Slack won't say)."""
    if identity.known is not None and identity.known.team_id:
        return identity.known.team_id
    try:
        response = await client.auth_test()
    except (SlackApiError, aiohttp.ClientError, OSError):
        return None
    team = response.get("team_id")
    return str(team) if team else None
