"""The doctor's checks at the bot's start: in the background, a WARNING for each failure.

Startup never waits for them. The model's shutdown date is checked again every few hours
while the bot runs; while it is within 30 days, the workspace's admins are told once a day
(admin_notice.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime

from bot.doctor.admin_notice import ShutdownNotice
from bot.doctor.checks import run_checks, run_model_check
from bot.doctor.results import CheckResult, reason
from bot.settings import Settings

log = logging.getLogger(__name__)

# How often a running bot looks at its model's shutdown date again (at least daily).
RECHECK_SECONDS = 6 * 60 * 60
# Telling the admins waits this long at most (users.list pages and one DM each).
NOTICE_SECONDS = 60.0


def utc_today() -> date:
    return datetime.now(UTC).date()


class StartChecks:
    """Runs the checks once started, then watches the model until stopped."""

    def __init__(
        self,
        settings: Settings,
        notice: ShutdownNotice,
        team_id: Callable[[], Awaitable[str | None]],
        *,
        redis_url: str | None = None,
        recheck_seconds: float = RECHECK_SECONDS,
        today: Callable[[], date] = utc_today,
    ) -> None:
        self._settings = settings
        self._notice = notice
        self._team_id = team_id
        self._redis_url = redis_url
        self._recheck_seconds = recheck_seconds
        self._today = today
        self._task: asyncio.Task[None] | None = None
        # Set once the checks have run and the admins were told (or needed no telling).
        self.first_round = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="checks at start")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        try:
            results = await run_checks(
                self._settings, redis_url=self._redis_url, today=self._today()
            )
            for result in results:
                _warn_if_failed(result)
            model = next(result for result in results if result.name == "model")
            while True:
                await self._tell_admins(model)
                self.first_round.set()
                await asyncio.sleep(self._recheck_seconds)
                model = await run_model_check(self._settings, today=self._today())
                _warn_if_failed(model)
        except Exception as error:  # never a silent dead task, never a traceback
            log.warning("the checks at start broke off (%s)", reason(error))
        finally:
            self.first_round.set()

    async def _tell_admins(self, model: CheckResult) -> None:
        """A model within 30 days of its shutdown (the check failed for it) is told once a day."""
        if model.passed or model.shutdown is None:
            return
        text = (
            f":warning: The tutor's model is about to shut down. {model.detail}, then restart "
            "the bot. `python -m bot doctor` checks the whole setup."
        )
        try:
            async with asyncio.timeout(NOTICE_SECONDS):
                team_id = await self._team_id()
                if team_id is None:
                    log.warning(
                        "cannot tell the admins: no single workspace (many workspaces "
                        "installed through OAuth, or Slack has not said which)"
                    )
                    return
                await self._notice.tell_once_today(team_id, model.shutdown, text, self._today())
        except Exception as error:  # the WARNING above was logged; the DM waits for later
            log.warning("cannot tell the admins that the model shuts down (%s)", reason(error))


def _warn_if_failed(result: CheckResult) -> None:
    if not result.passed:
        log.warning("check at start: %s %s: %s", result.outcome.value, result.name, result.detail)
