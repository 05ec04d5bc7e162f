"""Socket Mode, the bot's way rather than the SDK's.

Connecting: the SDK's connect loop retries every failure forever, a refused app token
included, with a traceback every ten seconds. Here the first step, `apps.connections.open`,
is ours: a token Slack refuses ends the start with a plain ConfigError, and an unreachable
Slack is retried with one plain warning per attempt until the bot is stopped (callers cancel
the connect).

Receiving: Bolt answers a malformed payload with a traceback and no ack, and Slack would send
it again and again. It is acked instead (delivering it again would not mend it) and logged in
one line: the same shape checks as over HTTP (request_check), without the signature, which
Socket Mode does not have. An envelope whose payload is no object at all is dropped by
slack_sdk before it gets here (it logs that itself).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.settings import ConfigError
from bot.slack.client import slack_error_code
from bot.slack.request_check import BadPayload, check_payload

log = logging.getLogger(__name__)

# apps.connections.open errors that no retry mends: the token is wrong for Socket Mode.
REFUSED_TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "not_allowed_token_type",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
    }
)
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0
CLOSE_SECONDS = 5.0


class CheckedSocketModeHandler(AsyncSocketModeHandler):
    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:
        try:
            check_payload(req.payload)
        except BadPayload as error:
            log.warning("refused a Socket Mode %s envelope: %s", req.type, error)
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        await super().handle(client, req)


async def connect_socket_mode(bolt_app: AsyncApp, app_token: str) -> AsyncSocketModeHandler:
    """Open a Socket Mode connection for `bolt_app`; return its handler once connected.

    Raises ConfigError when Slack refuses the app token. Retries an unreachable Slack until
    cancelled.
    """
    handler = CheckedSocketModeHandler(bolt_app, app_token)
    try:
        handler.client.wss_uri = await _socket_url(handler, app_token)
        await handler.connect_async()
    except BaseException:
        await close_socket_mode(handler)
        raise
    return handler


async def close_socket_mode(handler: AsyncSocketModeHandler) -> None:
    """Close the connection, waiting at most CLOSE_SECONDS for Slack to agree."""
    try:
        await asyncio.wait_for(handler.close_async(), CLOSE_SECONDS)
    except TimeoutError:
        log.warning("the Socket Mode connection did not close within %.0f s", CLOSE_SECONDS)
    except Exception as error:  # closing a connection that never opened: nothing to keep
        log.info("closing the Socket Mode connection: %s", type(error).__name__)


async def _socket_url(handler: AsyncSocketModeHandler, app_token: str) -> str:
    """The WebSocket URL from apps.connections.open, asked until Slack gives one."""
    delay = FIRST_RETRY_SECONDS
    while True:
        try:
            response = await handler.client.web_client.apps_connections_open(app_token=app_token)
            return str(response["url"])
        except SlackApiError as error:
            code = slack_error_code(error)
            if code in REFUSED_TOKEN_ERRORS:
                raise ConfigError(
                    f"Slack refused SLACK_APP_TOKEN ({code}). Use the app-level token "
                    "(xapp-…) with the connections:write scope from the app's Basic "
                    "Information page, with Socket Mode enabled, or unset it for HTTP mode."
                ) from None
            problem = f"Slack answered {code}"
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            problem = f"Slack unreachable: {type(error).__name__}"
        log.warning(
            "cannot open a Socket Mode connection (%s); trying again in %.0f s", problem, delay
        )
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_SECONDS)
