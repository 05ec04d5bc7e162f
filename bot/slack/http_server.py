"""HTTP mode: Slack's requests on POST /slack/events, GET /healthz for the platform, and
(OAuth mode) the install pages /slack/install and /slack/oauth_redirect."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from redis.exceptions import RedisError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.aiohttp import to_bolt_request as bolt_request_of
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.slack.oauth import message_page
from bot.slack.request_check import MALFORMED, UNSIGNED, Payload, Rejected, read_signed_payload

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
INSTALL_UNAVAILABLE = (
    "The app could not complete this step just now. Nothing was installed: please start "
    "again from the install link in a minute."
)


def make_web_app(
    bolt_app: AsyncApp | None,
    redis_ok: Callable[[], Awaitable[bool]],
    signing_secret: str,
    metrics: Callable[[str | None], Awaitable[tuple[bytes, str]]] | None = None,
    oauth_flow: AsyncOAuthFlow | None = None,
) -> web.Application:
    """Events, slash commands and interactivity share one URL (Bolt's default); /healthz
    and /metrics are for the platform (Socket Mode serves only those: no `bolt_app`);
    `oauth_flow` (many workspaces) adds its install and redirect pages.

    Bad input is refused before Bolt sees it (see request_check), with one log line.
    `metrics` renders a scrape for the client's Accept header (body, content type).
    """

    async def slack_events(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = read_signed_payload(signing_secret, body, request.headers)
            bolt_request = to_bolt_request(request, body, payload)
        except Rejected as rejected:
            log.log(
                logging.INFO if rejected.status == UNSIGNED else logging.WARNING,
                "refused a request with %d: %s",
                rejected.status,
                rejected.reason,
            )
            return web.Response(status=rejected.status, text=rejected.reason)
        assert bolt_app is not None
        return await to_aiohttp_response(await bolt_app.async_dispatch(bolt_request))

    async def healthz(_: web.Request) -> web.Response:
        if await redis_ok():
            return web.json_response({"status": "ok", "redis": "ok"})
        return web.json_response({"status": "unavailable", "redis": "unreachable"}, status=503)

    async def scrape(request: web.Request) -> web.Response:
        assert metrics is not None
        body, content_type = await metrics(request.headers.get("Accept"))
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def install(request: web.Request) -> web.Response:
        assert oauth_flow is not None
        try:
            if request.path == oauth_flow.install_path:
                bolt_response = await oauth_flow.handle_installation(await bolt_request_of(request))
            else:
                bolt_response = await oauth_flow.handle_callback(await bolt_request_of(request))
        except (RedisError, OSError) as error:
            log.warning("an install step failed (%s)", type(error).__name__)
            return web.Response(
                status=503,
                content_type="text/html",
                text=message_page("Try again", INSTALL_UNAVAILABLE),
            )
        return await to_aiohttp_response(bolt_response)

    web_app = web.Application()
    if bolt_app is not None:
        web_app.router.add_post(EVENTS_PATH, slack_events)
    if oauth_flow is not None:
        web_app.router.add_get(oauth_flow.install_path, install)
        web_app.router.add_get(oauth_flow.redirect_uri_path, install)
    web_app.router.add_get(HEALTH_PATH, healthz)
    if metrics is not None:
        web_app.router.add_get(METRICS_PATH, scrape)
    return web_app


def to_bolt_request(request: web.Request, body: bytes, payload: Payload) -> AsyncBoltRequest:
    """Bolt's request for a checked body, with the payload as request_check read it.

    Unlike Bolt's own aiohttp adapter: the body is UTF-8 whatever charset the header names
    (aiohttp fails on one it does not know), and the payload is ours, because Bolt reads
    any form containing the word "payload" as an interaction, so `/tutor what is a
    payload?` reached it as an empty body. Raises Rejected (400) for a payload Bolt cannot
    build its context from, which request_check has missed.
    """
    try:
        bolt_request = AsyncBoltRequest(
            body=body.decode("utf-8"),  # request_check decoded it already
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]  (as Bolt's adapter passes them)
        )
        if bolt_request.body != payload:
            bolt_request.body = payload
            bolt_request.context = build_async_context(AsyncBoltContext(), payload)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
        raise Rejected(MALFORMED, f"Bolt cannot read it ({type(error).__name__})") from None
    return bolt_request
