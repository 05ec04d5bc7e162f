"""The text of runs being written, read from their event streams while polling goes on.

Responses and Assistants runs can be created with `stream=True`: the first event names the
run, the rest carry text deltas. A reader task per run collects them so `run_state` can
show the answer so far. Polling stays the source of truth: a stream that breaks (or a
process that restarts) only stops the preview, never the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
from openai import AsyncStream

from bot.backends.base import BackendError, Source, ToolStep
from bot.backends.openai_client import rejects_parameter

log = logging.getLogger(__name__)

DeltaOf = Callable[[Any], str | None]  # the text an event adds, if any
T = TypeVar("T")
FinalOf = Callable[[Any], Any]  # the run's final object an event carries, if any


StepOf = Callable[[Any], ToolStep | Source | None]  # a tool call's progress, or a source


def _no_final(event: Any) -> None:
    return None


# How long a stream may take to name its run before the create counts as failed: a server
# that answers 200 and then sends only keep-alive comments must not hold a turn.
FIRST_EVENT_SECONDS = 30.0
NO_FIRST_EVENT = "the model server did not start answering"


def refuses_streaming(error: openai.APIStatusError) -> bool:
    """True for a 400/422 that is about the `stream` parameter itself (nothing was created)."""
    return rejects_parameter(error, "stream")


@dataclass
class StreamedRun:
    """What a run's event stream has told so far: its text, its latest state, its end."""

    parts: list[str] = field(default_factory=list)
    latest: Any = None  # the run's object as the latest event that carried it showed it
    final: Any = None  # the run's object as the stream's last event carried it
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # set with `final`
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set at every news
    broken: bool = False  # the stream stopped before the run's end: ask the server
    steps: dict[str, ToolStep] = field(default_factory=dict)  # tool calls, by item id

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def step(self, news: ToolStep | Source) -> None:
        """A tool call's progress; a cited source goes to the latest tool call."""
        if isinstance(news, ToolStep):
            earlier = self.steps.get(news.id)
            sources = earlier.sources if earlier is not None else ()
            self.steps[news.id] = ToolStep(news.id, news.kind, news.status, sources)
        elif self.steps:
            last = list(self.steps.values())[-1]
            if all(source.url != news.url for source in last.sources):
                sources = (*last.sources, news)
                self.steps[last.id] = ToolStep(last.id, last.kind, last.status, sources)

    def news(self) -> None:
        self.changed.set()


class PartialTexts:
    """Reader tasks and what they collected, per run id; `enabled` while streaming."""

    def __init__(self, enabled: bool, first_event_seconds: float = FIRST_EVENT_SECONDS) -> None:
        self.enabled = enabled
        self._first_event_seconds = first_event_seconds
        self._runs: dict[str, StreamedRun] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}

    async def create(
        self,
        create: Callable[[bool], Awaitable[Any]],
        run_id_of: Callable[[Any], str | None],
        delta_of: DeltaOf,
        final_of: FinalOf = _no_final,
        run_of: FinalOf = _no_final,
        step_of: StepOf = _no_final,
    ) -> str:
        """Create a run with `create(stream)`, streamed while the server accepts that.

        A server that rejects the `stream` parameter (400/422 naming it: nothing was
        created) gets the same create without it, and no streamed creates from then on.
        """
        if self.enabled:
            try:
                events = await create(True)
            except openai.APIStatusError as error:
                if not refuses_streaming(error):
                    raise
                log.warning("the model server refused a streamed create; previews turned off")
                self.enabled = False
            else:
                return await self.follow(events, run_id_of, delta_of, final_of, run_of, step_of)
        created = await create(False)
        return str(created.id)

    async def follow(
        self,
        events: AsyncStream[Any],
        run_id_of: Callable[[Any], str | None],
        delta_of: DeltaOf,
        final_of: FinalOf = _no_final,
        run_of: FinalOf = _no_final,
        step_of: StepOf = _no_final,
    ) -> str:
        """Read the first event for the run id, then collect the rest in the background.

        `delta_of` reads the text an event adds, `run_of` the run object an event carries
        (its status), `final_of` the run object of the event that ends the run.

        A server that ignores `stream` and answers with the created object as JSON is
        followed by polling alone; one that names no run within `first_event_seconds`
        (keep-alive comments only) fails the create.
        """
        if "text/event-stream" not in events.response.headers.get("content-type", ""):
            return await _id_of_plain_reply(events)
        iterator = aiter(events)
        try:
            async with asyncio.timeout(self._first_event_seconds):
                first = await anext(iterator, None)
        except TimeoutError as error:
            await events.close()
            raise BackendError("stream: no first event", reason=NO_FIRST_EVENT) from error
        run_id = run_id_of(first) if first is not None else None
        if run_id is None:
            await events.close()
            raise BackendError("the stream ended before the run was created")
        run = self._runs.setdefault(run_id, StreamedRun())
        run.latest = run_of(first)
        reader = asyncio.create_task(
            _collect(events, iterator, delta_of, final_of, run_of, step_of, run)
        )
        self._readers[run_id] = reader
        reader.add_done_callback(lambda _: self._readers.pop(run_id, None))
        return run_id

    def latest(self, run_id: str) -> Any:
        """The run's object as its stream showed it last; None when the run is not streamed
        here, or its stream broke off before the run's end (then the server must be asked)."""
        run = self._runs.get(run_id)
        return None if run is None or run.broken else run.latest

    def changed(self, run_id: str) -> asyncio.Event | None:
        """Set whenever the run's stream tells something new; None when it is not streamed."""
        run = self._runs.get(run_id)
        return None if run is None else run.changed

    def text(self, run_id: str) -> str:
        run = self._runs.get(run_id)
        return run.text if run is not None else ""

    def steps(self, run_id: str) -> tuple[ToolStep, ...]:
        """The run's tool calls as its stream told them (() when not streamed here)."""
        run = self._runs.get(run_id)
        return tuple(run.steps.values()) if run is not None else ()

    async def unless_ended(self, run_id: str, request: Callable[[], Awaitable[T]]) -> T | Any:
        """Await `request()` (a status check), unless the run's stream ends first: then its
        final object, without waiting for a request that may hang."""
        run = self._runs.get(run_id)
        if run is None:
            return await request()
        if run.final is not None:
            return run.final
        asked = asyncio.ensure_future(request())
        ended = asyncio.ensure_future(run.ended.wait())
        try:
            await asyncio.wait({asked, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not asked.done():
                asked.cancel()
        return asked.result() if asked.done() and not asked.cancelled() else run.final

    def forget(self, run_id: str) -> None:
        """The run ended (or is being cancelled, or followed elsewhere): stop reading it."""
        self._runs.pop(run_id, None)
        reader = self._readers.pop(run_id, None)
        if reader is not None:
            reader.cancel()

    def __len__(self) -> int:
        """Runs whose streamed state is kept (for tests of the memory bound)."""
        return len(self._runs)

    async def close(self) -> None:
        readers = list(self._readers.values())
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        self._runs.clear()


async def _collect(
    events: AsyncStream[Any],
    iterator: AsyncIterator[Any],
    delta_of: DeltaOf,
    final_of: FinalOf,
    run_of: FinalOf,
    step_of: StepOf,
    run: StreamedRun,
) -> None:
    try:
        async for event in iterator:
            step = step_of(event)
            if step is not None:
                run.step(step)
                run.news()
            delta = delta_of(event)
            if delta:
                run.parts.append(delta)
                run.news()
            latest = run_of(event)
            if latest is not None:
                run.latest = latest
                run.news()
            final = final_of(event)
            if final is not None:
                run.final = run.latest = final
                run.ended.set()
                run.news()
    except Exception as error:  # the transport's error type varies by SDK version
        log.info("run stream ended early: %s", type(error).__name__)
    finally:
        if run.final is None:
            run.broken = True
            run.news()
        with contextlib.suppress(Exception):  # closing what already failed: nothing to keep
            await events.close()


async def _id_of_plain_reply(events: AsyncStream[Any]) -> str:
    try:
        body = json.loads(await events.response.aread())
    except ValueError as error:
        raise BackendError("the server's reply to a streamed create was unreadable") from error
    finally:
        await events.close()
    if not isinstance(body, dict) or not isinstance(body.get("id"), str):
        raise BackendError("the server's reply to a streamed create named no run")
    return body["id"]
