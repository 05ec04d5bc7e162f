"""Connecting to Redis so that a Redis restart heals by itself instead of failing forever."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)


def connect(url: str) -> Redis:
    """A client that retries connection errors (a stale pooled connection after a restart).

    redis-py retries nothing by default; without this, the first command after Redis comes
    back fails.
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=15,
        socket_connect_timeout=5,
        socket_timeout=10,
    )


async def is_reachable(redis: Redis) -> bool:
    """True when Redis answers PING now."""
    try:
        return bool(await redis.ping())
    except Exception as error:  # any failure means "not reachable", which is what we report
        log.warning("redis ping failed: %s", type(error).__name__)
        return False
