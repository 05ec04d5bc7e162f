"""Connecting to Redis so that a Redis restart heals by itself instead of failing forever.

Three kinds of deployment, one `connect`:
- one Redis (`redis://`, `rediss://` over TLS, `unix://`), the default;
- Redis Sentinel (`redis+sentinel://[:password@]host:port[,host:port…]/service[/db]`; also
  `rediss+sentinel://` for TLS): the client asks the sentinels for the service's master and
  asks again when it fails over;
- Redis Cluster (`cluster=True`, TUTOR_REDIS_CLUSTER): the URL names any one node; the
  client learns the others and follows slots as they move or fail over.

Managed Redis over TLS often has a self-signed certificate (Heroku Redis): `tls_verify=False`
(REDIS_TLS_VERIFY=off) still encrypts, without checking the certificate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
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

# What Redis may raise: on a cluster also errors outside RedisError (a slot nobody serves for
# a moment while a master fails over).
REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, RedisClusterException)

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelUrl:
    """What a `redis+sentinel://` URL says: where the sentinels are, which service, which db."""

    sentinels: list[tuple[str, int]]
    service: str
    db: int = 0
    password: str | None = None
    username: str | None = None
    tls: bool = False


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Read `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db]`.

    Raises ValueError for anything else (the settings check says so at start).
    """
    parts = urlsplit(url)
    if parts.scheme not in SENTINEL_SCHEMES:
        raise ValueError(f"must start with {' or '.join(s + '://' for s in SENTINEL_SCHEMES)}")
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    sentinels = [_host_port(host) for host in hosts.split(",") if host]
    if not sentinels:
        raise ValueError("must name at least one sentinel (host:port)")
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not 1 <= len(path) <= 2:
        raise ValueError("must end in /<service name> or /<service name>/<db>")
    if len(path) == 2 and not path[1].isdigit():
        raise ValueError(f"the database must be a number, not {path[1]!r}")
    return SentinelUrl(
        sentinels=sentinels,
        service=path[0],
        db=int(path[1]) if len(path) == 2 else 0,
        password=unquote(password) or None,
        username=unquote(username) or None,
        tls=parts.scheme == "rediss+sentinel",
    )


def _host_port(text: str) -> tuple[str, int]:
    if text.startswith("["):  # [ipv6]:port
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    if port and not port.isdigit():
        raise ValueError(f"the port of sentinel {text!r} must be a number")
    return host, int(port) if port else DEFAULT_SENTINEL_PORT


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0] in SENTINEL_SCHEMES


class FailoverSafeCluster(RedisCluster):
    """redis-py's cluster client, except that a connection torn down under a command while a
    node fails over (redis-py then trips over its closed writer: an AttributeError) counts as
    the connection error it is, so the command is tried again on the new topology instead of
    failing the turn."""

    async def _execute_command(self, target_node: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._execute_command(target_node, *args, **kwargs)
        except AttributeError as error:
            raise RedisConnectionError(f"connection lost during a failover ({error})") from error


def connect(
    url: str,
    *,
    patience_seconds: float = 0.0,
    cluster: bool = False,
    tls_verify: bool = True,
) -> Redis:
    """A client that retries connection errors (a stale pooled connection after a restart, a
    failover).

    redis-py retries nothing by default; without this, the first command after Redis comes
    back fails. With `patience_seconds`, a command keeps retrying (once a second at most)
    for about that long while Redis is away, then raises. `cluster`: the URL names a node of
    a Redis Cluster (the client is a RedisCluster, used like a Redis everywhere here).
    """
    retries = QUICK_RETRIES + int(patience_seconds / BACKOFF_CAP_SECONDS)
    common: dict[str, Any] = {
        "decode_responses": True,
        "retry": Retry(ExponentialBackoff(cap=BACKOFF_CAP_SECONDS, base=0.05), retries=retries),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "socket_connect_timeout": 5,
        "socket_timeout": 10,
    }
    if is_sentinel_url(url):
        return _sentinel_client(parse_sentinel_url(url), common, _unverified(tls_verify))
    if cluster:
        # RedisCluster is not a Redis subclass but answers the same commands.
        client: Any = FailoverSafeCluster.from_url(
            url, max_connections=MAX_CONNECTIONS, **common, **tls_options(url, tls_verify)
        )
        return client  # type: ignore[no-any-return]
    # Hundreds of turns share the pool: a command waits for a free connection (bounded)
    # instead of failing with "Too many connections", redis-py's default at 100.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=max(POOL_WAIT_SECONDS, patience_seconds),
        health_check_interval=15,
        **common,
        **tls_options(url, tls_verify),
    )
    return Redis.from_pool(pool)


def tls_options(url: str, verify: bool) -> dict[str, Any]:
    """What a `rediss://` client needs for REDIS_TLS_VERIFY=off: no certificate check."""
    return _unverified(verify) if url.startswith("rediss://") else {}


def _unverified(verify: bool) -> dict[str, Any]:
    return {} if verify else {"ssl_cert_reqs": "none", "ssl_check_hostname": False}


def _sentinel_client(parsed: SentinelUrl, common: dict[str, Any], tls: dict[str, Any]) -> Redis:
    """The master of the sentinel service: found through the sentinels, found again after a
    failover (the pool asks on each new connection; a retried command makes one)."""
    auth = {"username": parsed.username, "password": parsed.password}
    secure = {"ssl": True, **tls} if parsed.tls else {}
    sentinel = Sentinel(
        parsed.sentinels,
        sentinel_kwargs={**auth, **secure, "socket_connect_timeout": 5, "socket_timeout": 5},
        **auth,
        **secure,
    )
    return sentinel.master_for(
        parsed.service,
        db=parsed.db,
        max_connections=MAX_CONNECTIONS,
        health_check_interval=15,
        **common,
    )


def is_cluster(redis: Redis) -> bool:
    """True for a Redis Cluster client."""
    return isinstance(redis, RedisCluster)


async def is_reachable(redis: Redis) -> bool:
    """True when Redis answers PING now."""
    try:
        return bool(await redis.ping())
    except Exception as error:  # any failure means "not reachable", which is what we report
        log.warning("redis ping failed: %s", type(error).__name__)
        return False
