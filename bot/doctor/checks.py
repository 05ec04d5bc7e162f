"""The checks of `python -m bot doctor`: settings, Redis, the Slack token; and all of them
together with the model server's (model_server.py).

Each check returns a CheckResult and never raises: every network wait is bounded, and an
error of any kind becomes a failed line. The bot runs the same checks at start (at_start.py).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import openai
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, RedisError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.backends.factory import require_model_server
from bot.backends.openai_client import make_client
from bot.doctor.model_server import check_backend_api, check_model
from bot.doctor.results import (
    CHECK_SECONDS,
    CheckResult,
    bounded,
    failed,
    passed,
    reason,
    skipped,
)
from bot.settings import ConfigError, Settings
from bot.slack.client import slack_error_code
from bot.slack.scopes import REQUIRED_BOT_SCOPES, SCOPES_HEADER, granted_scopes, missing_scopes
from bot.slack.socket_mode import REFUSED_TOKEN_ERRORS
from bot.storage.connection import connect, is_sentinel_url, parse_sentinel_url, tls_options
from bot.storage.managed_server import ManagedRedis

# Streams with consumer groups and XAUTOCLAIM (turns/queue.py) arrived in Redis 6.2.
MIN_REDIS_VERSION = (6, 2)


async def run_checks(
    settings: Settings, *, redis_url: str | None = None, today: date | None = None
) -> list[CheckResult]:
    """Every check after settings, at once; `redis_url` overrides REDIS_URL (the bot's own
    private server, once started)."""
    client = _model_server_client(settings)
    try:
        return list(
            await asyncio.gather(
                bounded("redis", check_redis(settings, redis_url)),
                bounded("slack", check_slack(settings)),
                bounded("model", check_model(settings, client, today=today)),
                bounded("backend API", check_backend_api(settings, client)),
            )
        )
    finally:
        await client.close()


async def run_model_check(settings: Settings, *, today: date | None = None) -> CheckResult:
    """Only the model's check (a running bot watching its shutdown date)."""
    client = _model_server_client(settings)
    try:
        return await bounded("model", check_model(settings, client, today=today))
    finally:
        await client.close()


def _model_server_client(settings: Settings) -> openai.AsyncOpenAI:
    return make_client(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=CHECK_SECONDS / 2,
        max_retries=1,
    )


# ---- settings ----------------------------------------------------------------------------


def check_settings(load: Callable[[], Settings]) -> tuple[CheckResult, Settings | None]:
    """Settings load and validate; Slack's credentials fit the mode; a model server is named.

    Returns None for settings that do not load (nothing else can be checked then).
    """
    name = "settings"
    try:
        settings = load()
    except ConfigError as error:
        return failed(name, _one_line(str(error))), None
    problems = []
    for require in (settings.require_slack, lambda: require_model_server(settings)):
        try:
            require()
        except ConfigError as error:
            problems.append(_one_line(str(error)))
    if problems:
        return failed(name, " ".join(problems)), settings
    mode = "Socket Mode" if settings.socket_mode else f"HTTP mode on port {settings.port}"
    return passed(
        name,
        f"valid; {mode}, TUTOR_BACKEND={settings.backend.value}, "
        f"TUTOR_MODEL={settings.tutor_model}",
    ), settings


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


# ---- Redis -------------------------------------------------------------------------------


async def check_redis(settings: Settings, url: str | None = None) -> CheckResult:
    """Redis answers and is recent enough; without REDIS_URL, a redis-server can be started."""
    url = url or settings.redis_url
    if url is None:
        return await check_redis_binary(settings.data_dir)
    name, where = "redis", _redis_where(url)
    if is_sentinel_url(url):  # the service's master, as the bot finds it
        client = connect(url, tls_verify=settings.redis_tls_verify)
    else:  # on a cluster: the node REDIS_URL names
        client = Redis.from_url(
            url,
            socket_connect_timeout=CHECK_SECONDS / 2,
            socket_timeout=CHECK_SECONDS / 2,
            **tls_options(url, settings.redis_tls_verify),
        )
    try:
        info = await client.info("server")
    except AuthenticationError:
        return failed(name, f"{where} refused the password in REDIS_URL")
    except (RedisError, OSError) as error:
        return failed(name, f"cannot reach {where} ({reason(error)}): is REDIS_URL right?")
    finally:
        await client.aclose()
    return _version_verdict(name, f"{where} answers", str(info.get("redis_version", "")))


async def check_redis_binary(data_dir: Path) -> CheckResult:
    """REDIS_URL unset: the bot will start its own redis-server; is there one, recent enough,
    and can it keep its data? (Nothing is started here.)"""
    name = "redis"
    try:
        binary = ManagedRedis(data_dir).preflight()
    except ConfigError as error:
        return failed(name, f"REDIS_URL is unset and the private Redis cannot run: {error}")
    process = await asyncio.create_subprocess_exec(
        binary,
        "--version",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    found = re.search(rb"v=(\d+\.\d+\.\d+)", output)
    version = found.group(1).decode() if found else ""
    said = f"REDIS_URL is unset: the bot starts {binary} with its data in {data_dir}"
    return _version_verdict(name, said, version)


def redis_version(text: str) -> tuple[int, ...] | None:
    """Parse a version such as 7.0.15 into (7, 0, 15); None when it is not one."""
    if not re.fullmatch(r"\d+(\.\d+)*", text):
        return None
    return tuple(int(part) for part in text.split("."))


def _version_verdict(name: str, said: str, version: str) -> CheckResult:
    parsed = redis_version(version)
    needed = ".".join(map(str, MIN_REDIS_VERSION))
    if parsed is None:
        return failed(name, f"{said}, but its version is unknown (the bot needs {needed}+)")
    if parsed < MIN_REDIS_VERSION:
        return failed(
            name,
            f"{said}, but it is Redis {version}: the bot needs {needed} or later "
            "(Streams with XAUTOCLAIM)",
        )
    return passed(name, f"{said}; Redis {version} (Streams with XAUTOCLAIM need {needed}+)")


def _redis_where(url: str) -> str:
    """The URL without its password (REDIS_URL is a secret)."""
    if is_sentinel_url(url):
        parsed = parse_sentinel_url(url)
        sentinels = ",".join(f"{host}:{port}" for host, port in parsed.sentinels)
        return f"Redis service {parsed.service} (sentinels {sentinels})"
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"Redis at unix://{parts.path}"
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"Redis at {parts.scheme}://{host}{port}{parts.path}"


# ---- Slack -------------------------------------------------------------------------------


async def check_slack(settings: Settings) -> CheckResult:
    """auth.test with the bot token, and the token has every scope manifest.yml asks for."""
    name = "slack"
    token = settings.slack_bot_token
    if not token:
        return skipped(name, "no SLACK_BOT_TOKEN to check")
    client = AsyncWebClient(token=token, base_url=settings.slack_api_url, timeout=CHECK_SECONDS)
    where = (
        "" if settings.slack_api_url == Settings.slack_api_url else f" at {settings.slack_api_url}"
    )
    try:
        response = await client.auth_test()
    except SlackApiError as error:
        code = slack_error_code(error)
        if code in REFUSED_TOKEN_ERRORS:
            return failed(
                name,
                f"Slack{where} refused SLACK_BOT_TOKEN in auth.test ({code}): use the Bot User "
                "OAuth Token (xoxb-…) of the installed app (OAuth & Permissions).",
            )
        return failed(name, f"auth.test{where} answered {code}")
    except (aiohttp.ClientError, OSError) as error:
        return failed(name, f"cannot reach Slack{where} ({reason(error)})")
    who = f"@{response.get('user')} in {response.get('team')} ({response.get('team_id')})"
    granted = granted_scopes(response.headers.get(SCOPES_HEADER))
    if granted is None:
        return failed(
            name,
            f"auth.test: the token is {who}, but Slack did not say which scopes it has "
            f"(no {SCOPES_HEADER} header): cannot check them",
        )
    lacking = missing_scopes(granted)
    if lacking:
        return failed(
            name,
            f"auth.test: the token is {who} but lacks the scopes {', '.join(lacking)} "
            "(manifest.yml asks for them): add them on the app's OAuth & Permissions page "
            "and reinstall the app.",
        )
    return passed(
        name,
        f"auth.test: the token is {who}; it has all {len(REQUIRED_BOT_SCOPES)} scopes "
        "manifest.yml asks for",
    )
