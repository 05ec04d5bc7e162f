"""`python -m bot` as a real process: the command people and platforms actually run."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.local.slack_events import SlackEventSender
from tests.conftest import RedisServer, free_port
from tests.e2e.conftest import BOT_TOKEN, SIGNING_SECRET

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def stand_ins() -> AsyncIterator[tuple[SlackStandIn, OpenAIStandIn]]:
    slack, openai = SlackStandIn(token=BOT_TOKEN), OpenAIStandIn()
    await slack.start()
    await openai.start()
    yield slack, openai
    await slack.stop()
    await openai.stop()


def bot_environment(slack: SlackStandIn, openai: OpenAIStandIn, port: int) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    return {
        **keep,
        "PYTHONPATH": str(REPO),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.base_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": openai.base_url,
        "PORT": str(port),
        "TUTOR_POLL_INTERVAL": "0.05",
    }


async def wait_healthy(port: int, process: asyncio.subprocess.Process, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise AssertionError(f"bot exited with {process.returncode}")
            try:
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("bot did not become healthy")


async def run_bot(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


async def stop_bot(process: asyncio.subprocess.Process) -> str:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    return output.decode()


async def test_the_bot_process_answers_and_stops_cleanly_on_sigterm(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn], redis_server: RedisServer, tmp_path: Path
) -> None:
    slack, openai = stand_ins
    port = free_port()
    env = {**bot_environment(slack, openai, port), "REDIS_URL": redis_server.url,
           "TUTOR_REDIS_PREFIX": f"proc-{port}:"}  # fmt: skip
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
    assert len(text.strip().splitlines()) <= 3
