"""Connecting to Redis so that a Redis restart heals by itself instead of failing forever."""

from __future__ import annotations

import logging

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)


# How long the work behind the ack (turns, runs, their records) waits through a Redis outage
# before it counts as a failure: a short outage looks like a pause, not an error.
PATIENT_SECONDS = 30.0
# Retries of the quick client that answers Slack, which needs an answer within 3 s.
QUICK_RETRIES = 3
BACKOFF_CAP_SECONDS = 1.0
# Connections one client keeps to Redis at most, and how long a command waits for one.
MAX_CONNECTIONS = 200
POOL_WAIT_SECONDS = 2.0


def connect(url: str, *, patience_seconds: float = 0.0) -> Redis:
    """A client that retries connection errors (a stale pooled connection after a restart).

    redis-py retries nothing by default; without this, the first command after Redis comes
    back fails. With `patience_seconds`, a command keeps retrying (once a second at most)
    for about that long while Redis is away, then raises.
    """
    retries = QUICK_RETRIES + int(patience_seconds / BACKOFF_CAP_SECONDS)
    # Hundreds of turns share the pool: a command waits for a free connection (bounded)
    # instead of failing with "Too many connections", redis-py's default at 100.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=max(POOL_WAIT_SECONDS, patience_seconds),
        decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=BACKOFF_CAP_SECONDS, base=0.05), retries=retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=15,
        socket_connect_timeout=5,
        socket_timeout=10,
    )
    return Redis.from_pool(pool)


async def is_reachable(redis: Redis) -> bool:
    """True when Redis answers PING now."""
    try:
        return bool(await redis.ping())
    except Exception as error:  # any failure means "not reachable", which is what we report
        log.warning("redis ping failed: %s", type(error).__name__)
        return False
