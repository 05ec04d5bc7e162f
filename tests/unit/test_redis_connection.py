"""REDIS_URL's kinds: one Redis (TLS with or without checking its certificate), Sentinel."""

from __future__ import annotations

import ssl

import pytest
from redis.asyncio import Redis
from redis.asyncio.sentinel import SentinelConnectionPool

from bot.settings import ConfigError, Settings
from bot.storage.connection import SentinelUrl, connect, parse_sentinel_url


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_db() -> None:
    assert parse_sentinel_url("redis+sentinel://:s3cret@h1:26380,h2,[::1]:5/mymaster/2") == (
        SentinelUrl(
            sentinels=[("h1", 26380), ("h2", 26379), ("::1", 5)],
            service="mymaster",
            db=2,
            password="s3cret",
        )
    )
    parsed = parse_sentinel_url("rediss+sentinel://user:p%40ss@h1:1/svc")
    assert (parsed.username, parsed.password, parsed.tls, parsed.db) == ("user", "p@ss", True, 0)


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h1:26379",  # no service
        "redis+sentinel://h1:26379/svc/x",  # db not a number
        "redis+sentinel:///svc",  # no sentinel
        "redis+sentinel://h1:port/svc",
    ],
)
def test_a_wrong_sentinel_url_is_refused_at_start(url: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        Settings.load({"REDIS_URL": url}, env_file=None)


def test_the_settings_take_sentinel_cluster_and_tls_choices() -> None:
    settings = Settings.load(
        {
            "REDIS_URL": "redis+sentinel://h1:26379/svc",
            "TUTOR_REDIS_CLUSTER": "off",
            "REDIS_TLS_VERIFY": "off",
            "TUTOR_REDIS_SHARDS": "16",
        },
        env_file=None,
    )
    assert (settings.redis_tls_verify, settings.redis_cluster, settings.redis_shards) == (
        False,
        False,
        16,
    )


async def test_a_sentinel_url_connects_through_the_sentinels() -> None:
    client = connect("redis+sentinel://:pw@h1:26379,h2:26380/svc/3", patience_seconds=5)
    try:
        pool = client.connection_pool
        assert isinstance(pool, SentinelConnectionPool)
        assert pool.service_name == "svc"
        assert [
            (s.connection_pool.connection_kwargs["host"]) for s in pool.sentinel_manager.sentinels
        ] == ["h1", "h2"]
        assert pool.connection_kwargs["db"] == 3 and pool.connection_kwargs["password"] == "pw"
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("verify", "required"), [(True, ssl.CERT_REQUIRED), (False, ssl.CERT_NONE)]
)
async def test_rediss_checks_the_certificate_unless_told_not_to(
    verify: bool, required: ssl.VerifyMode
) -> None:
    client: Redis = connect("rediss://:pw@example.invalid:6380/0", tls_verify=verify)
    try:
        connection = client.connection_pool.make_connection()
        assert connection.cert_reqs == required
        assert connection.check_hostname is verify
    finally:
        await client.aclose()
