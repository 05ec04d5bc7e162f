"""A workspace removes the bot: `app_uninstalled`, or `tokens_revoked` naming the bot's token.

OAuth mode: the workspace's installation (its bot token) is deleted before Slack gets its
ack, so from then on no request of that workspace is authorized and its turns still waiting
end quietly (undeliverable); its data is scheduled for deletion after the retention period
(bot.turns.workspace_purge). Both events usually arrive for one uninstall: doing it twice
changes nothing. When Redis cannot take it, Slack is answered 503 and delivers it again.

One workspace (SLACK_BOT_TOKEN): nothing is stored per workspace; the log says that the
token no longer works.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore

from bot.slack.listeners.recording import NotRecorded
from bot.slack.workspaces import WorkspaceClients
from bot.turns.workspace_purge import WorkspacePurges

log = logging.getLogger(__name__)


def register_uninstall_listeners(
    app: AsyncApp,
    installations: AsyncInstallationStore | None,
    purges: WorkspacePurges | None,
    clients: WorkspaceClients,
) -> None:
    """`installations` and `purges` are None with SLACK_BOT_TOKEN (one workspace)."""

    async def removed(context: AsyncBoltContext, body: dict[str, Any], why: str) -> None:
        team_id = context.team_id or body.get("team_id") or None
        enterprise_id = context.enterprise_id or None
        if installations is None or purges is None:
            log.warning("the app was removed from team %s (%s): SLACK_BOT_TOKEN no longer "
                        "works there", team_id, why)  # fmt: skip
            return
        try:
            await installations.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)
            due = await purges.schedule(team_id) if team_id else None
        except (RedisError, OSError) as error:
            log.warning("could not record that team %s removed the bot (%s); Slack will "
                        "deliver it again", team_id, type(error).__name__)  # fmt: skip
            raise NotRecorded from error
        if team_id:
            clients.forget(team_id)
        when = (
            "-" if due is None else datetime.fromtimestamp(due, UTC).isoformat(timespec="minutes")
        )
        log.info("team %s removed the bot (%s): installation deleted, data purged from %s",
                 team_id or enterprise_id, why, when)  # fmt: skip

    @app.event("app_uninstalled")
    async def on_uninstalled(context: AsyncBoltContext, body: dict[str, Any]) -> None:
        await removed(context, body, "app_uninstalled")

    @app.event("tokens_revoked")
    async def on_tokens_revoked(
        context: AsyncBoltContext, body: dict[str, Any], event: dict[str, Any]
    ) -> None:
        tokens = event.get("tokens") if isinstance(event.get("tokens"), dict) else {}
        if not (tokens or {}).get("bot"):
            return  # only users' tokens: the bot holds none
        await removed(context, body, "tokens_revoked")
