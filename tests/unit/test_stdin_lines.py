"""Reading the local chat's input without blocking the event loop."""

from __future__ import annotations

import asyncio
import os

from bot.local.stdin_lines import StdinLines


async def test_lines_arrive_then_none_at_end_of_input() -> None:
    read_end, write_end = os.pipe()
    try:
        lines = StdinLines(read_end)
        os.write(write_end, "Who was Solon?\r\nand Draco…".encode())
        assert await asyncio.wait_for(lines.next_line(), 5) == "Who was Solon?"
        os.write(write_end, b"\n")
        assert await asyncio.wait_for(lines.next_line(), 5) == "and Draco…"
        os.write(write_end, b"last line without a break")
        os.close(write_end)
        assert await asyncio.wait_for(lines.next_line(), 5) == "last line without a break"
        assert await asyncio.wait_for(lines.next_line(), 5) is None
    finally:
        os.close(read_end)
