"""The Slack Web API clients: one per process, retrying rate limits and Slack's own errors.

Status edits get a client of their own that does not wait out a 429: a rate-limited status
edit is dropped (the next status or the answer replaces it) and pauses the workspace's status
edits for `Retry-After` (see edit_budget.py), while answers keep retrying on the main client.
"""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

# Told of every failed attempt of a Slack call: (service, error code).
ApiErrorListener = Callable[[str, str], None]


def slack_error_code(error: SlackApiError) -> str:
    """The `error` field of Slack's answer ("?" when there was no answer to read)."""
    if error.response is None:
        return "?"
    return str(error.response.get("error", "unknown_error"))


# Connections to Slack one process keeps open at most (shared by every turn).
SLACK_CONNECTIONS = 100


def make_session() -> aiohttp.ClientSession:
    """One connection pool for every Slack call of the process.

    Without it slack_sdk opens a new session, and a new connection, for every call: under a
    thousand turns in flight that is a thousand handshakes. Close it when the bot stops.
    """
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=SLACK_CONNECTIONS))


class ErrorCounter(AsyncRetryHandler):
    """Retries nothing: tells `listener` of each failed attempt (Slack's `error` code, HTTP
    429 or 5xx, a connection error). slack_sdk shows every response to its retry handlers,
    in order, so it goes first."""

    def __init__(self, listener: ApiErrorListener) -> None:
        super().__init__(max_retry_count=0)
        self._listener = listener

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        code = None
        if error is not None:
            code = type(error).__name__
        elif response is not None:
            body = response.body if isinstance(response.body, dict) else {}
            if response.status_code == 429:
                code = "ratelimited"
            elif response.status_code >= 400:
                code = str(response.status_code)
            elif body.get("ok") is False:
                code = str(body.get("error") or "unknown_error")
        if code is not None:
            self._listener("slack", code)
        return False


# Longest wait for one Slack call (each retry included separately).
CALL_TIMEOUT_SECONDS = 15


def make_web_client(
    token: str | None,
    base_url: str,
    *,
    wait_out_rate_limits: bool = True,
    session: aiohttp.ClientSession | None = None,
    on_error: ApiErrorListener | None = None,
) -> AsyncWebClient:
    """A client that honours `Retry-After` on 429 (unless `wait_out_rate_limits` is False)
    and retries 5xx and dropped connections.

    slack_sdk retries only connection errors unless told otherwise. Without a token it lends
    only its settings: Bolt copies them into each request's client and puts the token from
    `authorize` there.
    """
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,
        timeout=CALL_TIMEOUT_SECONDS,
        retry_handlers=retry_handlers(wait_out_rate_limits=wait_out_rate_limits, on_error=on_error),
    )


def retry_handlers(
    *, wait_out_rate_limits: bool = True, on_error: ApiErrorListener | None = None
) -> list[AsyncRetryHandler]:
    """What every Slack client of the bot retries (see make_web_client)."""
    rate_limits = (
        [AsyncRateLimitErrorRetryHandler(max_retry_count=4)] if wait_out_rate_limits else []
    )
    return [
        *([ErrorCounter(on_error)] if on_error is not None else []),
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        *rate_limits,
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]
