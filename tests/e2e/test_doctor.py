"""`python -m bot doctor` against the stand-ins and a real redis-server: a healthy setup passes
with exit 0, each broken piece fails on its own line with exit 1; at start the bot logs the
same failures as warnings and tells the admins, once a day, of a model about to shut down."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.__main__ import build_parser
from bot.app import TutorBot, serve
from bot.doctor.report import doctor
from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.settings import BackendKind, Settings
from bot.slack.scopes import REQUIRED_BOT_SCOPES
from bot.storage.connection import connect
from bot.storage.keys import Keys
from tests.conftest import RedisServer, free_port
from tests.e2e.conftest import BOT_TOKEN, SIGNING_SECRET, bot_settings
from tests.e2e.processes import REPO

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TODAY = datetime.now(UTC).date()
IN_10_DAYS = (TODAY + timedelta(days=10)).isoformat()
CHECKS = ["settings", "redis", "slack", "model", "backend API"]


def doctor_env(
    slack: SlackStandIn, openai: OpenAIStandIn, redis_url: str, **more: str
) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.base_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": openai.base_url,
        "REDIS_URL": redis_url,
        **more,
    }


async def run_doctor(env: dict[str, str], tmp_path: Path) -> tuple[int, dict[str, str]]:
    """The doctor in this process (its main function, minus asyncio.run): exit code, lines."""
    out = io.StringIO()
    code = await doctor(lambda: Settings.load(env, env_file=tmp_path / "no.env"), out)
    by_check = {
        line.split(None, 1)[1].split(": ", 1)[0]: line for line in out.getvalue().splitlines()
    }
    return code, by_check


def test_help_lists_doctor(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "doctor" in capsys.readouterr().out


async def test_python_m_bot_doctor_passes_on_a_healthy_setup(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn], redis_server: RedisServer, tmp_path: Path
) -> None:
    slack, openai = stand_ins
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env = {**keep, "PYTHONPATH": str(REPO), **doctor_env(slack, openai, redis_server.url)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "doctor", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    lines = output.decode().splitlines()
    assert process.returncode == 0, "\n".join(lines)
    assert [line.split()[0] for line in lines] == ["ok"] * 5, lines
    assert [line.split(None, 1)[1].split(":")[0] for line in lines] == CHECKS
    assert not any(BOT_TOKEN in line or "sk-test" in line for line in lines), "no secrets"
    assert nothing_left_at(openai)


def nothing_left_at(server: OpenAIStandIn) -> bool:
    return not (server.conversations or server.assistants or server.response_jobs)


def no_redis(slack: SlackStandIn, openai: OpenAIStandIn) -> dict[str, str]:
    return {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}


def bad_slack_token(slack: SlackStandIn, openai: OpenAIStandIn) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": "xoxb-someone-else"}


def missing_scope(slack: SlackStandIn, openai: OpenAIStandIn) -> dict[str, str]:
    slack.scopes = tuple(scope for scope in REQUIRED_BOT_SCOPES if scope != "commands")
    return {}


def unknown_model(slack: SlackStandIn, openai: OpenAIStandIn) -> dict[str, str]:
    return {"TUTOR_MODEL": "gpt-3"}


def model_shutting_down(slack: SlackStandIn, openai: OpenAIStandIn) -> dict[str, str]:
    openai.models["gpt-5"] = IN_10_DAYS
    return {"TUTOR_MODEL": "gpt-5"}


def no_conversations_api(slack: SlackStandIn, openai: OpenAIStandIn) -> dict[str, str]:
    openai.leave_out("conversations")
    return {}


@pytest.mark.parametrize(
    ("break_it", "line", "says"),
    [
        (no_redis, "redis", "cannot reach Redis"),
        (bad_slack_token, "slack", "refused SLACK_BOT_TOKEN"),
        (missing_scope, "slack", "lacks the scopes commands"),
        (unknown_model, "model", "does not serve gpt-3 (TUTOR_MODEL)"),
        (model_shutting_down, "model", f"gpt-5 (TUTOR_MODEL) shuts down on {IN_10_DAYS}"),
        (no_conversations_api, "backend API", "set TUTOR_BACKEND=chat"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
async def test_each_broken_piece_fails_on_its_line(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn],
    redis_server: RedisServer,
    tmp_path: Path,
    break_it: Callable[[SlackStandIn, OpenAIStandIn], dict[str, str]],
    line: str,
    says: str,
) -> None:
    slack, openai = stand_ins
    env = doctor_env(slack, openai, redis_server.url)
    code, lines = await run_doctor({**env, **break_it(slack, openai)}, tmp_path)
    assert code == 1
    assert lines[line].startswith(f"FAILED  {line}: ") and says in lines[line], lines[line]
    others = [text for name, text in lines.items() if name != line]
    assert all(text.startswith("ok ") for text in others), "\n".join(others)
    assert nothing_left_at(openai)


async def test_settings_that_do_not_load_fail_and_nothing_else_is_checked(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn], redis_server: RedisServer, tmp_path: Path
) -> None:
    slack, openai = stand_ins
    env = {**doctor_env(slack, openai, redis_server.url), "TUTOR_BACKEND": "bard"}
    code, lines = await run_doctor(env, tmp_path)
    assert code == 1 and list(lines) == CHECKS
    assert lines["settings"].startswith("FAILED  settings: TUTOR_BACKEND='bard'")
    assert all(lines[name].startswith("skipped ") for name in CHECKS[1:])
    assert openai.requests == [] and slack.calls == []


# ---- at start ----------------------------------------------------------------------------


def shutdown_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING
        and "gpt-5 (TUTOR_MODEL) shuts down on " + IN_10_DAYS in record.getMessage()
    ]


async def test_at_start_a_shutting_down_model_is_a_warning_and_one_dm_to_each_admin(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn],
    redis_server: RedisServer,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack, openai = stand_ins
    openai.models["gpt-5"] = IN_10_DAYS
    slack.add_user("UADMIN", is_admin=True)
    slack.add_user("UOWNER", is_owner=True)
    slack.add_user("UPERSON")
    slack.add_user("UAPP", is_admin=True, is_bot=True)
    slack.add_user("UFORMER", is_owner=True, deleted=True)
    settings = dataclasses.replace(
        bot_settings(slack.base_url, openai.base_url, redis_server.url, redis_prefix,
                     BackendKind.RESPONSES),
        tutor_model="gpt-5",
        port=0,
    )  # fmt: skip

    def dms() -> list[str]:
        return [call.args["channel"] for call in slack.calls_to("chat.postMessage")]

    # The first process, as `python -m bot` runs it: tells both admins, in their DMs.
    stop = asyncio.Event()
    first = asyncio.create_task(serve(settings, stop))
    try:
        await slack.wait_for(lambda: len(dms()) == 2)
    finally:
        stop.set()
        await first
    assert sorted(dms()) == ["DADMIN", "DOWNER"]
    text = slack.channel_top_level("DADMIN")[0].text
    assert f"gpt-5 (TUTOR_MODEL) shuts down on {IN_10_DAYS}, in 10 days" in text
    assert "gpt-5.4-mini" in text
    assert len(shutdown_warnings(caplog)) == 1, "the start's check is a warning"

    # A second process the same day: the same warning, no second DM.
    bot = await TutorBot.create(settings)
    try:
        checks = bot.check_in_background()
        await asyncio.wait_for(checks.first_round.wait(), timeout=10)
    finally:
        await bot.stop()
    assert len(shutdown_warnings(caplog)) == 2
    assert sorted(dms()) == ["DADMIN", "DOWNER"], "told once a day, not once a process"
    redis = connect(redis_server.url)
    try:
        key = Keys(redis_prefix).model_shutdown_notice("T1", "gpt-5", TODAY.isoformat())
        assert await redis.ttl(key) > 24 * 60 * 60
    finally:
        await redis.aclose()
