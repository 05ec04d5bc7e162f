"""Running the bot as a real process (`python -m bot`), as platforms do, for kill tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp

from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from tests.e2e.conftest import BOT_TOKEN, SIGNING_SECRET

REPO = Path(__file__).resolve().parents[2]


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


async def wait_healthy(port: int, process: asyncio.subprocess.Process, timeout: float = 60) -> None:
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


async def stop_bot(process: asyncio.subprocess.Process, signum: int = signal.SIGTERM) -> str:
    """Send `signum` (SIGTERM: a platform's stop; SIGKILL: a crash); return the output."""
    if process.returncode is None:
        process.send_signal(signum)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return output.decode()
