"""Each check of `python -m bot doctor`, healthy and broken, against the stand-ins and a real
redis-server; nothing a check does leaves anything behind at the model server."""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import openai
import pytest

from bot.doctor.checks import (
    check_redis,
    check_settings,
    check_slack,
    redis_version,
)
from bot.doctor.model_server import (
    _shutdown_field,
    check_backend_api,
    check_model,
    shutdown_date,
)
from bot.doctor.results import CheckResult, Outcome, bounded
from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.settings import BackendKind, Settings
from bot.slack.scopes import REQUIRED_BOT_SCOPES
from tests.conftest import RedisServer, free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TODAY = datetime.now(UTC).date()


def in_days(days: int) -> str:
    return (TODAY + timedelta(days=days)).isoformat()


@pytest.fixture
async def model_server() -> AsyncIterator[OpenAIStandIn]:
    server = OpenAIStandIn()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(model_server: OpenAIStandIn) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=model_server.base_url, api_key="sk", max_retries=0)
    yield sdk
    await sdk.close()


def settings_for(model_server: OpenAIStandIn, **changes: object) -> Settings:
    base = Settings(openai_api_key="sk", openai_base_url=model_server.base_url)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def nothing_left_at(server: OpenAIStandIn) -> bool:
    return not (server.conversations or server.assistants or server.response_jobs)


# ---- settings ----------------------------------------------------------------------------


def test_valid_settings_pass_and_say_what_runs(tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "OPENAI_API_KEY": "sk"}
    result, settings = check_settings(lambda: Settings.load(env, env_file=tmp_path / "none"))
    assert result.passed and settings is not None
    assert "Socket Mode" in result.detail and "TUTOR_BACKEND=responses" in result.detail


def test_malformed_settings_fail_with_every_problem_on_one_line(tmp_path: Path) -> None:
    env = {"PORT": "x", "TUTOR_BACKEND": "bard"}
    result, settings = check_settings(lambda: Settings.load(env, env_file=tmp_path / "none"))
    assert result.outcome is Outcome.FAILED and settings is None
    assert "PORT" in result.detail and "TUTOR_BACKEND" in result.detail
    assert "\n" not in result.detail


def test_missing_credentials_for_the_mode_and_the_backend_fail(tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1"}  # HTTP mode without a signing secret; no OpenAI key
    result, settings = check_settings(lambda: Settings.load(env, env_file=tmp_path / "none"))
    assert result.outcome is Outcome.FAILED and settings is not None
    assert "SLACK_SIGNING_SECRET" in result.detail and "OPENAI_API_KEY" in result.detail


# ---- Redis -------------------------------------------------------------------------------


async def test_a_reachable_redis_passes_with_its_version(redis_server: RedisServer) -> None:
    result = await check_redis(Settings(redis_url=redis_server.url))
    assert result.passed, result.detail
    assert f"127.0.0.1:{redis_server.port}" in result.detail and "Redis 7" in result.detail


async def test_an_unreachable_redis_fails_without_showing_its_password() -> None:
    url = f"redis://:secret-pw@127.0.0.1:{free_port()}/0"
    result = await check_redis(Settings(redis_url=url))
    assert result.outcome is Outcome.FAILED
    assert "cannot reach" in result.detail and "REDIS_URL" in result.detail
    assert "secret-pw" not in result.detail


def test_redis_versions_before_6_2_are_too_old() -> None:
    assert redis_version("7.0.15") == (7, 0, 15) and redis_version("6.2") == (6, 2)
    assert redis_version("6.0.16") < (6, 2) <= redis_version("6.2.0")  # type: ignore[operator]
    assert redis_version("") is None and redis_version("x.y") is None


def fake_redis_server(folder: Path, version: str) -> None:
    script = folder / "redis-server"
    script.write_text(f"#!/bin/sh\necho 'Redis server v={version} sha=0 malloc=libc bits=64'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


async def test_without_redis_url_a_recent_redis_server_binary_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_redis_server(tmp_path, "7.2.4")
    monkeypatch.setenv("PATH", str(tmp_path))
    result = await check_redis(Settings(data_dir=tmp_path / "data"))
    assert result.passed, result.detail
    assert "REDIS_URL is unset" in result.detail and "7.2.4" in result.detail


async def test_without_redis_url_an_old_or_missing_redis_server_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_redis_server(tmp_path, "6.0.16")
    monkeypatch.setenv("PATH", str(tmp_path))
    old = await check_redis(Settings(data_dir=tmp_path / "data"))
    assert old.outcome is Outcome.FAILED and "6.0.16" in old.detail and "6.2" in old.detail
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    missing = await check_redis(Settings(data_dir=tmp_path / "data"))
    assert missing.outcome is Outcome.FAILED and "No redis-server" in missing.detail
    assert os.environ["PATH"].endswith("nothing-here")


# ---- Slack -------------------------------------------------------------------------------


async def test_a_token_with_every_scope_passes(slack: SlackStandIn) -> None:
    result = await check_slack(Settings(slack_bot_token="xoxb-ok", slack_api_url=slack.base_url))
    assert result.passed, result.detail
    assert "@tutor" in result.detail and "T1" in result.detail
    assert [call.method for call in slack.calls] == ["auth.test"]


async def test_a_refused_token_fails(slack: SlackStandIn) -> None:
    result = await check_slack(Settings(slack_bot_token="xoxb-no", slack_api_url=slack.base_url))
    assert result.outcome is Outcome.FAILED
    assert "refused SLACK_BOT_TOKEN" in result.detail and "invalid_auth" in result.detail


async def test_a_token_without_a_scope_the_manifest_asks_for_fails(slack: SlackStandIn) -> None:
    slack.scopes = tuple(s for s in REQUIRED_BOT_SCOPES if s not in ("users:read", "im:write"))
    result = await check_slack(Settings(slack_bot_token="xoxb-ok", slack_api_url=slack.base_url))
    assert result.outcome is Outcome.FAILED
    assert "lacks the scopes im:write, users:read" in result.detail
    assert "reinstall" in result.detail


async def test_an_unreachable_slack_fails_and_no_token_is_skipped() -> None:
    url = f"http://127.0.0.1:{free_port()}/api/"
    result = await check_slack(Settings(slack_bot_token="xoxb-ok", slack_api_url=url))
    assert result.outcome is Outcome.FAILED and "cannot reach Slack" in result.detail
    assert (await check_slack(Settings())).outcome is Outcome.SKIPPED


# ---- the model ---------------------------------------------------------------------------


async def test_a_model_with_no_shutdown_announced_passes(
    model_server: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    result = await check_model(settings_for(model_server), client)
    assert result.passed and "gpt-5.4-mini" in result.detail and "no shutdown" in result.detail


async def test_a_model_shutting_down_within_30_days_fails_naming_model_and_date(
    model_server: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    model_server.models["gpt-5"] = in_days(10)
    result = await check_model(settings_for(model_server, tutor_model="gpt-5"), client)
    assert result.outcome is Outcome.FAILED
    assert f"gpt-5 (TUTOR_MODEL) shuts down on {in_days(10)}, in 10 days" in result.detail
    assert "such as gpt-5.4-mini" in result.detail, "the current default is suggested"
    assert result.shutdown is not None and result.shutdown.days_left == 10


async def test_a_shutdown_further_off_passes_and_a_past_one_fails(
    model_server: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    model_server.models["gpt-5"] = in_days(31)
    later = await check_model(settings_for(model_server, tutor_model="gpt-5"), client)
    assert later.passed and in_days(31) in later.detail
    model_server.models["gpt-5"] = in_days(-2)
    past = await check_model(settings_for(model_server, tutor_model="gpt-5"), client)
    assert past.outcome is Outcome.FAILED and f"shut down on {in_days(-2)}" in past.detail


async def test_no_model_is_suggested_when_the_default_itself_is_going(
    model_server: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    model_server.models["gpt-5.4-mini"] = in_days(5)
    result = await check_model(settings_for(model_server), client)
    assert result.outcome is Outcome.FAILED and "such as" not in result.detail
    assert "a current model" in result.detail


async def test_an_unknown_model_fails_naming_what_a_small_server_serves(
    model_server: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    model_server.models.clear()
    model_server.models.update({"qwen2.5-7b": None, "llama-3.1-8b": None})
    result = await check_model(settings_for(model_server), client)
    assert result.outcome is Outcome.FAILED
    assert "does not serve gpt-5.4-mini (TUTOR_MODEL)" in result.detail
    assert "qwen2.5-7b, llama-3.1-8b" in result.detail


async def test_a_server_without_the_models_api_fails_saying_so(
    model_server: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    model_server.leave_out("models")
    result = await check_model(settings_for(model_server), client)
    assert result.outcome is Outcome.FAILED and "OPENAI_BASE_URL" in result.detail


async def test_a_refused_key_fails(model_server: OpenAIStandIn) -> None:
    model_server.fail_next("GET", r"/models/", 401, code="invalid_api_key")
    sdk = openai.AsyncOpenAI(base_url=model_server.base_url, api_key="sk", max_retries=0)
    try:
        result = await check_model(settings_for(model_server), sdk)
    finally:
        await sdk.close()
    assert result.outcome is Outcome.FAILED and "refused OPENAI_API_KEY" in result.detail


def test_shutdown_date_is_read_as_documented_and_from_older_sdks() -> None:
    assert shutdown_date("2027-01-14") == date(2027, 1, 14)
    assert shutdown_date("2027-01-14T00:00:00Z") == date(2027, 1, 14)
    assert shutdown_date(1_800_000_000) == date(2027, 1, 15)
    assert shutdown_date(None) is None and shutdown_date("soon") is None
    # An SDK that does not type the field keeps it in model_extra.
    untyped = SimpleNamespace(model_extra={"shutdown_date": "2026-12-11"})
    assert _shutdown_field(untyped) == "2026-12-11"


# ---- the backend's API -------------------------------------------------------------------


@pytest.mark.parametrize("backend", list(BackendKind))
async def test_the_backend_s_api_is_served(
    model_server: OpenAIStandIn, client: openai.AsyncOpenAI, backend: BackendKind
) -> None:
    result = await check_backend_api(settings_for(model_server, backend=backend), client)
    assert result.passed, result.detail
    assert nothing_left_at(model_server), "a check creates nothing"


@pytest.mark.parametrize(
    ("backend", "left_out", "api", "instead"),
    [
        (BackendKind.RESPONSES, "conversations", "Conversations API", "TUTOR_BACKEND=chat"),
        (BackendKind.ASSISTANTS, "assistants", "Assistants API", "TUTOR_BACKEND=chat"),
        (BackendKind.CHAT, "chat", "Chat Completions API", "TUTOR_BACKEND=responses"),
    ],
)
async def test_a_missing_api_fails_naming_the_backend_to_use(
    model_server: OpenAIStandIn,
    client: openai.AsyncOpenAI,
    backend: BackendKind,
    left_out: str,
    api: str,
    instead: str,
) -> None:
    model_server.leave_out(left_out)
    result = await check_backend_api(settings_for(model_server, backend=backend), client)
    assert result.outcome is Outcome.FAILED
    assert f"does not serve the {api} that TUTOR_BACKEND={backend} needs" in result.detail
    assert f"set {instead}" in result.detail
    assert nothing_left_at(model_server)


async def test_a_server_serving_none_of_the_apis_points_at_the_base_url(
    model_server: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    model_server.leave_out("conversations", "assistants", "chat")
    result = await check_backend_api(settings_for(model_server), client)
    assert result.outcome is Outcome.FAILED and "check OPENAI_BASE_URL" in result.detail


async def test_an_unknown_model_does_not_read_as_a_missing_chat_api(
    model_server: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    model_server.fail_next("POST", r"/chat/completions$", 404, code="model_not_found")
    settings = settings_for(model_server, backend=BackendKind.CHAT, tutor_model="gpt-3")
    result = await check_backend_api(settings, client)
    assert result.passed, result.detail


async def test_an_unknown_assistant_id_fails(
    model_server: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    settings = settings_for(
        model_server, backend=BackendKind.ASSISTANTS, assistant_id="asst_missing"
    )
    result = await check_backend_api(settings, client)
    assert result.outcome is Outcome.FAILED and "knows no assistant asst_missing" in result.detail


# ---- bounds ------------------------------------------------------------------------------


async def test_a_hung_check_fails_in_time_and_a_broken_one_never_raises(
    model_server: OpenAIStandIn, client: openai.AsyncOpenAI
) -> None:
    model_server.hold("GET", r"/models/")
    hung = await bounded("model", check_model(settings_for(model_server), client), seconds=0.2)
    assert hung == CheckResult("model", Outcome.FAILED, "no answer within 0.2 s")

    async def broken() -> CheckResult:
        raise KeyError("surprise")

    result = await bounded("redis", broken())
    assert result.outcome is Outcome.FAILED and "KeyError" in result.detail
