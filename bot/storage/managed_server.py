"""A private redis-server that the bot starts when REDIS_URL is unset.

It lets `make run` work with nothing but Python and Debian's redis-server: data lives under
the data folder (append-only file, so a restart keeps the conversation map), the server
listens only on a Unix socket only this user can open, and it is stopped when the bot exits,
also when the bot is killed (on Linux the kernel sends it SIGTERM when the bot dies).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from bot.settings import ConfigError

log = logging.getLogger(__name__)

HOW_TO_GET_REDIS = (
    "No redis-server was found on PATH. Install one (Debian/Ubuntu: `apt-get install "
    "redis-server`; macOS: `brew install redis`) or set REDIS_URL to a Redis you run."
)
# A Unix socket path must fit in sockaddr_un (108 bytes on Linux).
MAX_SOCKET_PATH = 100
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A preexec_fn that has Linux send the child `signum` when this process dies, however.

    Without it a SIGKILLed bot leaves its private redis-server running. prctl is looked up
    here, before the fork, so the child only makes one system call before exec. Elsewhere
    (macOS) there is no such call: None, and the server is only stopped by a living bot.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the bot died before the request took effect
            os.kill(os.getpid(), signum)

    return preexec


def check_data_dir(data_dir: Path) -> None:
    """Create the data folder if needed and make sure files can be written in it.

    Raises ConfigError in plain words (a file in the way, no permission, a read-only disk).
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as error:
        if data_dir.is_file():
            problem = "it is a file, not a folder"
        elif isinstance(error, NotADirectoryError):
            problem = "a part of its path is a file"
        else:
            problem = (error.strerror or type(error).__name__).lower()
        raise ConfigError(
            f"TUTOR_DATA_DIR={data_dir} cannot hold the private Redis data: {problem}. "
            "Set TUTOR_DATA_DIR to a folder this user can write, or set REDIS_URL."
        ) from None


class ManagedRedis:
    """Starts and stops one redis-server process whose data is in `data_dir`."""

    def __init__(self, data_dir: Path, *, start_timeout: float = 10.0) -> None:
        self.data_dir = data_dir.resolve()
        self.start_timeout = start_timeout
        self._process: asyncio.subprocess.Process | None = None

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def preflight(self) -> str:
        """What `start` needs before it starts anything: the redis-server binary (its path is
        returned), a socket path that fits, a writable data folder. Raises ConfigError."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise ConfigError(HOW_TO_GET_REDIS)
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise ConfigError(
                f"The data folder path {self.data_dir} is too long for a Unix socket; "
                "set TUTOR_DATA_DIR to a shorter path or set REDIS_URL."
            )
        check_data_dir(self.data_dir)
        return binary

    async def start(self) -> str:
        """Start redis-server (or reuse one still serving this folder); return its URL.

        Raises ConfigError when no redis-server exists or it does not come up.
        """
        binary = self.preflight()
        if await self._answers_ping():
            log.info("reusing the private redis-server already serving %s", self.data_dir)
            return self.url
        self.socket_path.unlink(missing_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            binary,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--save", "60 1",
            "--logfile", str(self.data_dir / "redis.log"),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            # Its own session: Ctrl-C in a terminal signals the whole foreground process
            # group, and the server must outlive the bot's own shutdown (it is stopped last).
            start_new_session=True,
            # ...but not the bot itself: killed, the bot takes its server along.
            preexec_fn=die_with_parent(),
        )  # fmt: skip
        await self._wait_until_ready()
        log.info("started a private redis-server (data in %s)", self.data_dir)
        return self.url

    async def stop(self) -> None:
        """Ask the server to save and exit; kill it if it does not within a few seconds."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()  # redis-server saves and exits on SIGTERM
        try:
            await asyncio.wait_for(process.wait(), timeout=5)
        except TimeoutError:
            process.kill()
            await process.wait()
        log.info("stopped the private redis-server")

    async def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.returncode is not None:
                break
            if await self._answers_ping():
                return
            await asyncio.sleep(0.05)
        await self.stop()
        raise ConfigError(
            f"The private redis-server did not start; see {self.data_dir / 'redis.log'}."
        )

    async def _answers_ping(self) -> bool:
        if not self.socket_path.exists():
            return False
        client = Redis(unix_socket_path=str(self.socket_path), socket_connect_timeout=1)
        try:
            return bool(await client.ping())
        except Exception:  # not up yet (or a stale socket file): both mean "not ready"
            return False
        finally:
            await client.aclose()
