"""Waiting, in the stand-ins, until what they received satisfies a test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(
    changed: asyncio.Condition,
    predicate: Callable[[], bool],
    timeout: float | None,
    recent: Callable[[], str],
) -> None:
    """Return as soon as `predicate()` holds, re-checking whenever `changed` is notified;
    TimeoutError naming what arrived last (`recent()`) after `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout), changed:
            await changed.wait_for(predicate)
    except TimeoutError:
        raise TimeoutError(f"condition not met in {timeout}s; {recent()}") from None
