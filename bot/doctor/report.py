"""`python -m bot doctor`: run the checks, print one line each, exit 0 only when all pass."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from bot.doctor.checks import CheckResult, check_settings, run_checks, skipped
from bot.settings import Settings

# What cannot be checked without settings that load.
AFTER_SETTINGS = ("redis", "slack", "model", "backend API")


async def doctor(load: Callable[[], Settings], out: TextIO) -> int:
    """Print each check's line as `<ok|FAILED|skipped> <name>: <what>`; 0 when all passed."""
    first, settings = check_settings(load)
    _print(out, first)
    if settings is None:
        rest = [skipped(name, "needs valid settings (above)") for name in AFTER_SETTINGS]
    else:
        rest = await run_checks(settings)
    for result in rest:
        _print(out, result)
    return 0 if first.passed and all(result.passed for result in rest) else 1


def _print(out: TextIO, result: CheckResult) -> None:
    print(result.line(), file=out, flush=True)
