"""The Slack Web API clients: one per process, retrying rate limits and Slack's own errors.

Status edits get a client of their own that does not wait out a 429: a rate-limited status
edit is dropped (the next status or the answer replaces it) and pauses the workspace's status
edits for `Retry-After` (see edit_budget.py), while answers keep retrying on the main client.
"""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient


def make_web_client(
    token: str | None, base_url: str, *, wait_out_rate_limits: bool = True
) -> AsyncWebClient:
    """A client that honours `Retry-After` on 429 (unless `wait_out_rate_limits` is False)
    and retries 5xx and dropped connections.

    slack_sdk retries only connection errors unless told otherwise. Without a token it lends
    only its settings: Bolt copies them into each request's client and puts the token from
    `authorize` there.
    """
    rate_limits = (
        [AsyncRateLimitErrorRetryHandler(max_retry_count=4)] if wait_out_rate_limits else []
    )
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=15,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            *rate_limits,
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )
