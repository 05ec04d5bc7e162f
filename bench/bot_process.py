"""The bot as it is deployed: a `python -m bot` process in HTTP mode, configured only through
its environment, against the stand-ins and the benchmark's Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import aiohttp

from bench.redis_server import free_port
from bot.storage.managed_server import die_with_parent

REPO = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench"
OPENAI_KEY = "sk-bench"
HEALTHY_WITHIN_SECONDS = 30
STOP_WITHIN_SECONDS = 10
LOG_TAIL_LINES = 15


class BotProcess:
    """One bot process; `settings` are extra environment variables (TUTOR_STREAMING, ...);
    `role`: `web` or `worker` (`python -m bot <role>`), or None for both in one process."""

    def __init__(
        self,
        *,
        slack_url: str,
        openai_url: str,
        redis_url: str,
        workdir: Path,
        role: str | None = None,
        **settings: str,
    ) -> None:
        self.role = role
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / f"bot-{self.port}.log"
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        self.environment = {
            **{name: os.environ[name] for name in keep if name in os.environ},
            "PYTHONPATH": str(REPO),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack_url,
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": openai_url,
            "REDIS_URL": redis_url,
            "TUTOR_REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}:",
            "TUTOR_WORKER_NAME": f"bench-{self.port}",
            "TUTOR_SHUTDOWN_GRACE": "3",
            "PORT": str(self.port),
            "LOG_LEVEL": "WARNING",
            **settings,
        }
        self.process: asyncio.subprocess.Process | None = None

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        """Start it (in an empty folder, so no .env is read) and wait until it is healthy."""
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", *([self.role] if self.role else []),
                cwd=self.workdir, env=self.environment,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                # SIGKILL: a bot whose Redis and stand-ins died with the benchmark would take
                # its time over a SIGTERM; a benchmark's bot needs no grace.
                preexec_fn=die_with_parent(signal.SIGKILL),
            )  # fmt: skip
        await self._wait_healthy()

    async def _wait_healthy(self) -> None:
        deadline = time.monotonic() + HEALTHY_WITHIN_SECONDS
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.returncode is not None:
                    raise RuntimeError(f"the bot exited with {self.process.returncode}{self.log()}")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    url = f"http://127.0.0.1:{self.port}/healthz"
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the bot was not healthy within {HEALTHY_WITHIN_SECONDS} s{self.log()}")

    def memory_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of the process, in KB, from Linux's /proc."""
        found: dict[str, int] = {}
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0])
        except (OSError, ValueError):
            pass
        return found

    def log(self) -> str:
        """The last lines the bot wrote (warnings and errors only), for a failure message."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        except OSError:
            return ""
        return ("; its log ends:\n  " + "\n  ".join(lines)) if lines else ""

    def warnings(self) -> int:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return 0
        return sum(" WARNING " in line or " ERROR " in line for line in text.splitlines())

    async def stop(self, *, at_once: bool = False) -> None:
        """SIGTERM, then SIGKILL if it takes longer than STOP_WITHIN_SECONDS; `at_once`:
        SIGKILL straight away (the benchmark was interrupted: nothing to finish)."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        if at_once:
            process.kill()
        else:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_WITHIN_SECONDS)
        except TimeoutError:
            process.kill()
            await asyncio.wait_for(process.wait(), STOP_WITHIN_SECONDS)
