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
