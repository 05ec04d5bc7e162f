"""Writing a quiz for a learner and showing it to them, only them, through a response_url.

The model writes the quiz (`bot.tutor.quiz.write_quiz`: structured output, checked, asked
once more when unusable), its choices are shuffled, it is kept in Redis with its right
answers (`bot.tutor.quiz_store`), and its Block Kit message (`bot.slack.quiz_blocks`) goes
to the learner as an ephemeral message. Whatever fails, the learner gets a plain message
instead; every wait is bounded (the model by TUTOR_RUN_TIMEOUT, Redis and Slack by the
constants below). The quiz call's tokens are counted in the usage ledger like a turn's.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

from redis.exceptions import RedisError

from bot.backends.base import BackendError, Usage
from bot.slack.interactions import send_ephemeral
from bot.slack.quiz_blocks import Block, quiz_message
from bot.tutor.ledger import UsageLedger
from bot.tutor.quiz import (
    DEFAULT_QUESTIONS,
    QuizNotWritten,
    QuizWriter,
    WrittenQuiz,
    quiz_prompt,
    shuffled,
    write_quiz,
)
from bot.tutor.quiz_store import Progress, QuizRecord, QuizStore, course_of, new_quiz_id

log = logging.getLogger(__name__)

NOT_WRITTEN = (
    "I couldn't write a quiz on that this time: the model's quiz was not usable, twice. "
    "Please try again, or try another topic."
)
MODEL_FAILED = "I couldn't write a quiz just now: {reason}. {advice}"
TOO_SLOW = "I couldn't write a quiz just now: the model took too long. Please try again."
NOT_KEPT = (
    "I couldn't write a quiz just now: my storage is unavailable, so your answers could not "
    "be kept. Please try again soon."
)
# Slack's response_url: one POST, bounded.
STORE_SECONDS = 35.0  # behind the ack: waits through a short Redis outage (patient client)


@dataclass(frozen=True)
class QuizRequest:
    """Who asked for a quiz, where, on what, and where to send it."""

    team_id: str
    channel_id: str
    user_id: str
    response_url: str
    topic: str = ""
    passage: str = ""  # a message's text (the shortcut)


class QuizUnavailable(Exception):
    """No quiz can be shown; `message` tells the learner why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QuizDesk:
    """Writes a quiz for a request and shows it to its learner through the response_url."""

    def __init__(
        self,
        writer: QuizWriter,
        store: QuizStore,
        ledger: UsageLedger,
        *,
        tutor_instructions: str,
        questions: int = DEFAULT_QUESTIONS,
        seconds: float = 120.0,
    ) -> None:
        self._writer = writer
        self._store = store
        self._ledger = ledger
        self._instructions = tutor_instructions
        self._questions = questions
        self._seconds = seconds
        self._random = random.SystemRandom()

    async def make(self, request: QuizRequest, *, writing: str | None = None) -> None:
        """Write, keep and show the quiz, or tell the learner plainly why not (after the
        `writing` note, when given)."""
        if writing is not None:
            await send_ephemeral(request.response_url, writing)
        quiz_id = new_quiz_id()
        try:
            text, blocks = await self._prepare(quiz_id, request)
        except QuizUnavailable as unavailable:
            await send_ephemeral(request.response_url, unavailable.message)
            return
        log.info("quiz %s shown %s", quiz_id, _context_of(request))
        await send_ephemeral(request.response_url, text, blocks)

    async def _prepare(self, quiz_id: str, request: QuizRequest) -> tuple[str, list[Block]]:
        """The quiz's message, once the quiz is written and kept. Raises QuizUnavailable."""
        written = await self._write(quiz_id, request)
        record = QuizRecord(
            quiz_id,
            shuffled(written.quiz, self._random),
            request.team_id,
            request.channel_id,
            request.user_id,
            course_of(request.team_id, request.channel_id),
        )
        try:
            async with asyncio.timeout(STORE_SECONDS):
                await self._store.save(record)
        except (RedisError, TimeoutError) as error:
            log.warning("no quiz: it could not be kept (%s) %s", type(error).__name__,
                        _context_of(request))  # fmt: skip
            raise QuizUnavailable(NOT_KEPT) from error
        return quiz_message(record, Progress({}, {}))

    async def _write(self, quiz_id: str, request: QuizRequest) -> WrittenQuiz:
        """The model's quiz (asked twice at most), its tokens counted. Raises QuizUnavailable."""
        prompt = quiz_prompt(
            tutor_instructions=self._instructions,
            topic=request.topic,
            passage=request.passage,
            questions=self._questions,
        )
        usage: Usage | None = None
        try:
            async with asyncio.timeout(self._seconds):
                written = await write_quiz(self._writer, prompt)
            usage = written.usage
            return written
        except QuizNotWritten as error:
            usage = error.usage
            raise QuizUnavailable(NOT_WRITTEN) from error
        except BackendError as error:
            log.warning("no quiz: %s %s", error, _context_of(request))
            message = MODEL_FAILED.format(reason=error.reason, advice=error.advice)
            raise QuizUnavailable(message) from error
        except TimeoutError as error:
            log.warning("no quiz: the model took too long %s", _context_of(request))
            raise QuizUnavailable(TOO_SLOW) from error
        finally:
            await self._count(quiz_id, request, usage)

    async def _count(self, quiz_id: str, request: QuizRequest, usage: Usage | None) -> None:
        """The quiz's tokens in the usage ledger, like a turn's; never fails the quiz."""
        if usage is None:
            return
        try:
            async with asyncio.timeout(STORE_SECONDS):
                await self._ledger.record_call(quiz_id, request.team_id, request.user_id, usage)
        except (RedisError, TimeoutError) as error:
            log.warning("a quiz's usage was not counted (%s)", type(error).__name__)


def _context_of(request: QuizRequest) -> dict[str, str]:
    return {"team": request.team_id, "channel": request.channel_id, "user": request.user_id}
