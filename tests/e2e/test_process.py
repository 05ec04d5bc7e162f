"""`python -m bot` as a real process: the command people and platforms actually run."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.local.slack_events import SlackEventSender
from tests.conftest import RedisServer, free_port
from tests.e2e.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.e2e.processes import REPO, bot_environment, run_bot, stop_bot, wait_healthy


async def test_the_bot_process_answers_and_stops_cleanly_on_sigterm(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn], redis_server: RedisServer, tmp_path: Path
) -> None:
    slack, openai = stand_ins
    port = free_port()
    env = {**bot_environment(slack, openai, port), "REDIS_URL": redis_server.url,
           "TUTOR_REDIS_PREFIX": f"proc-{port}:", "LOG_FORMAT": "json"}  # fmt: skip
    process = await run_bot(env, tmp_path)
    try:
        await wait_healthy(port, process)
        events = SlackEventSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
        _, _, ts = await events.mention("C1", "U1", "<@UBOT> Who was Hammurabi?")
        await events.close()
        await slack.wait_for(
            lambda: any(
                slack.visible_text("C1", m.ts) == "Answer 1: Who was Hammurabi?"
                for m in slack.thread("C1", ts)
            ),
            timeout=20,
        )
    finally:
        output = await stop_bot(process)
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert BOT_TOKEN not in output and SIGNING_SECRET not in output
    assert "Who was Hammurabi" not in output, "message text must not reach the INFO log"
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    answered = [line for line in lines if line["message"].startswith("turn answered")]
    assert len(answered) == 1, output
    assert {"team", "channel", "thread", "turn", "run"} <= answered[0].keys()
    assert answered[0]["channel"] == "C1" and answered[0]["thread"] == ts


async def test_without_redis_url_the_bot_runs_its_own_redis_under_data(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn], tmp_path: Path
) -> None:
    slack, openai = stand_ins
    port = free_port()
    process = await run_bot(bot_environment(slack, openai, port), tmp_path)
    try:
        await wait_healthy(port, process)
        assert (tmp_path / ".data").is_dir()
    finally:
        output = await stop_bot(process)
    assert process.returncode == 0, output
    assert "private redis-server" in output
    assert not (tmp_path / ".data" / "redis.sock").exists(), "the private redis was stopped"


async def test_without_slack_credentials_the_bot_explains_and_exits(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)}
    process = await run_bot(env, tmp_path)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    text = output.decode()
    assert process.returncode != 0
    assert "SLACK_BOT_TOKEN" in text and "Traceback" not in text
    assert "python -m bot local" in text and "make run" in text, "says how to try it locally"
    assert len(text.strip().splitlines()) <= 3


async def test_no_token_or_secret_reaches_the_log_even_at_debug(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn], redis_server: RedisServer, tmp_path: Path
) -> None:
    """The SDKs log requests and headers at DEBUG: the Slack token, the signing secret and
    the API key must not appear in any line, whatever the bot did (answered, a command,
    refused a question, failed a run)."""
    slack, openai = stand_ins
    port = free_port()
    env = {**bot_environment(slack, openai, port), "REDIS_URL": redis_server.url,
           "TUTOR_REDIS_PREFIX": f"proc-{port}:", "LOG_LEVEL": "DEBUG",
           "TUTOR_MAX_QUESTION_CHARS": "50"}  # fmt: skip
    secrets = {env["SLACK_BOT_TOKEN"], env["SLACK_SIGNING_SECRET"], env["OPENAI_API_KEY"]}
    process = await run_bot(env, tmp_path)
    try:
        await wait_healthy(port, process)
        events = SlackEventSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
        _, _, answered = await events.mention("C1", "U1", "<@UBOT> Who was Sargon?")
        _, _, failed = await events.mention("C1", "U1", "<@UBOT> [fail] And Naram-Sin?")
        await events.mention("C1", "U1", "<@UBOT> " + "why " * 20)
        await events.slash_command(
            "/tutor", "Who was Enheduanna?", channel_id="C1", user_id="U1",
            response_url=slack.new_response_url(),
        )  # fmt: skip
        await events.close()
        await slack.wait_for(lambda: len(slack.ephemerals) == 1, timeout=20)
        for ts in (answered, failed):
            await slack.wait_for(
                lambda ts=ts: any(
                    not slack.visible_text("C1", m.ts).startswith("_Thinking")
                    for m in slack.thread("C1", ts)
                ),
                timeout=20,
            )
    finally:
        output = await stop_bot(process)
    assert process.returncode == 0, output
    assert " DEBUG " in output, "the SDKs' debug lines are in"
    leaked = [line for line in output.splitlines() if any(s in line for s in secrets)]
    assert leaked == [], "\n".join(leaked[:5])
