"""Lines typed (or piped) into stdin, read without blocking the event loop.

A daemon thread does the blocking reads, so it works the same for a terminal, a pipe or a
file (asyncio's pipe transports refuse files), and it never keeps the process alive: Ctrl-C
ends the chat even while the thread waits for input. It reads the file descriptor directly
(`os.read`), never `sys.stdin`, whose buffer lock a daemon thread must not hold at exit.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import threading

CHUNK = 65_536


class StdinLines:
    """`await next_line()` gives each line without its line break, then None at end of input."""

    def __init__(self, fd: int = 0) -> None:
        self._fd = fd
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._read, name="stdin-lines", daemon=True)
        self._thread.start()

    async def next_line(self) -> str | None:
        return await self._lines.get()

    def _read(self) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        while True:
            try:
                chunk = os.read(self._fd, CHUNK)
            except OSError:
                chunk = b""
            pending += decoder.decode(chunk, final=not chunk)
            *lines, pending = pending.split("\n")
            if not chunk and pending:
                lines.append(pending)  # a last line without a line break
            for line in lines:
                if not self._put(line.removesuffix("\r")):
                    return
            if not chunk:
                self._put(None)
                return

    def _put(self, line: str | None) -> bool:
        """Hand a line to the event loop; False once the loop is gone (the chat ended)."""
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line)
            return True
        return False
