"""Installing the bot in many workspaces: Slack's OAuth flow (Bolt's), on Redis.

`/slack/install` sends the installer to Slack's approval page with a one-time state (and a
cookie that ties it to their browser); Slack sends them back to `/slack/oauth_redirect`
with a code, which `oauth.v2.access` turns into the workspace's bot token; the installation
is saved (bot.slack.installation_store) and requests from that workspace are authorized
from it (`InstallationAuthorize`).

Org-wide installs (Enterprise Grid, `is_enterprise_install`) are refused with a page that
says so, and their token is revoked: a turn knows only its workspace's team id, and the
manifest does not ask for org-wide deployment (`org_deploy_enabled: false`). Workspaces of
a Grid org install one by one, like any other workspace.
"""

from __future__ import annotations

import contextlib
import html
import logging

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.error import BoltError
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import OAuthStateUtils
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from bot.slack.scopes import REQUIRED_BOT_SCOPES

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"

ORG_WIDE_REFUSED = (
    "This app is installed workspace by workspace, not for a whole Enterprise Grid "
    "organization. Nothing was installed. Ask an admin to add it to each workspace that "
    "wants it (Install to Workspace), or to install it from one workspace's settings."
)


class OrgWideInstallRefused(BoltError):
    """An org-wide install, which this bot does not support (see the module's docstring)."""


def authorization_url(slack_api_url: str) -> str:
    """Slack's approval page, beside its Web API (https://slack.com/oauth/v2/authorize)."""
    return slack_api_url.removesuffix("/").removesuffix("/api") + "/oauth/v2/authorize"


def build_oauth_flow(
    settings: Settings,
    installations: AsyncInstallationStore,
    states: AsyncOAuthStateStore,
    client: AsyncWebClient,
    *,
    state_expiration_seconds: int = OAuthStateUtils.default_expiration_seconds,
) -> AsyncOAuthFlow:
    """Bolt's OAuth flow for these settings (`settings.oauth` must be true)."""
    assert settings.slack_client_id and settings.slack_client_secret
    oauth_settings = AsyncOAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(REQUIRED_BOT_SCOPES),  # manifest.yml's bot scopes
        user_scopes=[],
        redirect_uri=settings.slack_redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        # /slack/install goes straight to Slack's approval page.
        install_page_rendering_enabled=False,
        authorization_url=authorization_url(settings.slack_api_url),
        installation_store=installations,
        installation_store_bot_only=True,
        state_store=states,
        state_expiration_seconds=state_expiration_seconds,
        callback_options=AsyncCallbackOptions(success=_success, failure=_failure),
        logger=logging.getLogger("slack_bolt.oauth"),
    )
    return TutorOAuthFlow(client=client, settings=oauth_settings)


class TutorOAuthFlow(AsyncOAuthFlow):
    """Bolt's flow, refusing org-wide installs."""

    async def store_installation(
        self, request: AsyncBoltRequest, installation: Installation
    ) -> None:
        if installation.is_enterprise_install:
            log.info("refused an org-wide install (org %s)", installation.enterprise_id)
            if installation.bot_token:
                with contextlib.suppress(SlackApiError, OSError):
                    await self.client.auth_revoke(token=installation.bot_token)
            raise OrgWideInstallRefused("org-wide installs are not supported")
        await super().store_installation(request, installation)
        log.info("installed in team %s", installation.team_id)


async def _success(args: AsyncSuccessArgs) -> BoltResponse:
    """Bolt's page: thanks, and a link that opens the app in Slack."""
    return await args.default.success(args)


async def _failure(args: AsyncFailureArgs) -> BoltResponse:
    """Bolt's failure page (it explains each reason), but for org-wide installs our own."""
    log.info("an installation failed: %s", args.reason)
    if not isinstance(args.error, OrgWideInstallRefused):
        return await args.default.failure(args)
    return BoltResponse(
        status=400,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Set-Cookie": args.settings.state_utils.build_set_cookie_for_deletion(),
        },
        body=message_page("Not installed", ORG_WIDE_REFUSED),
    )


def message_page(title: str, text: str) -> str:
    """A plain page for the person installing the bot."""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h2>{html.escape(title)}</h2><p>{html.escape(text)}</p></body></html>"
    )


class InstallationAuthorize(AsyncAuthorize):
    """Bolt's `authorize` in OAuth mode: the request's workspace's installation, from Redis.

    Bolt's default asks Slack (`auth.test`) on every request; the installation already holds
    the bot's ids, checked with Slack when it was made, and a workspace that removes the bot
    is told to the bot (`app_uninstalled`, `tokens_revoked`), which deletes it. None for a
    workspace without an installation: Bolt then answers without running any listener.
    """

    def __init__(self, installations: AsyncInstallationStore) -> None:
        super().__init__()
        self._installations = installations

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        bot = await self._installations.async_find_bot(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=context.is_enterprise_install,
        )
        if bot is None:
            log.info("a request from team %s, where the bot is not installed", team_id)
            return None
        return AuthorizeResult(
            enterprise_id=enterprise_id or bot.enterprise_id,
            team_id=team_id or bot.team_id,
            team=bot.team_name,
            bot_user_id=bot.bot_user_id,
            bot_id=bot.bot_id,
            bot_token=bot.bot_token,
            bot_scopes=bot.bot_scopes,
            user_id=user_id,
        )
