"""Workspaces' installations of the bot (OAuth mode), kept in Redis.

slack_sdk ships file, SQL and S3 stores but none for Redis, which is where everything else
of the bot lives; this is slack_sdk's `AsyncInstallationStore` on Redis, so Bolt's OAuth flow
saves into it and `bot.slack.oauth.InstallationAuthorize` and `bot.slack.workspaces` read it.

One record per workspace: its latest installation, as slack_sdk serialises it (JSON, times in
ISO 8601). Keys tell an org-wide (Enterprise Grid) installation, keyed by the org, from a
workspace's, keyed by its team id (unique across Slack, also inside an org), so a turn, which
knows its team id, finds its workspace's token without the org's id. The app asks for bot
scopes only: there are no per-user tokens to keep, and `user_id` is just who installed it.

Saving an installation also cancels a pending purge of that workspace's data (it came back
within the retention period, see bot.slack.workspace_purge), in the same transaction.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from slack_bolt.error import BoltError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation

from bot.storage.keys import Keys

log = logging.getLogger(__name__)


class RedisInstallationStore(AsyncInstallationStore):
    """slack_sdk's async installation store interface, on Redis under the bot's key prefix."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    @property
    def logger(self) -> logging.Logger:
        return log

    # ---- saving ---------------------------------------------------------------------------

    async def async_save(self, installation: Installation) -> None:
        """Keep the workspace's (or org's) latest installation; raises BoltError when Redis
        fails, which Bolt's OAuth flow shows the installer as a failure page."""
        key = self._key(
            installation.enterprise_id, installation.team_id, installation.is_enterprise_install
        )
        if key is None:
            raise BoltError("an installation names neither a workspace nor an org")
        await self._write(key, _encoded(installation.to_dict_for_copying()), installation.team_id)

    async def async_save_bot(self, bot: Bot) -> None:
        """The bot's part of an installation (what token rotation saves)."""
        key = self._key(bot.enterprise_id, bot.team_id, bot.is_enterprise_install)
        if key is None:
            raise BoltError("a bot installation names neither a workspace nor an org")
        record = await self._load(key) or {"user_id": ""}
        record.update(_encoded(bot.to_dict_for_copying()))
        await self._write(key, record, bot.team_id)

    async def _write(self, key: str, record: dict[str, Any], team_id: str | None) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(key, json.dumps(record))
                if team_id and not record.get("is_enterprise_install"):
                    pipe.zrem(self._keys.workspace_purges, team_id)
                await pipe.execute()
        except (RedisError, OSError) as error:
            raise BoltError(
                f"the installation could not be saved ({type(error).__name__})"
            ) from error

    # ---- finding --------------------------------------------------------------------------

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        installation = await self._find(enterprise_id, team_id, is_enterprise_install)
        if installation is None or not installation.bot_token:
            return None
        return installation.to_bot()

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        """The latest installation; asked for a user, only if that user installed it (no
        per-user installations are kept: the app has no user scopes)."""
        installation = await self._find(enterprise_id, team_id, is_enterprise_install)
        if installation is None or (user_id is not None and installation.user_id != user_id):
            return None
        return installation

    async def _find(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> Installation | None:
        key = self._key(enterprise_id, team_id, is_enterprise_install)
        record = await self._load(key) if key is not None else None
        if record is None and enterprise_id and team_id and not is_enterprise_install:
            # A workspace of an org that installed the bot org-wide.
            record = await self._load(self._keys.org_installation(enterprise_id))
        if record is None:
            return None
        try:
            return Installation(**record)
        except (TypeError, ValueError) as error:
            log.warning("an unreadable installation record (%s) team=%s", error, team_id)
            return None

    async def _load(self, key: str) -> dict[str, Any] | None:
        raw = await self._redis.get(key)
        if raw is None:
            return None
        try:
            record = json.loads(raw)
        except ValueError:
            log.warning("an unreadable installation record under %s", key)
            return None
        return record if isinstance(record, dict) else None

    # ---- deleting -------------------------------------------------------------------------

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        """Without its bot token an installation of this app holds nothing usable: it goes."""
        await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        """Deletes the installation; for a user, only if that user installed it."""
        if user_id is not None:
            found = await self._find(enterprise_id, team_id, is_enterprise_install=not team_id)
            if found is None or found.user_id != user_id:
                return
        await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        key = self._key(enterprise_id, team_id, is_enterprise_install=not team_id)
        if key is not None:
            await self._redis.delete(key)

    def _key(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> str | None:
        if is_enterprise_install or not team_id:
            return self._keys.org_installation(enterprise_id) if enterprise_id else None
        return self._keys.installation(team_id)


def _encoded(values: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: slack_sdk gives times as datetimes and reads them back from ISO strings."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in values.items()
    }
