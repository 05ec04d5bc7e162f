"""Who is an admin of the tutor: the workspace's admins and owners, and TUTOR_ADMINS.

Slack says who administers a workspace in `users.info` (`is_admin`, `is_owner`,
`is_primary_owner`; needs the `users:read` scope). Answers are cached a few minutes per
user, so commands cost at most one lookup each that often. A lookup that fails or takes too
long (rate limit, missing scope, Slack away) counts as "not an admin", uncached: it is asked
again next time, and nobody sees more than their own figures meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.slack.client import slack_error_code
from bot.slack.workspaces import WorkspaceClients

log = logging.getLogger(__name__)

# How long Slack's word on one user is trusted.
ADMIN_CACHE_SECONDS = 300.0
# One lookup may take this long (a command must be acknowledged within 3 s).
LOOKUP_SECONDS = 1.5
# Past this many cached users, the expired entries are dropped.
CACHE_PRUNE_SIZE = 10_000


class WorkspaceAdmins:
    """Answers "is this user an admin?" for commands that show more to admins."""

    def __init__(
        self,
        clients: WorkspaceClients,
        configured: frozenset[str] = frozenset(),
        *,
        cache_seconds: float = ADMIN_CACHE_SECONDS,
        lookup_seconds: float = LOOKUP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self._configured = configured
        self._cache_seconds = cache_seconds
        self._lookup_seconds = lookup_seconds
        self._clock = clock
        self._known: dict[tuple[str, str], tuple[bool, float]] = {}  # → (admin, until)

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """True for TUTOR_ADMINS and for the workspace's admins and owners."""
        if user_id in self._configured:
            return True
        now = self._clock()
        known = self._known.get((team_id, user_id))
        if known is not None and known[1] > now:
            return known[0]
        admin = await self._ask_slack(team_id, user_id)
        if admin is not None:
            self._remember(team_id, user_id, admin, now)
        return bool(admin)

    async def _ask_slack(self, team_id: str, user_id: str) -> bool | None:
        """Slack's answer; None when there is none to be had now."""
        context = {"team": team_id, "user": user_id}
        try:
            async with asyncio.timeout(self._lookup_seconds):
                response = await self._clients.for_team(team_id).users_info(user=user_id)
        except SlackApiError as error:
            log.warning("users.info failed (%s): not treated as admin %s",
                        slack_error_code(error), context)  # fmt: skip
            return None
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            log.warning("users.info did not answer (%s): not treated as admin %s",
                        type(error).__name__, context)  # fmt: skip
            return None
        user = response.get("user") or {}
        return any(bool(user.get(flag)) for flag in ("is_admin", "is_owner", "is_primary_owner"))

    def _remember(self, team_id: str, user_id: str, admin: bool, now: float) -> None:
        if len(self._known) >= CACHE_PRUNE_SIZE:
            self._known = {k: v for k, v in self._known.items() if v[1] > now}
        self._known[(team_id, user_id)] = (admin, now + self._cache_seconds)
