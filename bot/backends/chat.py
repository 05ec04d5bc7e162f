"""The chat backend (private): history in our Redis, answers from any Chat Completions server.

vLLM, Ollama, llama.cpp, LM Studio and LiteLLM all speak Chat Completions but keep no
conversations, so the bot runs each turn itself: it streams a completion in a task and
reports the same statuses as a server-side run, so the placeholder behaves the same way.
Only the safe subset of parameters is sent (no `tool_choice`, no `stream_options`), and
`usage` is recorded only when the server reports it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import openai
from redis.asyncio import Redis

from bot.backends.base import (
    Answer,
    BackendError,
    Citation,
    RunState,
    RunStatus,
    Usage,
    UserMessage,
)
from bot.backends.chat_history import ChatHistoryStore, ChatMessage, fit_to_budget
from bot.backends.openai_client import translated_errors
from bot.settings import TokenLimitField
from bot.storage.keys import Keys

log = logging.getLogger(__name__)

RUN_RECORD_TTL_SECONDS = 24 * 60 * 60
STREAM_CUT = "the connection to the model was lost before the answer was complete"
INTERRUPTED = "the bot restarted while the model was answering"


class ChatBackend:
    """Runs turns as streamed chat completions over the history kept in Redis."""

    name = "chat"

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        redis: Redis,
        keys: Keys,
        *,
        model: str,
        instructions: str,
        max_output_tokens: int,
        token_budget: int,
        token_field: TokenLimitField,
    ) -> None:
        self._client = client
        self._redis = redis
        self._keys = keys
        self._history = ChatHistoryStore(redis, keys)
        self._model = model
        self._instructions = instructions
        self._max_output_tokens = max_output_tokens
        self._token_budget = token_budget
        self._token_field = token_field
        self._tasks: dict[str, asyncio.Task[None]] = {}  # strong references to running turns
        self._partials: dict[str, list[str]] = {}  # the text streamed so far, per running turn

    async def create_conversation(self, conversation_key: str) -> str:
        return "chat_" + uuid.uuid4().hex

    async def add_message(self, conversation_id: str, message: UserMessage) -> str:
        entry = ChatMessage("user", message.text, message.turn_id)
        return str(await self._history.append(conversation_id, entry))

    async def start_run(self, conversation_id: str, message: UserMessage) -> str:
        run_id = "chatrun_" + uuid.uuid4().hex
        await self._record(run_id, status=RunStatus.QUEUED, conversation=conversation_id)
        await self._redis.set(
            self._keys.chat_turn_run(message.turn_id), run_id, ex=RUN_RECORD_TTL_SECONDS
        )
        task = asyncio.create_task(self._complete(conversation_id, run_id, message.turn_id))
        self._tasks[run_id] = task
        task.add_done_callback(lambda _: self._forget_task(run_id))
        return run_id

    def _forget_task(self, run_id: str) -> None:
        self._tasks.pop(run_id, None)
        self._partials.pop(run_id, None)

    async def find_message(self, conversation_id: str, message: UserMessage) -> str | None:
        return None  # adding is idempotent per turn: add_message finds it itself

    async def find_run(self, conversation_id: str, message: UserMessage) -> str | None:
        """A finished run of this turn; a run that died with its process is started anew."""
        run_id = await self._redis.get(self._keys.chat_turn_run(message.turn_id))
        if run_id is None:
            return None
        status = await self._redis.hget(self._keys.chat_run(run_id), "status")
        return run_id if status == RunStatus.COMPLETED.value else None

    async def run_state(self, conversation_id: str, run_id: str) -> RunState:
        record = await self._redis.hgetall(self._keys.chat_run(run_id))
        if not record:
            return RunState(RunStatus.FAILED, error="unknown run")
        status = RunStatus(record["status"])
        if not status.is_final and run_id not in self._tasks:
            await self._record(run_id, status=RunStatus.FAILED, error=INTERRUPTED)
            return RunState(RunStatus.FAILED, error=INTERRUPTED)
        usage = None
        if "input_tokens" in record:
            usage = Usage(int(record["input_tokens"]), int(record.get("output_tokens", 0)))
        partial = "" if status.is_final else "".join(self._partials.get(run_id, ()))
        return RunState(
            status, error=record.get("error") or None, usage=usage, partial_text=partial
        )

    async def answer(self, conversation_id: str, run_id: str, after_message_id: str) -> Answer:
        record = await self._redis.hgetall(self._keys.chat_run(run_id))
        found = json.loads(record["citations"]) if record.get("citations") else []
        citations = [
            Citation(c["title"] or c["url"], c["url"], c["start"], c["end"]) for c in found
        ]
        return Answer(record.get("answer", ""), citations=citations)

    async def cancel_run(self, conversation_id: str, run_id: str) -> None:
        task = self._tasks.get(run_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        # A task cancelled before it ran never recorded anything: record it here.
        record = await self._redis.hgetall(self._keys.chat_run(run_id))
        if record and not RunStatus(record["status"]).is_final:
            await self._record(run_id, status=RunStatus.CANCELLED)

    def release(self, run_id: str) -> None:
        """The completion goes on (its answer is recorded for whoever follows the run)."""
        if run_id not in self._tasks:
            self._partials.pop(run_id, None)

    async def delete_conversation(self, conversation_id: str) -> None:
        """The history lives in Redis only: deleting it there forgets it."""
        await self._history.delete(conversation_id)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self._client.close()

    async def _complete(self, conversation_id: str, run_id: str, turn_id: str) -> None:
        """Stream one completion and record its outcome; the history gets only whole answers."""
        try:
            await self._record(run_id, status=RunStatus.IN_PROGRESS)
            history = await self._history.read(conversation_id)
            messages = fit_to_budget(self._instructions, history, self._token_budget)
            streamed = Streamed(self._partials.setdefault(run_id, []))
            await self._stream(messages, streamed)
            if streamed.finish_reason is None:
                await self._record(run_id, status=RunStatus.FAILED, error=STREAM_CUT)
                return
            text = streamed.text
            await self._history.append(conversation_id, ChatMessage("assistant", text, turn_id))
            length_cut = streamed.finish_reason == "length"
            status = RunStatus.INCOMPLETE if length_cut else RunStatus.COMPLETED
            citations = json.dumps(streamed.citations) if streamed.citations else None
            await self._record(
                run_id, status=status, answer=text, citations=citations, **streamed.usage
            )
        except asyncio.CancelledError:
            await asyncio.shield(self._record(run_id, status=RunStatus.CANCELLED))
            raise
        except BackendError as error:
            await self._record(run_id, status=RunStatus.FAILED, error=error.reason)
        except Exception:
            log.exception("chat run %s crashed", run_id)
            await self._record(run_id, status=RunStatus.FAILED, error="unexpected error")

    async def _stream(self, messages: list[ChatMessage], streamed: Streamed) -> None:
        """Stream one completion into `streamed`; its finish reason stays None if it broke off.

        The text arrives in `streamed.parts` as it is generated, for `run_state` to show.
        """
        request: dict[str, Any] = {
            "model": self._model,
            "messages": [
                {"role": "system", "content": self._instructions},
                *({"role": m.role, "content": m.content} for m in messages),
            ],
            "stream": True,
            self._token_field.value: self._max_output_tokens,
        }
        with translated_errors("chat completion"):
            stream = await self._client.chat.completions.create(**request)
            try:
                async for chunk in stream:
                    if chunk.usage is not None:
                        streamed.usage = {
                            "input_tokens": chunk.usage.prompt_tokens,
                            "output_tokens": chunk.usage.completion_tokens,
                        }
                    for choice in chunk.choices:
                        if choice.delta.content:
                            streamed.parts.append(choice.delta.content)
                        # Not a declared field: search models send citations this way.
                        streamed.citations.extend(url_citations(choice.delta))
                        streamed.finish_reason = choice.finish_reason or streamed.finish_reason
            except Exception as error:  # the transport's error type varies by SDK version
                log.warning("chat stream broke off: %s", type(error).__name__)
                streamed.finish_reason = None

    async def _record(self, run_id: str, **fields: object) -> None:
        key = self._keys.chat_run(run_id)
        mapping = {name: str(value) for name, value in fields.items() if value is not None}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, RUN_RECORD_TTL_SECONDS)
            await pipe.execute()


@dataclass
class Streamed:
    """What a completion stream delivered so far."""

    parts: list[str]
    finish_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    citations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def url_citations(delta: object) -> list[dict[str, Any]]:
    """The url_citation annotations a chunk's delta carries (title, url, start, end)."""
    found: list[dict[str, Any]] = []
    for annotation in getattr(delta, "annotations", None) or []:
        if not isinstance(annotation, dict) or annotation.get("type") != "url_citation":
            continue
        cited = annotation.get("url_citation") or {}
        if isinstance(cited.get("url"), str):
            found.append({
                "title": str(cited.get("title") or ""), "url": cited["url"],
                "start": cited.get("start_index"), "end": cited.get("end_index"),
            })  # fmt: skip
    return found
