"""The Assistants protocol backend: a Slack conversation is a thread, a turn is a run.

OpenAI shut this API down on 2026-08-26; it serves the servers and proxies that still speak it.
A run's context is bounded by the protocol's own means: `truncation_strategy: auto` with
`max_prompt_tokens` set to the context budget, so the server drops the oldest messages
that do not fit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import openai
from openai.types.beta import AssistantStreamEvent
from openai.types.beta.threads import Annotation
from redis.asyncio import Redis
from redis.exceptions import LockError

from bot.backends.base import (
    Answer,
    AttachmentKind,
    BackendError,
    Citation,
    RunState,
    RunStatus,
    Usage,
    UserMessage,
)
from bot.backends.file_search import VectorStoreLibrary
from bot.backends.openai_client import (
    TRY_LATER,
    UploadDeletes,
    delete_unless_gone,
    read_reply,
    translated_errors,
)
from bot.backends.partial_text import FIRST_EVENT_SECONDS, PartialTexts
from bot.backends.provider_files import ProviderFiles
from bot.storage.keys import Keys
from bot.tutor.materials import CourseRef

log = logging.getLogger(__name__)

PART_SEPARATOR = "\n\n"
FILE_LABEL = "File "  # a file citation's label until its file's name is known
# The Redis lock of the one process creating the assistant expires after this long (a
# process that died holding it); the others wait for the stored id as long at most.
CREATION_LOCK_SECONDS = 120
CREATION_WAIT_SECONDS = 120

# The SDK marks `beta.threads` deprecated; this backend exists precisely for that protocol.
warnings.filterwarnings(
    "ignore", message="The Assistants API is deprecated", category=DeprecationWarning
)
warnings.filterwarnings("ignore", message="deprecated$", category=DeprecationWarning)


class AssistantsBackend(UploadDeletes):
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
        context_tokens: int = 0,
        stream: bool = False,
        stream_start_seconds: float = FIRST_EVENT_SECONDS,
        vision: bool = True,
        files: ProviderFiles | None = None,
        library: VectorStoreLibrary | None = None,
    ) -> None:
        self._vision = vision
        self._files = files  # uploads for attachments, listed per conversation
        self._client = client
        self.library = library  # course materials: a vector store per course
        self._file_names: dict[str, str] = {}  # provider file id → its name, for citations
        self._partials = PartialTexts(stream, stream_start_seconds)  # the text streamed so far
        self._context_tokens = context_tokens  # 0: no budget
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
        with translated_errors("upload attachment"):
            content = await self._content(message)
        with translated_errors("add message"):
            created = await self._client.beta.threads.messages.create(
                conversation_id,
                role="user",
                content=content,  # type: ignore[arg-type]
                metadata={"turn_id": message.turn_id},
            )
        return created.id

    async def _content(self, message: UserMessage) -> str | list[dict[str, Any]]:
        """The message's content: its text with each document's text (PDF, Word), then each
        image as an `image_file` uploaded for the conversation (`purpose=vision`)."""
        if not message.attachments:
            return message.text
        texts = [message.text]
        images: list[dict[str, Any]] = []
        for attachment in message.attachments:
            if attachment.kind is not AttachmentKind.IMAGE:
                texts.append(attachment.as_text())
            elif self._vision:
                uploaded = await self._client.files.create(
                    file=(attachment.name, attachment.data, attachment.mimetype),
                    purpose="vision",
                )
                if self._files is not None and message.conversation_key:
                    await self._files.remember(message.conversation_key, uploaded.id)
                images.append({"type": "image_file", "image_file": {"file_id": uploaded.id}})
        return [{"type": "text", "text": "\n\n".join(texts)}, *images]

    async def start_run(self, conversation_id: str, message: UserMessage) -> str:
        """Start the run; with streaming, read its text as it is written (polling goes on)."""
        request: dict[str, Any] = {
            "assistant_id": await self.assistant_id(),
            "max_completion_tokens": self._max_output_tokens,
            "truncation_strategy": {"type": "auto"},
            "metadata": {"turn_id": message.turn_id},
        }
        if self._context_tokens:
            request["max_prompt_tokens"] = self._context_tokens
        # A course's instructions replace the assistant's for this run (`instructions`), as
        # they replace the default tutor on the other backends; the mode's guidance is added
        # to whichever apply (`additional_instructions`), so an assistant configured with
        # TUTOR_ASSISTANT_ID keeps its own instructions where no course is set.
        if message.instructions is not None:
            request["instructions"] = message.instructions
        if message.additional_instructions:
            request["additional_instructions"] = message.additional_instructions
        tools = await self.tools_for(conversation_id, message)
        if tools:
            request["tools"] = tools

        async def create(stream: bool) -> Any:
            runs = self._client.beta.threads.runs
            streaming = {"stream": True} if stream else {}
            return await runs.create(conversation_id, **request, **streaming)

        with translated_errors("start run"):
            return await self._partials.create(
                create, _created_run_id, _text_delta, _final_run, _run_of
            )

    async def tools_for(self, conversation_id: str, message: UserMessage) -> list[dict[str, Any]]:
        """The tools of this turn's run: `file_search` over its course's materials.

        A run takes tools but no tool resources: the course's vector store is set on the
        thread (`tool_resources`) before the run, so the thread searches it."""
        course = CourseRef.parse(message.course)
        if self.library is None:
            return []
        stores = await self.library.vector_store_ids(course) if course is not None else []
        if stores:
            with translated_errors("set thread materials"):
                await self._client.beta.threads.update(
                    conversation_id, tool_resources={"file_search": {"vector_store_ids": stores}}
                )
        return [{"type": "file_search"}] if stores else []

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
        named = [await self._named(citation) for citation in citations]
        return Answer(PART_SEPARATOR.join(texts), citations=named)

    async def _named(self, citation: Citation) -> Citation:
        """A file citation labelled with the file's name (its id where it cannot be read)."""
        file_id = citation.label.removeprefix(FILE_LABEL)
        if not citation.label.startswith(FILE_LABEL):
            return citation
        if file_id not in self._file_names:
            try:
                with translated_errors("name cited file"):
                    found = await self._client.files.retrieve(file_id)
                self._file_names[file_id] = found.filename
            except BackendError:
                return citation
        return replace(citation, label=self._file_names[file_id])

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

    async def forget_run(self, conversation_id: str, run_id: str) -> None:
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
        label = f"{FILE_LABEL}{annotation.file_citation.file_id}"
    else:
        label = f"{FILE_LABEL}{annotation.file_path.file_id}"
    return Citation(
        label,
        start=offset + annotation.start_index,
        end=offset + annotation.end_index,
        replaces_span=True,
    )
