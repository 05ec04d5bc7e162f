"""`connect` against real deployments other than one plain Redis: TLS with a self-signed
certificate (as Heroku Redis has), and Sentinel."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.doctor.checks import check_redis
from bot.settings import Settings
from bot.storage.connection import connect
from tests.conftest import RedisServer, free_port

START_SECONDS = 10.0


def _until_ready(client: SyncRedis, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if client.ping():
                return
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
        time.sleep(0.02)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A redis-server that speaks only TLS, with a self-signed certificate; its port."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    folder = tmp_path_factory.mktemp("tls-redis")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=redis.example"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _until_ready(SyncRedis(port=port, ssl=True, ssl_cert_reqs="none"), process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_rediss_with_a_self_signed_certificate_needs_verify_off(tls_redis: int) -> None:
    url = f"rediss://127.0.0.1:{tls_redis}/0"
    unchecked = connect(url, tls_verify=False)
    checked = connect(url)  # the certificate is nobody's: refused
    try:
        assert await unchecked.set("tls-probe", "1") and await unchecked.get("tls-probe") == "1"
        with pytest.raises(RedisConnectionError):
            await checked.ping()
    finally:
        await unchecked.aclose()
        await checked.aclose()


@pytest.fixture
def sentinel(redis_server: RedisServer, tmp_path: Path) -> Iterator[int]:
    """A Sentinel watching the session's redis-server as service `tutor`; its port."""
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor tutor 127.0.0.1 {redis_server.port} 1\n"
    )
    process = subprocess.Popen(
        ["redis-server", str(config), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _until_ready(SyncRedis(port=port), process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_sentinel_url_reaches_the_services_master(
    sentinel: int, redis_server: RedisServer, redis_prefix: str
) -> None:
    client = connect(f"redis+sentinel://127.0.0.1:{sentinel}/tutor/0", patience_seconds=2)
    try:
        await client.set(f"{redis_prefix}probe", "through the sentinel")
    finally:
        await client.aclose()
    direct = SyncRedis(port=redis_server.port, decode_responses=True)
    assert direct.get(f"{redis_prefix}probe") == "through the sentinel"


async def test_the_doctor_reaches_redis_as_the_bot_does(
    tls_redis: int, sentinel: int, redis_server: RedisServer
) -> None:
    tls = await check_redis(
        Settings(redis_url=f"rediss://127.0.0.1:{tls_redis}/0", redis_tls_verify=False)
    )
    assert tls.passed, tls.detail
    through_sentinel = await check_redis(
        Settings(redis_url=f"redis+sentinel://127.0.0.1:{sentinel}/tutor")
    )
    assert through_sentinel.passed, through_sentinel.detail
    assert f"service tutor (sentinels 127.0.0.1:{sentinel})" in through_sentinel.detail
