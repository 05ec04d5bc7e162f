"""The Assistants protocol backend: a Slack conversation is a thread, a turn is a run.

OpenAI shut this API down on 2026-08-26; it serves the servers and proxies that still speak it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import warnings
from collections.abc import Sequence
from typing import Any

import openai
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads import Annotation
from redis.asyncio import Redis
from redis.exceptions import LockError

from bot.backends.base import (
    Answer,
    BackendError,
    Citation,
    RunState,
    RunStatus,
    Usage,
    UserMessage,
)
from bot.backends.openai_client import (
    TRY_LATER,
    delete_unless_gone,
    read_reply,
    translated_errors,
)
from bot.backends.partial_text import FIRST_EVENT_SECONDS, PartialTexts
from bot.storage.keys import Keys

log = logging.getLogger(__name__)

PART_SEPARATOR = "\n\n"
# The Redis lock of the one process creating the assistant expires after this long (a
# process that died holding it); the others wait for the stored id as long at most.
CREATION_LOCK_SECONDS = 120
CREATION_WAIT_SECONDS = 120

# The SDK marks `beta.threads` deprecated; this backend exists precisely for that protocol.
warnings.filterwarnings(
    "ignore", message="The Assistants API is deprecated", category=DeprecationWarning
)
warnings.filterwarnings("ignore", message="deprecated$", category=DeprecationWarning)


class AssistantsBackend:
    """Runs turns through `beta.threads`; the server keeps the history."""

    name = "assistants"

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        redis: Redis,
        keys: Keys,
        *,
        assistant_id: str | None,
        assistant_name: str,
        model: str,
        instructions: str,
        max_output_tokens: int,
        stream: bool = False,
        stream_start_seconds: float = FIRST_EVENT_SECONDS,
    ) -> None:
        self._client = client
        self._partials = PartialTexts(stream, stream_start_seconds)  # the text streamed so far
        self._redis = redis
        self._keys = keys
        self._assistant_id = assistant_id
        self._creating = asyncio.Lock()  # one creation at a time in this process
        self._assistant_name = assistant_name
        self._model = model
        self._instructions = instructions
        self._max_output_tokens = max_output_tokens

    async def assistant_id(self) -> str:
        """TUTOR_ASSISTANT_ID, or the assistant created once for these settings (kept in Redis).

        Exactly one assistant is created however many turns and processes start at once:
        callers in this process queue on one lock, and across processes the one holding
        a Redis lock creates it while the others wait (at most CREATION_WAIT_SECONDS) for
        the id it stores.
        """
        if self._assistant_id:
            return self._assistant_id
        async with self._creating:
            if not self._assistant_id:
                self._assistant_id = await self._stored_or_created_assistant()
            return self._assistant_id

    async def _stored_or_created_assistant(self) -> str:
        fingerprint = hashlib.sha256(self._instructions.encode()).hexdigest()[:12]
        variant = f"{self._model}:{fingerprint}"
        key = self._keys.assistant_id(self._assistant_name, variant)
        stored = await self._redis.get(key)
        if stored:
            return str(stored)
        lock = self._redis.lock(
            self._keys.assistant_creation(self._assistant_name, variant),
            timeout=CREATION_LOCK_SECONDS,
            blocking_timeout=CREATION_WAIT_SECONDS,
            sleep=0.05,
        )
        if not await lock.acquire():
            raise BackendError(
                "create assistant: another process did not finish creating it",
                reason="the model server is slow to set up the tutor's assistant",
                advice=TRY_LATER,
            )
        try:
            stored = await self._redis.get(key)  # created while this process waited
            if stored:
                return str(stored)
            return await self._create_assistant(key)
        finally:
            try:
                await lock.release()
            except LockError:  # it expired while the create took long: nothing to release
                log.info("the assistant creation lock had expired")

    async def _create_assistant(self, key: str) -> str:
        with translated_errors("create assistant"):
            created = await self._client.beta.assistants.create(
                name=self._assistant_name,
                model=self._model,
                instructions=self._instructions,
                metadata={"created_by": "tutor-bot"},
            )
        if await self._redis.set(key, created.id, nx=True):
            log.info("created assistant %s", created.id)
            return created.id
        # Only when the lock expired mid-create: the first stored wins, ours goes.
        winner = await self._redis.get(key)
        with translated_errors("delete duplicate assistant"):
            await self._client.beta.assistants.delete(created.id)
        return str(winner)

    async def create_conversation(self, conversation_key: str) -> str:
        with translated_errors("create thread"):
            thread = await self._client.beta.threads.create(metadata={"slack": conversation_key})
        return thread.id

    async def add_message(self, conversation_id: str, message: UserMessage) -> str:
        with translated_errors("add message"):
            created = await self._client.beta.threads.messages.create(
                conversation_id,
                role="user",
                content=message.text,
                metadata={"turn_id": message.turn_id},
            )
        return created.id

    async def start_run(self, conversation_id: str, message: UserMessage) -> str:
        """Start the run; with streaming, read its text as it is written (polling goes on)."""
        request: dict[str, Any] = {
            "assistant_id": await self.assistant_id(),
            "max_completion_tokens": self._max_output_tokens,
            "truncation_strategy": {"type": "auto"},
            "metadata": {"turn_id": message.turn_id},
        }

        async def create(stream: bool) -> Any:
            runs = self._client.beta.threads.runs
            streaming = {"stream": True} if stream else {}
            return await runs.create(conversation_id, **request, **streaming)

        with translated_errors("start run"):
            return await self._partials.create(
                create, _created_run_id, _text_delta, _final_run, _run_of
            )

    async def find_message(self, conversation_id: str, message: UserMessage) -> str | None:
        with translated_errors("look for message"):
            page = await self._client.beta.threads.messages.list(
                conversation_id, order="desc", limit=20
            )
        for candidate in page.data:
            if candidate.role == "user" and _turn_of(candidate.metadata) == message.turn_id:
                return candidate.id
        return None

    async def find_run(self, conversation_id: str, message: UserMessage) -> str | None:
        with translated_errors("look for run"):
            page = await self._client.beta.threads.runs.list(
                conversation_id, order="desc", limit=20
            )
        for run in page.data:
            if _turn_of(run.metadata) == message.turn_id:
                return run.id
        return None

    async def run_state(self, conversation_id: str, run_id: str) -> RunState:
        runs = self._client.beta.threads.runs
        with translated_errors("check run"):
            run = await self._partials.unless_ended(
                run_id, lambda: runs.retrieve(run_id, thread_id=conversation_id)
            )
        state = self._state_of(run_id, run)
        if state.status.is_final:
            self._partials.forget(run_id)
        return state

    def streamed_state(self, run_id: str) -> RunState | None:
        latest = self._partials.latest(run_id)
        return None if latest is None else self._state_of(run_id, latest)

    def stream_changed(self, run_id: str) -> asyncio.Event | None:
        return self._partials.changed(run_id)

    def _state_of(self, run_id: str, run: Any) -> RunState:
        """The run state a run object shows; raises BackendError for one in an odd shape."""
        with read_reply("check run"):
            status = RunStatus(run.status)
            error = None
            if run.last_error is not None:
                error = _message_of(run.last_error)
            elif run.incomplete_details is not None:
                error = f"incomplete: {_field(run.incomplete_details, 'reason')}"
            usage = None
            if run.usage is not None:
                usage = Usage(run.usage.prompt_tokens or 0, run.usage.completion_tokens or 0)
        partial = "" if status.is_final else self._partials.text(run_id)
        return RunState(status, error=error, usage=usage, partial_text=partial)

    async def answer(self, conversation_id: str, run_id: str, after_message_id: str) -> Answer:
        texts: list[str] = []
        citations: list[Citation] = []
        offset = 0  # where the part starts in the joined text
        with translated_errors("fetch answer"), read_reply("fetch answer"):
            page = await self._client.beta.threads.messages.list(
                conversation_id, order="asc", after=after_message_id, limit=100
            )
            async for message in page:
                if message.role != "assistant" or message.run_id not in (None, run_id):
                    continue
                for text, annotations in text_parts(message.content):
                    offset += len(PART_SEPARATOR) if texts else 0
                    texts.append(text)
                    citations.extend(_citations(annotations, offset))
                    offset += len(text)
        return Answer(PART_SEPARATOR.join(texts), citations=citations)

    async def cancel_run(self, conversation_id: str, run_id: str) -> None:
        self._partials.forget(run_id)
        try:
            with translated_errors("cancel run"):
                await self._client.beta.threads.runs.cancel(run_id, thread_id=conversation_id)
        except Exception as error:  # a run that already ended cannot be cancelled: fine
            log.info("cancel of run %s not applied: %s", run_id, error)

    def release(self, run_id: str) -> None:
        self._partials.forget(run_id)

    async def delete_conversation(self, conversation_id: str, run_ids: Sequence[str]) -> None:
        """The thread, and with it its messages and runs. The bot adds no files."""
        for run_id in run_ids:
            self.release(run_id)
        await delete_unless_gone(
            "delete thread", lambda: self._client.beta.threads.delete(conversation_id)
        )

    async def forget_run(self, run_id: str) -> None:
        """Nothing kept here: the run stays at the server with its thread."""

    async def close(self) -> None:
        await self._partials.close()
        await self._client.close()


def _created_run_id(event: AssistantStreamEvent) -> str | None:
    return event.data.id if event.event == "thread.run.created" else None


FINAL_RUN_EVENTS = frozenset(
    {
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.incomplete",
        "thread.run.expired",
        "thread.run.cancelled",
    }
)


def _run_of(event: AssistantStreamEvent) -> Any:
    """The run as an event about its state carries it (created, queued, in progress…)."""
    return (
        event.data if event.event.startswith("thread.run.") and "step" not in event.event else None
    )


def _final_run(event: AssistantStreamEvent) -> Any:
    """The run as the event that ends its stream carries it."""
    return event.data if event.event in FINAL_RUN_EVENTS else None


def _text_delta(event: AssistantStreamEvent) -> str | None:
    if event.event != "thread.message.delta":
        return None
    content = _field(_field(event.data, "delta"), "content") or []
    return "".join(text for text, _ in text_parts(content))


def text_parts(content: object) -> list[tuple[str, list[Any]]]:
    """A message's (or delta's) text parts with their annotations, read tolerantly.

    The protocol's content is a list of `{"type": "text", "text": {"value", "annotations"}}`
    blocks; some servers put the text in a block as a plain string, or send the content as
    the text itself. Parts that carry no text (images) are skipped.
    """
    if content is None:
        return []
    if isinstance(content, str):
        return [(content, [])]
    if not isinstance(content, list | tuple):
        raise TypeError(f"message content is a {type(content).__name__}")
    parts: list[tuple[str, list[Any]]] = []
    for part in content:
        if isinstance(part, str):
            parts.append((part, []))
            continue
        if _field(part, "type") not in ("text", None):
            continue
        text = _field(part, "text")
        if isinstance(text, str):
            parts.append((text, []))
        elif isinstance(value := _field(text, "value"), str):
            parts.append((value, list(_field(text, "annotations") or [])))
    return parts


def _field(obj: object, name: str) -> Any:
    """`obj.name` or `obj[name]`: a lenient SDK leaves unexpected shapes as dicts."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _message_of(error: object) -> str:
    return error if isinstance(error, str) else str(_field(error, "message") or "no reason given")


def _turn_of(metadata: object) -> str | None:
    return metadata.get("turn_id") if isinstance(metadata, dict) else None


def _citations(annotations: list[Any], offset: int) -> list[Citation]:
    """The annotations that read as file citations; any other shape is left out."""
    citations = []
    for annotation in annotations:
        try:
            citations.append(_citation(annotation, offset))
        except (AttributeError, TypeError):
            log.info("skipped an annotation of unknown shape")
    return citations


def _citation(annotation: Annotation, offset: int) -> Citation:
    """A file citation or file path: the server's marker in the text becomes a footnote mark."""
    if annotation.type == "file_citation":
        label = f"File {annotation.file_citation.file_id}"
    else:
        label = f"File {annotation.file_path.file_id}"
    return Citation(
        label,
        start=offset + annotation.start_index,
        end=offset + annotation.end_index,
        replaces_span=True,
    )
