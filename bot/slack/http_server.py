"""HTTP mode: Slack's requests on POST /slack/events, and GET /healthz for the platform."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.slack.request_check import UNSIGNED, Rejected, read_signed_payload

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


def make_web_app(
    bolt_app: AsyncApp, redis_ok: Callable[[], Awaitable[bool]], signing_secret: str
) -> web.Application:
    """Events, slash commands and interactivity share one URL (Bolt's default).

    Bad input is refused before Bolt sees it (see request_check), with one log line.
    """

    async def slack_events(request: web.Request) -> web.Response:
        try:
            read_signed_payload(signing_secret, await request.read(), request.headers)
        except Rejected as rejected:
            log.log(
                logging.INFO if rejected.status == UNSIGNED else logging.WARNING,
                "refused a request with %d: %s",
                rejected.status,
                rejected.reason,
            )
            return web.Response(status=rejected.status, text=rejected.reason)
        bolt_response = await bolt_app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        if await redis_ok():
            return web.json_response({"status": "ok", "redis": "ok"})
        return web.json_response({"status": "unavailable", "redis": "unreachable"}, status=503)

    web_app = web.Application()
    web_app.router.add_post(EVENTS_PATH, slack_events)
    web_app.router.add_get(HEALTH_PATH, healthz)
    return web_app
