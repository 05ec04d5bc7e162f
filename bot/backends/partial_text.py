"""The text of runs being written, read from their event streams while polling goes on.

Responses and Assistants runs can be created with `stream=True`: the first event names the
run, the rest carry text deltas. A reader task per run collects them so `run_state` can
show the answer so far. Polling stays the source of truth: a stream that breaks (or a
process that restarts) only stops the preview, never the turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import openai
from openai import AsyncStream

from bot.backends.base import BackendError
from bot.backends.openai_client import is_busy_error

log = logging.getLogger(__name__)

DeltaOf = Callable[[Any], str | None]  # the text an event adds, if any


class PartialTexts:
    """Reader tasks and the text they collected, per run id; `enabled` while streaming."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._parts: dict[str, list[str]] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}

    async def create(
        self,
        create: Callable[[bool], Awaitable[Any]],
        run_id_of: Callable[[Any], str | None],
        delta_of: DeltaOf,
    ) -> str:
        """Create a run with `create(stream)`, streamed while the server accepts that.

        A server that rejects the `stream` parameter (400/422: nothing was created) gets
        the same create without it, and no streamed creates from then on.
        """
        if self.enabled:
            try:
                events = await create(True)
            except openai.APIStatusError as error:
                if error.status_code not in (400, 422) or is_busy_error(error):
                    raise
                log.warning("the model server refused a streamed create; previews turned off")
                self.enabled = False
            else:
                return await self.follow(events, run_id_of, delta_of)
        created = await create(False)
        return str(created.id)

    async def follow(
        self, events: AsyncStream[Any], run_id_of: Callable[[Any], str | None], delta_of: DeltaOf
    ) -> str:
        """Read the first event for the run id, then collect the deltas in the background.

        A server that ignores `stream` and answers with the created object as JSON is
        followed by polling alone.
        """
        if "text/event-stream" not in events.response.headers.get("content-type", ""):
            return await _id_of_plain_reply(events)
        iterator = aiter(events)
        first = await anext(iterator, None)
        run_id = run_id_of(first) if first is not None else None
        if run_id is None:
            await events.close()
            raise BackendError("the stream ended before the run was created")
        parts = self._parts.setdefault(run_id, [])
        reader = asyncio.create_task(_collect(events, iterator, delta_of, parts))
        self._readers[run_id] = reader
        reader.add_done_callback(lambda _: self._readers.pop(run_id, None))
        return run_id

    def text(self, run_id: str) -> str:
        return "".join(self._parts.get(run_id, ()))

    def forget(self, run_id: str) -> None:
        """The run ended (or is being cancelled): stop reading it."""
        self._parts.pop(run_id, None)
        reader = self._readers.pop(run_id, None)
        if reader is not None:
            reader.cancel()

    async def close(self) -> None:
        readers = list(self._readers.values())
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        self._parts.clear()


async def _collect(
    events: AsyncStream[Any], iterator: AsyncIterator[Any], delta_of: DeltaOf, parts: list[str]
) -> None:
    try:
        async for event in iterator:
            delta = delta_of(event)
            if delta:
                parts.append(delta)
    except Exception as error:  # the transport's error type varies by SDK version
        log.info("run stream ended early: %s", type(error).__name__)
    finally:
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
