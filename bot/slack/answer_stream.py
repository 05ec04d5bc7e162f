"""An answer streamed into Slack as it is written: chat.startStream, appendStream, stopStream.

Slack streams only replies in a thread (in channels it needs the recipient too) and takes
at most 12,000 characters of `markdown_text` per message. Text past that, or a stream Slack
stopped accepting, is not lost: the reply surface then replaces the streamed message with
the finished answer by the ordinary edit-and-continue path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.backends.base import StepStatus, ToolStep
from bot.slack.client import slack_error_code
from bot.slack.render import MARKDOWN_LIMIT, neutralise_markdown
from bot.turns.models import Turn, TurnSource

log = logging.getLogger(__name__)

Block = dict[str, object]

# chat.appendStream is Tier 4 (100+/min); one append a second per answer reads smoothly.
APPEND_EVERY_SECONDS = 1.0
# Slack takes at most 256 characters per chunk field; a task lists a few sources.
CHUNK_TEXT_LIMIT = 256
SOURCES_PER_TASK = 5


def task_chunk(step: ToolStep, status: StepStatus | None = None) -> dict[str, object]:
    """A step as Slack's `task_update` stream chunk, its sources as `url` source elements."""
    chunk: dict[str, object] = {
        "type": "task_update",
        "id": step.id[:CHUNK_TEXT_LIMIT],
        "title": step.title[:CHUNK_TEXT_LIMIT],
        "status": (status or step.status).value,
    }
    if step.sources:
        chunk["sources"] = [
            {"type": "url", "url": source.url, "text": (source.title or source.url)[:200]}
            for source in step.sources[:SOURCES_PER_TASK]
        ]
    return chunk


def can_stream_natively(turn: Turn) -> bool:
    """Slack streams replies in threads; a top-level DM answer or a /tutor root is edited."""
    return bool(turn.thread_ts) and turn.source is not TurnSource.COMMAND


class NativeAnswerStream:
    """One answer's streamed message; `ts` is set once the stream has started."""

    def __init__(
        self, client: AsyncWebClient, turn: Turn, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._turn = turn
        self._clock = clock
        self.ts: str | None = None
        self._sent = ""  # neutralised markdown Slack has
        self._broken = False
        self._last_append = 0.0
        self._tasks: dict[str, ToolStep] = {}  # the steps shown as tasks, as last sent

    @property
    def started(self) -> bool:
        return self.ts is not None

    async def show(self, markdown: str) -> bool:
        """Stream the answer so far; False if Slack would not start a stream here."""
        text = neutralise_markdown(markdown)
        if self.ts is None:
            return await self._start(text)
        if self._broken or self._clock() - self._last_append < APPEND_EVERY_SECONDS:
            return True
        if text.startswith(self._sent):
            delta = text[len(self._sent) : MARKDOWN_LIMIT]
            if delta:
                await self._append(delta)
        return True

    async def show_steps(self, steps: list[ToolStep]) -> bool:
        """Show tools at work as task updates (starting the stream if need be); False if
        Slack would not start a stream here."""
        changed = [step for step in steps if self._tasks.get(step.id) != step]
        if not changed:
            return True
        chunks = [task_chunk(step) for step in changed]
        if self.ts is None:
            if not await self._start("", chunks):
                return False
        elif not self._broken:
            await self._append("", chunks)
        for step in changed:
            self._tasks[step.id] = step
        return True

    def _closing_chunks(self) -> list[dict[str, object]] | None:
        """Tasks still shown at work end `complete` with the answer (Slack's final status)."""
        open_tasks = [s for s in self._tasks.values() if s.status is StepStatus.IN_PROGRESS]
        self._tasks.update({s.id: ToolStep(s.id, s.kind, StepStatus.COMPLETE, s.sources, s.detail)
                            for s in open_tasks})  # fmt: skip
        return [task_chunk(s, StepStatus.COMPLETE) for s in open_tasks] or None

    async def finish(
        self, markdown: str, blocks: list[Block], session_status: str | None = None
    ) -> bool:
        """End the stream with the whole answer and `blocks` under it (the feedback
        buttons); False if it did not fit and must be replaced. `session_status`: the agent
        session's status from now on (None: the session is not the bot's to set)."""
        text = neutralise_markdown(markdown)
        if not self._broken and len(text) <= MARKDOWN_LIMIT and text.startswith(self._sent):
            if await self._stop(text[len(self._sent) :], blocks, session_status):
                return True
        else:
            await self._stop("")  # even after a failed append: out of the streaming state
        return False

    async def fail(self, message: str, session_status: str | None = None) -> bool:
        """End the stream with a plain-language error after what was written so far."""
        if self._broken:
            await self._stop("")
            return False
        return await self._stop(f"\n\n⚠️ {message}", session_status=session_status)

    async def _start(self, text: str, chunks: list[dict[str, object]] | None = None) -> bool:
        turn = self._turn
        recipient: dict[str, str] = {}
        if not turn.channel_id.startswith("D"):  # outside DMs Slack needs the reader
            recipient = {"recipient_user_id": turn.user_id, "recipient_team_id": turn.team_id}
        first = text[:MARKDOWN_LIMIT]
        try:
            response = await self._client.chat_startStream(
                channel=turn.channel_id,
                thread_ts=turn.thread_ts or "",
                markdown_text=first or None,
                chunks=chunks,
                **recipient,
            )
        except SlackApiError as error:
            log.info("no native stream here (%s) %s", slack_error_code(error), turn.log_context())
            return False
        self.ts = str(response["ts"])
        self._sent = first
        self._last_append = self._clock()
        return True

    async def _append(self, delta: str, chunks: list[dict[str, object]] | None = None) -> None:
        try:
            await self._client.chat_appendStream(
                channel=self._turn.channel_id,
                ts=self.ts or "",
                markdown_text=delta or None,
                chunks=chunks,
            )
        except SlackApiError as error:
            log.warning(
                "stream append failed (%s) %s", slack_error_code(error), self._turn.log_context()
            )
            self._broken = True
            return
        self._sent += delta
        self._last_append = self._clock()

    async def _stop(
        self, rest: str, blocks: list[Block] | None = None, session_status: str | None = None
    ) -> bool:
        try:
            await self._client.chat_stopStream(
                channel=self._turn.channel_id,
                ts=self.ts or "",
                markdown_text=rest or None,
                blocks=blocks or None,
                chunks=self._closing_chunks(),
                session_status=session_status,
            )
        except SlackApiError as error:
            log.warning(
                "stream stop failed (%s) %s", slack_error_code(error), self._turn.log_context()
            )
            self._broken = True
            return False
        self._sent += rest
        return True
