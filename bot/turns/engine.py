"""Running one turn: placeholder, backend conversation, message, run, status, answer.

Whatever fails, the turn ends with the placeholder replaced by the answer or by a plain
explanation: nobody is left looking at "Thinking…". Every wait on the model server is
bounded by the turn's deadline, so a turn ends within `run_timeout` plus a few bounded
final steps (one last look for the answer, the cancel, the delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
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
    StepKind,
    StepStatus,
    ToolStep,
    Usage,
    UserMessage,
)
from bot.logs import bind_ids
from bot.turns.attachments import AttachmentSource, Fetched
from bot.turns.conversations import ConversationStore
from bot.turns.footnotes import with_footnotes
from bot.turns.models import Turn
from bot.turns.records import InMemoryJournal, Journal
from bot.turns.resume import place_answer, tidy_after_resume
from bot.turns.surface import ReplyImpossible, ReplySurface
from bot.tutor.instructions import DEFAULT_TEACHING, Teaching
from bot.tutor.usage import UsageFigures

log = logging.getLogger(__name__)

T = TypeVar("T")

# How many status checks in a row may fail before we stop waiting for the run.
MAX_POLL_FAILURES = 3
# A status unchanged this long is shown again (with the time), so a long run looks alive.
STILL_WORKING_EVERY_SECONDS = 10.0
# One status check may take this long before it counts as failed (a hung request).
STATUS_CHECK_SECONDS = 10.0
# A run that is not streamed is asked about every 0.5 s (first after 0.5 s, like the classic
# loop), and past its first 10 s less often: a twentieth of its age, up to poll_interval.
SHORTEST_POLL_SECONDS = 0.5
POLL_BACKOFF = 0.05
# A streamed run tells its news itself; the server is asked this often all the same, in
# case the stream stalled without breaking.
SAFETY_NET_SECONDS = 10.0
# Tool steps the surface could not show (its edits were held back) are shown again after this.
STEPS_RETRY_SECONDS = 1.0
# How often the Stop button's request is looked for in Redis while a run works.
STOP_CHECK_SECONDS = 0.5
# Past the deadline: one last look whether the run finished, fetching its answer, and the
# cancel each get this long, so a turn ends within run_timeout + 3 × this (+ Slack).
FINAL_STEP_SECONDS = 4.0

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
NO_ANSWER_IN_TIME = "the model server did not answer in time"


class StopSignal(Protocol):
    """Whether someone asked to stop a turn (see bot.turns.stops)."""

    async def requested(self, turn_id: str) -> bool: ...


class UsageRecorder(Protocol):
    """Where the tokens a turn used are counted (see bot.tutor.ledger)."""

    async def record(self, turn: Turn, usage: Usage | None) -> UsageFigures:
        """Count the turn once (again for a resumed turn: no change); its figures."""
        ...


class Budgets(Protocol):
    """Whether the asker may start another run (see bot.tutor.budgets)."""

    async def refusal(self, turn: Turn) -> str | None:
        """A sentence saying which budget is spent and when it resets; None: go ahead."""
        ...


class Teacher(Protocol):
    """How a turn is taught (see bot.tutor.teaching): its course's tutor and its mode."""

    async def prepare(self, turn: Turn) -> Teaching:
        """Choose the turn's mode and instructions (and keep what its answer needs later,
        such as the question a guided answer's "Show me the answer" asks again)."""
        ...


class TurnObserver(Protocol):
    """Who counts how turns go (see bot.metrics): outcomes, time, tokens."""

    def turn_ended(self, outcome: str, seconds: float, model_seconds: float) -> None: ...

    def tokens_used(self, usage: Usage) -> None: ...


class TurnOutcome(StrEnum):
    """How a turn ended, for logs, metrics and tests."""

    ANSWERED = "answered"  # the answer replaced the placeholder
    FAILED = "failed"  # the run or a server failed; the user was told
    TIMED_OUT = "timed_out"  # past the deadline; the run was cancelled and the user told
    CANCELLED = "cancelled"  # the run was cancelled by someone
    OVER_BUDGET = "over_budget"  # a daily token budget was spent: no run, the user was told
    UNDELIVERABLE = "undeliverable"  # Slack will never take the reply (channel gone…)
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
    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed)

    @property
    def passed(self) -> bool:
        return self.elapsed >= self.seconds


class PastDeadline(Exception):
    """A step of the turn was still waiting on the model server at the deadline."""


async def bounded(call: Awaitable[T], seconds: float, what: str) -> T:
    """Await `call` for at most `seconds` (at least a moment); BackendError when it hangs."""
    try:
        async with asyncio.timeout(max(seconds, 0.5)):
            return await call
    except TimeoutError as error:
        raise BackendError(
            f"{what}: no reply in {seconds:.0f}s", reason=NO_ANSWER_IN_TIME
        ) from error


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
        budgets: Budgets | None = None,
        stops: StopSignal | None = None,
        observer: TurnObserver | None = None,
        teacher: Teacher | None = None,
        attachments: AttachmentSource | None = None,
        images: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._usage = usage
        self._budgets = budgets
        self._stops = stops
        self._observer = observer
        self._teacher = teacher
        self._attachments = attachments
        self._images = images  # whether images shared with a question go to the model
        self._model_seconds: dict[str, float] = {}  # turn id → time its run took (so far)
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
        recorded, for the next worker to finish) and errors of the surface itself that
        retrying may cure (Slack unreachable): the turn is then tried again later.
        """
        journal = journal or InMemoryJournal()
        context = turn.log_context()
        deadline = Deadline(self._run_timeout, self._clock)
        try:
            await place_answer(surface, journal)
            outcome = await self._answer_or_explain(turn, surface, deadline, journal)
        except ReplyImpossible as error:
            log.warning("turn dropped: Slack refused the reply (%s) %s", error, context)
            await self._cancel_quietly(journal)
            outcome = TurnOutcome.UNDELIVERABLE
        finally:
            if journal.progress.run_id:
                self._backend.release(journal.progress.run_id)
            model_seconds = self._model_seconds.pop(turn.turn_id, 0.0)
        await journal.delivered()
        await self._forget_run(journal, context)
        await tidy_after_resume(surface, journal, context)
        log.info("turn %s in %.1fs %s", outcome.value, deadline.elapsed, context)
        if self._observer is not None:
            seconds = time.time() - turn.accepted_at
            self._observer.turn_ended(outcome.value, seconds, model_seconds)
        return outcome

    async def _forget_run(self, journal: Journal, context: dict[str, str]) -> None:
        """Drop what the bot kept of the delivered turn's run (best effort: the `chat`
        backend's run record also expires by itself within a day)."""
        run_id, conversation_id = journal.progress.run_id, journal.progress.conversation_id
        if not run_id or not conversation_id:
            return
        try:
            await self._backend.forget_run(conversation_id, run_id)
        except Exception as error:
            log.warning("could not drop the record of run %s (%s) %s", run_id, error, context)

    async def _answer_or_explain(
        self, turn: Turn, surface: ReplySurface, deadline: Deadline, journal: Journal
    ) -> TurnOutcome:
        """The answer, or a plain explanation of why there is none."""
        context = turn.log_context()
        try:
            return await self._answer(turn, surface, deadline, journal)
        except PastDeadline:
            await self._cancel_quietly(journal)
            await surface.show_error(TOO_SLOW.format(seconds=self._run_timeout))
            return TurnOutcome.TIMED_OUT
        except BackendError as error:
            log.warning("turn failed: %s %s", error, context)
            await surface.show_error(error.user_message)
            return TurnOutcome.FAILED
        except (ReplyImpossible, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("turn crashed %s", context)
            await surface.show_error(UNEXPECTED)
            return TurnOutcome.ERROR

    async def _answer(
        self, turn: Turn, surface: ReplySurface, deadline: Deadline, journal: Journal
    ) -> TurnOutcome:
        progress = journal.progress
        if progress.run_id is None and not progress.starting_run:  # nothing runs yet
            refusal = await self._refusal(turn)
            if refusal is not None:
                log.info("turn refused: a daily token budget is spent %s", turn.log_context())
                await surface.show_error(refusal)
                return TurnOutcome.OVER_BUDGET
        teaching = await self._teaching(turn, journal)
        fetched = Fetched()
        if turn.files and progress.run_id is None:  # read for the run about to start
            fetched = await self._before(deadline, self._read_files(turn, surface))
        message = UserMessage(
            turn.text,
            turn.turn_id,
            teaching.instructions,
            teaching.additional,
            attachments=fetched.attachments,
            conversation_key=turn.conversation_key,
            course=teaching.course,
        )
        conversation_id = progress.conversation_id
        if conversation_id is None:
            conversation_id = await self._before(
                deadline,
                self._conversations.find_or_create(
                    turn.conversation_key, self._backend.create_conversation
                ),
            )
            await journal.conversation_found(conversation_id)
        if progress.message_id is None:
            message_id = await self._create_once(
                already_sent=progress.adding_message,
                announce=journal.message_adding,
                find=lambda: self._backend.find_message(conversation_id, message),
                create=lambda: self._backend.add_message(conversation_id, message),
                deadline=deadline,
            )
            await journal.message_added(message_id)
        run_id = progress.run_id
        if run_id is None:
            run_id = await self._create_once(
                already_sent=progress.starting_run,
                announce=journal.run_starting,
                find=lambda: self._backend.find_run(conversation_id, message),
                create=lambda: self._backend.start_run(conversation_id, message),
                deadline=deadline,
            )
            await journal.run_started(run_id)
            bind_ids(run=run_id)
            log.info("run %s started %s", run_id, turn.log_context())
        else:
            log.info("run %s resumed %s", run_id, turn.log_context())
        following = self._clock()
        try:
            state = await self._follow(turn.turn_id, conversation_id, run_id, surface, deadline)
        finally:
            self._model_seconds[turn.turn_id] = self._clock() - following
        if state is None:
            raise PastDeadline
        if state.usage is not None:
            log.info(
                "run %s used %d in / %d out tokens",
                run_id,
                state.usage.input_tokens,
                state.usage.output_tokens,
            )
        if self._observer is not None and state.usage is not None:
            self._observer.tokens_used(state.usage)
        figures = await self._record_usage(turn, state.usage)
        return await self._finish(
            conversation_id,
            run_id,
            progress.message_id or "",
            state,
            surface,
            figures,
            fetched.note(),
        )

    async def _read_files(self, turn: Turn, surface: ReplySurface) -> Fetched:
        """The turn's files, read through the attachment source (each shown as a step while
        it is read); what cannot be read is declined with a sentence, never a failed turn."""
        if self._attachments is None:
            return Fetched()
        step = ToolStep(f"read-{turn.turn_id}", StepKind.READING_FILE)
        await surface.show_steps((step,))
        try:
            fetched = await self._attachments.fetch(turn, images=self._images)
        except Exception as error:
            log.warning("attached files not read (%s) %s", error, turn.log_context())
            fetched = Fetched(declined=("I couldn't read the files you shared just now.",))
        names = ", ".join(a.name for a in fetched.attachments)
        done = ToolStep(step.id, StepKind.READING_FILE, StepStatus.COMPLETE, detail=names)
        await surface.show_steps((done,))
        return fetched

    async def _teaching(self, turn: Turn, journal: Journal) -> Teaching:
        """The turn's mode and instructions: those its journal kept (a resumed turn), else
        chosen now and kept, so a course changed meanwhile never alters a turn once begun.

        Instructions that cannot be chosen (Redis away longer than its client waits) are the
        default tutor's: a question is not refused for want of its course."""
        if journal.progress.teaching is not None:
            return journal.progress.teaching
        if self._teacher is None:
            return DEFAULT_TEACHING
        try:
            teaching = await self._teacher.prepare(turn)
        except Exception as error:
            log.warning("course and mode not read (%s) %s", error, turn.log_context())
            return DEFAULT_TEACHING
        await journal.teaching_chosen(teaching)
        return teaching

    async def _refusal(self, turn: Turn) -> str | None:
        """Why no run may start for this turn (a spent daily budget), or None.

        A budget that cannot be read (Redis away longer than its client waits) lets the turn
        run: a question is not refused for want of bookkeeping."""
        if self._budgets is None:
            return None
        try:
            return await self._budgets.refusal(turn)
        except Exception as error:
            log.warning("daily budgets not checked (%s) %s", error, turn.log_context())
            return None

    async def _record_usage(self, turn: Turn, usage: Usage | None) -> UsageFigures | None:
        """Count the turn's usage; its figures, or None when they could not be counted (the
        answer is shown all the same)."""
        if self._usage is None:
            return None
        try:
            return await self._usage.record(turn, usage)
        except Exception as error:
            log.warning("usage not counted (%s) %s", error, turn.log_context())
            return None

    async def _before(self, deadline: Deadline, call: Awaitable[T]) -> T:
        """Await a step that must finish before the deadline; PastDeadline if it does not."""
        try:
            async with asyncio.timeout(max(deadline.remaining, 0.5)):
                return await call
        except TimeoutError as error:
            raise PastDeadline from error

    async def _create_once(
        self,
        *,
        already_sent: bool,
        announce: Callable[[], Awaitable[None]],
        find: Callable[[], Awaitable[str | None]],
        create: Callable[[], Awaitable[str]],
        deadline: Deadline,
    ) -> str:
        """Create something on the server at most once per turn; the caller records its id.

        `announce` records the intent before the create; if a previous attempt announced it
        (and then crashed), the server is asked first whether the create already happened.
        """
        created = None
        if already_sent:
            created = await self._before(deadline, find())
        else:
            await announce()
        if created is None:
            created = await self._while_busy(create, deadline)
        return created

    async def _while_busy(self, attempt: Callable[[], Awaitable[T]], deadline: Deadline) -> T:
        """Repeat `attempt` while another run holds the conversation, until the deadline."""
        while True:
            try:
                return await self._before(deadline, attempt())
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
    ) -> RunState | None:
        """Follow the run until it ends, showing each status change; None past the deadline.

        A run this process streams is followed through its stream: every status, every bit
        of text and its end wake the engine at once, and the server is asked only as a slow
        safety net. Otherwise it is polled: every 0.5 s at first, less often as a long run
        goes on (up to `poll_interval`), or when the server says (`openai-poll-after-ms`).
        While the answer is being written it is shown instead of the status. A stop request
        cancels the run and ends it as cancelled. At the deadline the run gets one last
        bounded look, so an answer that is ready is still shown.
        """
        shown: RunStatus | None = None
        shown_at = 0.0
        partial_shown = 0  # characters of the answer shown so far (0: statuses are shown)
        steps_shown: tuple[ToolStep, ...] = ()  # the run's tool calls as last shown
        steps_held_back = False  # the last steps were not shown (edits held back)
        steps_retry_at = 0.0
        failures = 0
        next_ask: float | None = None  # when the server is asked next (elapsed seconds)
        was_streamed = False
        next_stop_check = 0.0
        while not deadline.passed:
            changed = self._backend.stream_changed(run_id)
            if changed is not None:
                changed.clear()  # news from here on wakes the wait below
            if self._stops is not None and deadline.elapsed >= next_stop_check:
                next_stop_check = deadline.elapsed + STOP_CHECK_SECONDS
                if await self._stops.requested(turn_id):
                    await self._cancel(conversation_id, run_id)
                    return RunState(RunStatus.CANCELLED)
            state = self._backend.streamed_state(run_id)
            if next_ask is None:  # streamed: the server is a safety net; else asked soon
                first = (
                    SAFETY_NET_SECONDS if state is not None else self._poll_delay(deadline, None)
                )
                next_ask = deadline.elapsed + first
            elif state is None and was_streamed:  # the stream ended without saying how: ask
                next_ask = deadline.elapsed
            was_streamed = state is not None
            if state is None and deadline.elapsed < next_ask:  # a poll is not due yet
                await self._wait(changed, min(next_ask - deadline.elapsed, deadline.remaining))
                continue
            if state is None or deadline.elapsed >= next_ask:
                try:
                    seconds = min(STATUS_CHECK_SECONDS, deadline.remaining)
                    state = await bounded(
                        self._backend.run_state(conversation_id, run_id), seconds, "check run"
                    )
                    failures = 0
                except BackendError:
                    failures += 1
                    if failures >= MAX_POLL_FAILURES:
                        await self._cancel(conversation_id, run_id)
                        raise
                    if not partial_shown:
                        await surface.show_status(
                            shown or RunStatus.IN_PROGRESS, deadline.elapsed, retrying=True
                        )
                        shown = None  # the next status seen is shown again
                    await self._sleep(min(self._poll_delay(deadline, None), deadline.remaining))
                    continue
                streamed = self._backend.streamed_state(run_id) is not None
                delay = SAFETY_NET_SECONDS if streamed else self._poll_delay(deadline, state)
                next_ask = deadline.elapsed + delay
            if state.steps != steps_shown or (
                steps_held_back and deadline.elapsed >= steps_retry_at
            ):
                steps_shown = state.steps
                steps_held_back = not await surface.show_steps(state.steps)
                steps_retry_at = deadline.elapsed + STEPS_RETRY_SECONDS
            if state.status.is_final:
                return state
            if len(state.partial_text) > partial_shown and await surface.show_partial(
                state.partial_text
            ):
                partial_shown = len(state.partial_text)
            stale = deadline.elapsed - shown_at >= STILL_WORKING_EVERY_SECONDS
            # Once the answer is growing on screen, it says more than a status would; a tool
            # at work says more too (its step is shown instead).
            working = any(step.status is StepStatus.IN_PROGRESS for step in steps_shown)
            if not partial_shown and not working and (state.status != shown or stale):
                shown, shown_at = state.status, deadline.elapsed
                await surface.show_status(state.status, deadline.elapsed)
            assert next_ask is not None
            wake_at = next_ask if self._stops is None else min(next_ask, next_stop_check)
            if steps_held_back:
                wake_at = min(wake_at, steps_retry_at)
            await self._wait(changed, min(wake_at - deadline.elapsed, deadline.remaining))
        return await self._last_look(conversation_id, run_id)

    def _poll_delay(self, deadline: Deadline, state: RunState | None) -> float:
        """How long to wait before asking about a run that is not streamed here."""
        shortest = min(SHORTEST_POLL_SECONDS, self._poll_interval)
        delay = min(self._poll_interval, max(shortest, deadline.elapsed * POLL_BACKOFF))
        if state is not None and state.poll_after is not None:
            delay = max(shortest, min(state.poll_after, self._poll_interval * 4))
        return delay

    async def _wait(self, changed: asyncio.Event | None, seconds: float) -> None:
        """Wait `seconds`, or less when the run's stream has news."""
        if changed is None:
            await self._sleep(max(seconds, 0.0))
            return
        if changed.is_set() or seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await changed.wait()

    async def _last_look(self, conversation_id: str, run_id: str) -> RunState | None:
        """The run's final state if it ended just now; None if it is still going (or unknown)."""
        try:
            state = await bounded(
                self._backend.run_state(conversation_id, run_id), FINAL_STEP_SECONDS, "last look"
            )
        except BackendError:
            return None
        return state if state.status.is_final else None

    async def _cancel(self, conversation_id: str, run_id: str) -> None:
        """Ask the server to stop the run, waiting a bounded time (it ends by itself anyway)."""
        try:
            await bounded(
                self._backend.cancel_run(conversation_id, run_id), FINAL_STEP_SECONDS, "cancel"
            )
        except BackendError as error:
            log.info("cancel of run %s not confirmed: %s", run_id, error)

    async def _cancel_quietly(self, journal: Journal) -> None:
        progress = journal.progress
        if progress.conversation_id and progress.run_id:
            await self._cancel(progress.conversation_id, progress.run_id)

    async def _finish(
        self,
        conversation_id: str,
        run_id: str,
        message_id: str,
        state: RunState,
        surface: ReplySurface,
        figures: UsageFigures | None = None,
        declined: str | None = None,
    ) -> TurnOutcome:
        if state.status in (RunStatus.COMPLETED, RunStatus.INCOMPLETE):
            answer = await bounded(
                self._backend.answer(conversation_id, run_id, message_id),
                max(STATUS_CHECK_SECONDS, FINAL_STEP_SECONDS),
                "fetch answer",
            )
            if answer.text.strip():
                cut = CUT_SHORT if state.status is RunStatus.INCOMPLETE else None
                note = " ".join(n for n in (cut, declined) if n) or None
                await surface.show_answer(
                    with_footnotes(answer.text, answer.citations), note=note, usage=figures
                )
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
