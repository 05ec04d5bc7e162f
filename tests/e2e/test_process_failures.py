"""The bot process when it cannot start or connect, or is killed: plain words, a prompt
stop on SIGTERM in every state, and no private redis-server left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from tests.conftest import RedisServer, free_port
from tests.e2e.processes import bot_environment, run_bot, stop_bot, wait_healthy

PROMPT_STOP_SECONDS = 5.0


class SilentServer:
    """Accepts connections and never answers: a Slack that hangs."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/api/"

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        self.connected.set()

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def silent_slack() -> AsyncIterator[SilentServer]:
    server = SilentServer()
    yield server
    await server.stop()


async def private_redis_pid(data_dir: Path) -> int:
    client = Redis(unix_socket_path=str(data_dir / "redis.sock"))
    try:
        return int((await client.info("server"))["process_id"])
    finally:
        await client.aclose()


def is_running(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        await asyncio.sleep(0.05)
    return not is_running(pid)


def kill_if_running(pid: int | None) -> None:
    """Tidy up after a failed test: no redis-server may outlive it."""
    if pid is not None and is_running(pid):
        os.kill(pid, signal.SIGKILL)


async def run_to_exit(env: dict[str, str], cwd: Path) -> str:
    """Run a bot that is expected to give up at start (exit code 2); return its output."""
    process = await run_bot(env, cwd)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode()
    assert process.returncode == 2, text
    return text


async def test_sigterm_while_socket_mode_connects_stops_at_once(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn], silent_slack: SilentServer, tmp_path: Path
) -> None:
    """Slack hangs on apps.connections.open; SIGTERM still ends the bot and its Redis."""
    slack, openai = stand_ins
    env = {
        **bot_environment(slack, openai, free_port()),
        "SLACK_API_URL": await silent_slack.start(),
        "SLACK_APP_TOKEN": "xapp-unanswered",
    }
    process = await run_bot(env, tmp_path)
    redis_pid = None
    try:
        await asyncio.wait_for(silent_slack.connected.wait(), timeout=20)
        redis_pid = await private_redis_pid(tmp_path / ".data")
        started = time.monotonic()
        output = await stop_bot(process, signal.SIGTERM)
        took = time.monotonic() - started
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        kill_if_running(redis_pid)
    assert took < PROMPT_STOP_SECONDS, f"took {took:.1f}s to stop:\n{output}"
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert redis_pid is not None and not is_running(redis_pid), "the private Redis was stopped"


async def test_a_refused_app_token_is_explained_in_plain_words(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn], redis_server: RedisServer, tmp_path: Path
) -> None:
    slack, openai = stand_ins
    env = {
        **bot_environment(slack, openai, free_port()),
        "REDIS_URL": redis_server.url,
        "SLACK_APP_TOKEN": "xapp-not-this-one",
    }
    text = await run_to_exit(env, tmp_path)
    assert "Traceback" not in text
    [line] = [line for line in text.splitlines() if line.startswith("tutor-bot:")]
    assert "Slack refused SLACK_APP_TOKEN (invalid_auth)" in line
    assert "xapp-not-this-one" not in text, "the token is never printed"


async def test_a_port_in_use_is_explained_in_plain_words(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn], redis_server: RedisServer, tmp_path: Path
) -> None:
    slack, openai = stand_ins
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**bot_environment(slack, openai, port), "REDIS_URL": redis_server.url}
        text = await run_to_exit(env, tmp_path)
    assert "Traceback" not in text
    assert f"tutor-bot: Port {port} (the PORT setting) is already in use" in text
    assert "set PORT to a free port" in text


async def test_a_killed_bot_takes_its_private_redis_along(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn], tmp_path: Path
) -> None:
    slack, openai = stand_ins
    port = free_port()
    process = await run_bot(bot_environment(slack, openai, port), tmp_path)
    redis_pid = None
    try:
        await wait_healthy(port, process)
        redis_pid = await private_redis_pid(tmp_path / ".data")
        await stop_bot(process, signal.SIGKILL)
        assert await wait_gone(redis_pid, timeout=10), "redis-server outlived the killed bot"
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        kill_if_running(redis_pid)
