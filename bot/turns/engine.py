"""Running one turn: placeholder, backend conversation, message, run, status, answer.

Whatever fails, the turn ends with the placeholder replaced by the answer or by a plain
explanation: nobody is left looking at "Thinking…".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from bot.backends.base import (
    Backend,
    BackendError,
    ConversationBusy,
    RunState,
    RunStatus,
    Usage,
    UserMessage,
)
from bot.turns.conversations import ConversationStore
from bot.turns.footnotes import with_footnotes
from bot.turns.models import Turn
from bot.turns.records import InMemoryJournal, TurnProgress
from bot.turns.surface import ReplySurface

log = logging.getLogger(__name__)

T = TypeVar("T")

# How many status checks in a row may fail before we stop waiting for the run.
MAX_POLL_FAILURES = 3
# A status unchanged this long is shown again (with the time), so a long run looks alive.
STILL_WORKING_EVERY_SECONDS = 10.0

TOO_SLOW = (
    "Sorry, this took longer than {seconds:g} seconds, so I stopped it. "
    "Please try again, perhaps with a shorter question."
)
FAILED = "Sorry, the model couldn't answer this time: {reason}. Please try again."
EXPIRED = "Sorry, the model took too long and gave up. Please try again."
CANCELLED = "This answer was stopped before it finished."
CUT_SHORT = "The answer was cut short because it reached the length limit."
EMPTY = "Sorry, the model finished without an answer. Please try again."
UNEXPECTED = "Sorry, something went wrong on my side while answering. Please try again."
BUSY = "this conversation is still busy with an earlier question"


class Journal(Protocol):
    """Where a turn's steps are recorded as they happen (see bot.turns.records)."""

    progress: TurnProgress

    async def record(self, **fields: object) -> None: ...


class StopSignal(Protocol):
    """Whether someone asked to stop a turn (see bot.turns.stops)."""

    async def requested(self, turn_id: str) -> bool: ...


class UsageRecorder(Protocol):
    """Where the tokens a turn used are counted (see bot.turns.usage)."""

    async def record(self, team_id: str, usage: Usage | None) -> None: ...


class TurnOutcome(StrEnum):
    """How a turn ended, for logs, metrics and tests."""

    ANSWERED = "answered"  # the answer replaced the placeholder
    FAILED = "failed"  # the run or a server failed; the user was told
    TIMED_OUT = "timed_out"  # past the deadline; the run was cancelled and the user told
    CANCELLED = "cancelled"  # the run was cancelled by someone
    ERROR = "error"  # a bug or an unexpected failure; the user was told


@dataclass
class Deadline:
    """The point past which a turn gives up; `clock` is injectable for tests."""

    seconds: float
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def passed(self) -> bool:
        return self.elapsed >= self.seconds


class TurnEngine:
    """Takes one turn from question to answer against a backend."""

    def __init__(
        self,
        backend: Backend,
        conversations: ConversationStore,
        *,
        poll_interval: float,
        run_timeout: float,
        usage: UsageRecorder | None = None,
        stops: StopSignal | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._usage = usage
        self._stops = stops
        self._conversations = conversations
        self._poll_interval = poll_interval
        self._run_timeout = run_timeout
        self._sleep = sleep
        self._clock = clock

    async def run(
        self, turn: Turn, surface: ReplySurface, journal: Journal | None = None
    ) -> TurnOutcome:
        """Answer `turn` on `surface`, continuing from the steps `journal` says were done.

        Never raises, except CancelledError (the process is stopping: the turn is left as
        recorded, for the next worker to finish) and errors of the surface itself.
        """
        journal = journal or InMemoryJournal()
        context = turn.log_context()
        deadline = Deadline(self._run_timeout, self._clock)
        try:
            await self._ensure_placeholder(surface, journal)
            outcome = await self._answer(turn, surface, deadline, journal)
        except BackendError as error:
            log.warning("turn failed: %s %s", error, context)
            await surface.show_error(error.user_message)
            outcome = TurnOutcome.FAILED
        except Exception:
            log.exception("turn crashed %s", context)
            await surface.show_error(UNEXPECTED)
            outcome = TurnOutcome.ERROR
        await journal.record(delivered=True)
        if journal.progress.attempts > 1:  # an earlier attempt may have posted late
            try:
                await surface.remove_strays()
            except Exception:  # tidying up; the answer is delivered
                log.exception("could not look for stray placeholders %s", context)
        log.info("turn %s in %.1fs %s", outcome.value, deadline.elapsed, context)
        return outcome

    async def _ensure_placeholder(self, surface: ReplySurface, journal: Journal) -> None:
        """Show the placeholder once per turn, even across a crash right after posting it."""
        progress = journal.progress
        if progress.placeholder_ts:
            return
        if progress.posting_placeholder and await surface.find_placeholder():
            await journal.record(placeholder_ts=surface.placeholder_ref)
            return
        await journal.record(posting_placeholder=True)
        await surface.show_placeholder()
        if surface.placeholder_ref:
            await journal.record(placeholder_ts=surface.placeholder_ref)

    async def _answer(
        self, turn: Turn, surface: ReplySurface, deadline: Deadline, journal: Journal
    ) -> TurnOutcome:
        progress = journal.progress
        message = UserMessage(turn.text, turn.turn_id)
        conversation_id = progress.conversation_id
        if conversation_id is None:
            conversation_id = await self._conversations.find_or_create(
                turn.conversation_key, self._backend.create_conversation
            )
            await journal.record(conversation_id=conversation_id)
        if progress.message_id is None:
            await self._create_once(
                journal,
                intent="adding_message",
                result="message_id",
                find=lambda: self._backend.find_message(conversation_id, message),
                create=lambda: self._backend.add_message(conversation_id, message),
                deadline=deadline,
            )
        run_id = progress.run_id
        if run_id is None:
            run_id = await self._create_once(
                journal,
                intent="starting_run",
                result="run_id",
                find=lambda: self._backend.find_run(conversation_id, message),
                create=lambda: self._backend.start_run(conversation_id, message),
                deadline=deadline,
            )
            log.info("run %s started %s", run_id, turn.log_context())
        else:
            log.info("run %s resumed %s", run_id, turn.log_context())
        state = await self._follow(
            turn.turn_id, conversation_id, run_id, surface, deadline, journal
        )
        if state is None:
            await self._backend.cancel_run(conversation_id, run_id)
            await surface.show_error(TOO_SLOW.format(seconds=self._run_timeout))
            return TurnOutcome.TIMED_OUT
        if state.usage is not None:
            log.info(
                "run %s used %d in / %d out tokens",
                run_id,
                state.usage.input_tokens,
                state.usage.output_tokens,
            )
        if self._usage is not None:
            await self._usage.record(turn.team_id, state.usage)
        return await self._finish(
            conversation_id, run_id, progress.message_id or "", state, surface
        )

    async def _create_once(
        self,
        journal: Journal,
        *,
        intent: str,
        result: str,
        find: Callable[[], Awaitable[str | None]],
        create: Callable[[], Awaitable[str]],
        deadline: Deadline,
    ) -> str:
        """Create something on the server at most once per turn, and record its id.

        The intent is recorded before the create; if a previous attempt recorded it (and
        then crashed), the server is asked first whether the create already happened.
        """
        created = None
        if getattr(journal.progress, intent):
            created = await find()
        else:
            await journal.record(**{intent: True})
        if created is None:
            created = await self._while_busy(create, deadline)
        await journal.record(**{result: created})
        return created

    async def _while_busy(self, attempt: Callable[[], Awaitable[T]], deadline: Deadline) -> T:
        """Repeat `attempt` while another run holds the conversation, until the deadline."""
        while True:
            try:
                return await attempt()
            except ConversationBusy as error:
                if deadline.passed:
                    raise BackendError("conversation stayed busy", reason=BUSY) from error
                await self._sleep(self._poll_interval)

    async def _follow(
        self,
        turn_id: str,
        conversation_id: str,
        run_id: str,
        surface: ReplySurface,
        deadline: Deadline,
        journal: Journal,
    ) -> RunState | None:
        """Poll the run until it ends, showing each status change; None past the deadline.

        While the backend streams, the answer so far is shown instead of the status. A stop
        request cancels the run and ends it as cancelled.
        """
        shown: RunStatus | None = None
        shown_at = 0.0
        partial_shown = 0  # characters of the answer shown so far (0: statuses are shown)
        failures = 0
        while not deadline.passed:
            if self._stops is not None and await self._stops.requested(turn_id):
                await self._backend.cancel_run(conversation_id, run_id)
                return RunState(RunStatus.CANCELLED)
            try:
                state = await self._backend.run_state(conversation_id, run_id)
                failures = 0
            except BackendError:
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    await self._backend.cancel_run(conversation_id, run_id)
                    raise
                if not partial_shown:
                    await surface.show_status(
                        shown or RunStatus.IN_PROGRESS, deadline.elapsed, retrying=True
                    )
                    shown = None  # the next status seen is shown again
                await self._sleep(self._poll_interval)
                continue
            if state.status.is_final:
                return state
            if len(state.partial_text) > partial_shown and await surface.show_partial(
                state.partial_text
            ):
                partial_shown = len(state.partial_text)
                if surface.placeholder_ref != journal.progress.placeholder_ts:
                    # A streamed message replaced the placeholder: a resumed turn ends it.
                    await journal.record(placeholder_ts=surface.placeholder_ref)
            stale = deadline.elapsed - shown_at >= STILL_WORKING_EVERY_SECONDS
            # Once the answer is growing on screen, it says more than a status would.
            if not partial_shown and (state.status != shown or stale):
                shown, shown_at = state.status, deadline.elapsed
                await surface.show_status(state.status, deadline.elapsed)
            await self._sleep(self._poll_interval)
        return None

    async def _finish(
        self,
        conversation_id: str,
        run_id: str,
        message_id: str,
        state: RunState,
        surface: ReplySurface,
    ) -> TurnOutcome:
        if state.status in (RunStatus.COMPLETED, RunStatus.INCOMPLETE):
            answer = await self._backend.answer(conversation_id, run_id, message_id)
            if answer.text.strip():
                note = CUT_SHORT if state.status is RunStatus.INCOMPLETE else None
                await surface.show_answer(with_footnotes(answer.text, answer.citations), note=note)
                return TurnOutcome.ANSWERED
            await surface.show_error(CUT_SHORT if state.error else EMPTY)
            return TurnOutcome.FAILED
        if state.status is RunStatus.CANCELLED:
            await surface.show_error(CANCELLED)
            return TurnOutcome.CANCELLED
        if state.status is RunStatus.EXPIRED:
            await surface.show_error(EXPIRED)
            return TurnOutcome.FAILED
        await surface.show_error(FAILED.format(reason=_short_reason(state.error)))
        return TurnOutcome.FAILED


def _short_reason(error: str | None) -> str:
    if not error:
        return "no reason given"
    return error if len(error) <= 200 else error[:197] + "…"
