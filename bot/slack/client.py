"""The Slack Web API client: one per process, retrying rate limits and Slack's own errors."""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient


def make_web_client(token: str | None, base_url: str) -> AsyncWebClient:
    """A client that honours `Retry-After` on 429 and retries 5xx and dropped connections.

    slack_sdk retries only connection errors unless told otherwise. Without a token it lends
    only its settings: Bolt copies them into each request's client and puts the token from
    `authorize` there.
    """
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=4),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
