"""HTTP mode: Slack's requests on POST /slack/events, and GET /healthz for the platform."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"


def make_web_app(bolt_app: AsyncApp, redis_ok: Callable[[], Awaitable[bool]]) -> web.Application:
    """Events, slash commands and interactivity share one URL (Bolt's default)."""

    async def slack_events(request: web.Request) -> web.Response:
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
