"""Which Slack client speaks for a workspace: one with that workspace's bot token.

With SLACK_BOT_TOKEN (one workspace) every turn uses the process's one client. With OAuth
(many workspaces) each workspace has its own bot token, in its installation: a turn's Slack
calls (its placeholder, status edits, answer) go out with the token of the turn's team. Those
clients share the process's one connection pool and the retries and error counting of
bot.slack.client; the token is looked up when a call is made, so the factories that build a
turn's reply surface stay synchronous, and a workspace that uninstalled the bot meanwhile
gets a quiet `not_installed` error (the turn ends undeliverable) instead of a crash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack.client import (
    CALL_TIMEOUT_SECONDS,
    ApiErrorListener,
    retry_handlers,
    slack_error_code,
)

log = logging.getLogger(__name__)

# The error a call for a workspace without an installation fails with (made here, not by
# Slack: like Slack's own refusals it is permanent, so the turn ends undeliverable).
NOT_INSTALLED = "not_installed"
# Slack's answers to a token that no longer works: the cached token is dropped at once.
TOKEN_ERRORS = frozenset({"invalid_auth", "token_revoked", "account_inactive", "not_authed"})
# How long this process trusts a token it read (another process may have seen the
# workspace uninstall or reinstall the bot; Slack's answer above drops it sooner).
TOKEN_CACHE_SECONDS = 60.0


class WorkspaceClients(Protocol):
    """Slack clients per workspace (team id)."""

    def for_team(self, team_id: str) -> AsyncWebClient: ...

    def forget(self, team_id: str) -> None:
        """The workspace uninstalled the bot: drop what this process holds of its token."""
        ...


@dataclass
class OneWorkspace:
    """SLACK_BOT_TOKEN: one client, whatever the team."""

    client: AsyncWebClient

    def for_team(self, team_id: str) -> AsyncWebClient:
        return self.client

    def forget(self, team_id: str) -> None:
        pass


class InstallationTokens:
    """Bot tokens by team id from the installation store, kept briefly in this process."""

    def __init__(
        self,
        store: AsyncInstallationStore,
        *,
        cache_seconds: float = TOKEN_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}

    async def bot_token(self, team_id: str) -> str | None:
        """The workspace's bot token; None when the bot is not installed there.

        A workspace not installed is not remembered: its installation may arrive any moment.
        While Redis fails, a token read before is used however old it is.
        """
        cached = self._tokens.get(team_id)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        try:
            bot = await self._store.async_find_bot(enterprise_id=None, team_id=team_id)
        except (RedisError, OSError):
            if cached is not None:
                return cached[0]
            raise
        if bot is None or not bot.bot_token:
            self._tokens.pop(team_id, None)
            return None
        self._tokens[team_id] = (bot.bot_token, self._clock() + self._cache_seconds)
        return bot.bot_token

    def forget(self, team_id: str) -> None:
        self._tokens.pop(team_id, None)


class WorkspaceClient(AsyncWebClient):
    """A client for one workspace whose bot token is looked up as each call is made."""

    def __init__(self, team_id: str, tokens: InstallationTokens, **options: Any) -> None:
        super().__init__(**options)
        self.team_id = team_id
        self._tokens = tokens

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:  # type: ignore[override]
        token = await self._tokens.bot_token(self.team_id)
        if token is None:
            log.info("no installation for team %s: %s not sent", self.team_id, api_method)
            raise not_installed(self, api_method)
        self.token = token  # every client of the team holds the same token: no race
        try:
            return await super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            if slack_error_code(error) in TOKEN_ERRORS:
                self._tokens.forget(self.team_id)
            raise


def not_installed(client: AsyncWebClient, api_method: str) -> SlackApiError:
    """The error of a call for a workspace the bot is not installed in (Slack's shape)."""
    response = AsyncSlackResponse(
        client=client,
        http_verb="POST",
        api_url=client.base_url + api_method,
        req_args={},
        data={"ok": False, "error": NOT_INSTALLED},
        headers={},
        status_code=200,
    )
    return SlackApiError(f"The bot is not installed in this workspace ({api_method})", response)


class InstalledWorkspaces:
    """OAuth: one client per workspace, sharing the process's connection pool."""

    def __init__(
        self,
        tokens: InstallationTokens,
        base_url: str,
        *,
        session: aiohttp.ClientSession,
        wait_out_rate_limits: bool = True,
        on_error: ApiErrorListener | None = None,
    ) -> None:
        self._tokens = tokens
        self._base_url = base_url
        self._session = session
        self._wait_out_rate_limits = wait_out_rate_limits
        self._on_error = on_error
        self._clients: dict[str, WorkspaceClient] = {}

    def for_team(self, team_id: str) -> AsyncWebClient:
        client = self._clients.get(team_id)
        if client is None:
            client = WorkspaceClient(
                team_id,
                self._tokens,
                base_url=self._base_url,
                session=self._session,
                timeout=CALL_TIMEOUT_SECONDS,
                retry_handlers=retry_handlers(
                    wait_out_rate_limits=self._wait_out_rate_limits, on_error=self._on_error
                ),
            )
            self._clients[team_id] = client
        return client

    def forget(self, team_id: str) -> None:
        self._tokens.forget(team_id)
        self._clients.pop(team_id, None)
