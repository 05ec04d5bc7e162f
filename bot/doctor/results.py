"""What one check of `python -m bot doctor` says: a name, passed/failed/skipped, one line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

log = logging.getLogger(__name__)

# One check waits this long at most, its requests and their retries included.
CHECK_SECONDS = 10.0


class Outcome(StrEnum):
    PASSED = "ok"
    FAILED = "FAILED"
    SKIPPED = "skipped"  # could not be checked because something before it failed


@dataclass(frozen=True)
class ModelShutdown:
    """The model the bot runs shuts down on `date` (announced by the server)."""

    model: str
    date: date
    days_left: int


@dataclass(frozen=True)
class CheckResult:
    """One line of the doctor's report."""

    name: str
    outcome: Outcome
    detail: str
    shutdown: ModelShutdown | None = None  # set by the model check when a date is announced

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    def line(self) -> str:
        return f"{self.outcome.value:<7} {self.name}: {self.detail}"


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Outcome.PASSED, detail)


def failed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Outcome.FAILED, detail)


def skipped(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Outcome.SKIPPED, detail)


async def bounded(
    name: str, check: Awaitable[CheckResult], seconds: float = CHECK_SECONDS
) -> CheckResult:
    """The check's result, or a failed line when it takes too long or breaks unexpectedly."""
    try:
        async with asyncio.timeout(seconds):
            return await check
    except TimeoutError:
        return failed(name, f"no answer within {seconds:g} s")
    except Exception as error:  # a check never raises: whatever broke is the line's detail
        log.debug("check %s broke", name, exc_info=True)
        return failed(name, f"could not be checked ({reason(error)})")


def reason(error: BaseException) -> str:
    """An exception in a few words for a report line: its type and message."""
    text = str(error).strip().rstrip(".")
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
