"""`python -m bot local` as a real process: a terminal chat through the Slack event path."""

from __future__ import annotations

import asyncio
import codecs
import os
import signal
import sys
from pathlib import Path

from redis.asyncio import Redis

from tests.conftest import RedisServer
from tests.e2e.processes import REPO

QUESTION = "Who was Solon?"


class ChatProcess:
    """The local mode running as a process: type into its stdin, read its output."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())
        await self.process.stdin.drain()

    async def read_until(self, text: str, *, after: int = 0, timeout: float = 45) -> int:
        """Read until `text` appears past position `after`; return where it starts."""
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while (found := self.output.find(text, after)) < 0:
                chunk = await self.process.stdout.read(4096)
                if not chunk:
                    raise AssertionError(f"output ended before {text!r}:\n{self.output}")
                self.output += self._decoder.decode(chunk)
        return found

    async def finish(self, timeout: float = 60) -> str:
        """Wait for the process to exit; all of its output."""
        assert self.process.stdout is not None
        rest = await asyncio.wait_for(self.process.stdout.read(), timeout)
        await asyncio.wait_for(self.process.wait(), timeout)
        self.output += self._decoder.decode(rest, final=True)
        return self.output


async def start_chat(
    args: list[str], cwd: Path, env: dict[str, str], *, own_session: bool = False
) -> ChatProcess:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=own_session,
    )  # fmt: skip
    return ChatProcess(process)


def no_credentials_env(**extra: str) -> dict[str, str]:
    """No Slack and no OpenAI settings at all: only what Python and redis-server need."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    return {**keep, "PYTHONPATH": str(REPO), **extra}


async def test_local_mode_shows_the_placeholder_then_the_answer(
    redis_server: RedisServer, redis_prefix: str, redis: Redis, tmp_path: Path
) -> None:
    env = no_credentials_env(REDIS_URL=redis_server.url, TUTOR_REDIS_PREFIX=redis_prefix)
    chat = await start_chat(["local"], tmp_path, env)
    try:
        banner_end = await chat.read_until("Type a question")
        assert "stand-in" in chat.output and "not an AI" in chat.output
        await chat.type(QUESTION)
        placeholder = await chat.read_until("tutor: Thinking…", after=banner_end)
        answer = await chat.read_until(f"Answer 1: {QUESTION}", after=placeholder)
        assert answer > placeholder
        await chat.type("/quit")
        output = await chat.finish()
    finally:
        if chat.process.returncode is None:
            chat.process.kill()
    assert chat.process.returncode == 0, output
    assert "Traceback" not in output and "\x1b[" not in output, output
    assert output.count("tutor: ") == 1, "one message (the placeholder, edited), shown once"
    assert not await redis.keys(f"{redis_prefix}*"), "the session's keys are removed"


async def test_end_of_input_waits_for_the_last_answer_and_new_starts_over(
    redis_server: RedisServer, redis_prefix: str, tmp_path: Path
) -> None:
    env = no_credentials_env(REDIS_URL=redis_server.url, TUTOR_REDIS_PREFIX=redis_prefix)
    chat = await start_chat(["local"], tmp_path, env)
    assert chat.process.stdin is not None
    for line in ("Who was Draco?", "/new", "Who was Cleisthenes?"):
        await chat.type(line)
    chat.process.stdin.close()  # end of input: the chat ends after the answers
    output = await chat.finish()
    assert chat.process.returncode == 0, output
    answers = ["Answer 1: Who was Draco?", "fresh conversation", "Answer 1: Who was Cleisthenes?"]
    positions = [output.rfind(answer) for answer in answers]
    assert all(position >= 0 for position in positions), output
    assert positions == sorted(positions), "answered one line at a time, in order"


async def test_make_run_without_credentials_starts_local_mode(
    redis_server: RedisServer, redis_prefix: str, tmp_path: Path
) -> None:
    env = no_credentials_env(REDIS_URL=redis_server.url, TUTOR_REDIS_PREFIX=redis_prefix)
    chat = await start_chat(["serve", "--or-local"], tmp_path, env)
    try:
        await chat.read_until("Type a question")
        await chat.type("/quit")
        output = await chat.finish()
    finally:
        if chat.process.returncode is None:
            chat.process.kill()
    assert chat.process.returncode == 0, output
    first_line = output.splitlines()[0]
    assert "SLACK_BOT_TOKEN" in first_line and "local mode" in first_line
    assert "Traceback" not in output


async def test_ctrl_c_stops_everything_without_a_traceback(tmp_path: Path) -> None:
    """Without REDIS_URL: the private redis-server is stopped too (Ctrl-C signals the group)."""
    chat = await start_chat(["local"], tmp_path, no_credentials_env(), own_session=True)
    try:
        await chat.read_until("Type a question")
        await chat.type(QUESTION)
        await chat.read_until("tutor: Thinking…")
        os.killpg(chat.process.pid, signal.SIGINT)  # as a terminal's Ctrl-C does
        output = await chat.finish()
    finally:
        if chat.process.returncode is None:
            chat.process.kill()
    assert chat.process.returncode == 0, output
    assert "Traceback" not in output and "ERROR" not in output, output
    assert (tmp_path / ".data").is_dir()
    assert not (tmp_path / ".data" / "redis.sock").exists(), "the private redis was stopped"
