"""The chat backend (private): history in our Redis, answers from any Chat Completions server.

vLLM, Ollama, llama.cpp, LM Studio and LiteLLM all speak Chat Completions but keep no
conversations, so the bot runs each turn itself: it streams a completion in a task and
reports the same statuses as a server-side run, so the placeholder behaves the same way.
Only the safe subset of parameters is sent (no `tool_choice`), plus `stream_options` asking
for usage: a server that refuses it (a 400 naming it) is asked without it from then on, and
where a server reports no usage the turn's usage is estimated (`Usage.estimated`). What is
sent fits the context budget, instructions first (see `chat_history`). A completion lost
with its process is asked again by the next one; what is sent always alternates user and
assistant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, WatchError

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
from bot.backends.chat_history import (
    ChatHistoryStore,
    ChatMessage,
    answer_of,
    estimate_output_tokens,
    estimate_tokens,
    fit_to_budget,
    up_to_question,
)
from bot.backends.openai_client import rejects_parameter, translated_errors
from bot.backends.passages import (
    LocalLibrary,
    Passage,
    passage_citations,
    passages_from_json,
    passages_to_json,
    with_passages,
)
from bot.backends.reported_usage import usage_of_completion
from bot.settings import TokenLimitField
from bot.storage.keys import Keys
from bot.tutor.materials import CourseRef

log = logging.getLogger(__name__)

RUN_RECORD_TTL_SECONDS = 24 * 60 * 60
STREAM_CUT = "the connection to the model was lost before the answer was complete"
# A run recorded by a version that did not note its turn cannot be asked again.
INTERRUPTED = "the bot restarted while the model was answering"
QUESTION_GONE = "the question is no longer in this conversation's history"
STORAGE_UNREACHABLE = "the bot's storage was unreachable, so the answer could not be kept"
UNEXPECTED = "unexpected error"
FINISH_ATTEMPTS = 10  # tries of the finishing transaction while others touch the same keys
CANCEL_WAIT_SECONDS = 0.1  # how long a cancelled run may take to end before it is cancelled again
CANCEL_ATTEMPTS = 20
USAGE_OPTION = {"include_usage": True}
NO_STREAM_OPTIONS = (
    "the model server refused stream_options: completions are asked without it from now on, "
    "and their usage is estimated where the server reports none"
)


def _with_attachments(message: UserMessage) -> str:
    """The question as the history keeps it: with each document's text (PDF, Word), and each
    image named."""
    parts = [message.text]
    for attachment in message.attachments:
        if attachment.kind is AttachmentKind.IMAGE:
            parts.append(f"[Attached image {attachment.name}]")
        else:
            parts.append(attachment.as_text())
    return "\n\n".join(parts)


class ChatBackend:
    """Runs turns as streamed chat completions over the history kept in Redis.

    A run is a task of this process, recorded in Redis as it goes. When the process dies
    mid-answer, the run stays unfinished in Redis and the next process that follows it asks
    the model again: the history is ours, so asking again is safe, and the answer is
    appended to the history in the same transaction that finishes the run, once per turn.
    """

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
        vision: bool = True,
        library: LocalLibrary | None = None,
    ) -> None:
        self._client = client
        self._vision = vision
        # Images of the turns being asked (data URLs), by turn id: sent with the question,
        # never kept in the history (which keeps their names).
        self._images: dict[str, list[str]] = {}
        self.library = library  # course materials: passages in Redis, ranked here
        self._redis = redis
        self._keys = keys
        self._history = ChatHistoryStore(redis, keys)
        self._model = model
        self._instructions = instructions
        self._max_output_tokens = max_output_tokens
        self._token_budget = token_budget  # 0: no budget
        self._token_field = token_field
        self._ask_usage = True  # until the server refuses `stream_options`
        self._tasks: dict[str, asyncio.Task[None]] = {}  # strong references to running turns
        self._partials: dict[str, list[str]] = {}  # the text streamed so far, per running turn
        self._changed: dict[str, asyncio.Event] = {}  # set when a run's stream says more
        # Runs that ended but could not be recorded (Redis unreachable): why they failed.
        self._unrecorded: dict[str, str] = {}

    async def create_conversation(self, conversation_key: str) -> str:
        return "chat_" + uuid.uuid4().hex

    async def add_message(self, conversation_id: str, message: UserMessage) -> str:
        entry = ChatMessage("user", _with_attachments(message), message.turn_id)
        images = [
            a.data_url()
            for a in message.attachments
            if a.kind is AttachmentKind.IMAGE and self._vision
        ]
        if images:
            self._images[message.turn_id] = images
        return str(await self._history.append(conversation_id, entry))

    async def start_run(self, conversation_id: str, message: UserMessage) -> str:
        run_id = "chatrun_" + uuid.uuid4().hex
        # Kept with the run: a completion asked again after a crash uses the same ones, and
        # the same passages of the course's materials.
        passages = await self._passages(message)
        instructions = with_passages(message.instructions_over(self._instructions), passages)
        await self._record(
            conversation_id,
            run_id,
            status=RunStatus.QUEUED,
            conversation=conversation_id,
            turn=message.turn_id,
            instructions=instructions,
            passages=passages_to_json(passages) if passages else None,
        )
        await self._redis.set(
            self._keys.chat_turn_run(message.turn_id), run_id, ex=RUN_RECORD_TTL_SECONDS
        )
        self._spawn(conversation_id, run_id, message.turn_id, instructions)
        return run_id

    async def _passages(self, message: UserMessage) -> list[Passage]:
        """The passages of the turn's course materials that best answer its question."""
        course = CourseRef.parse(message.course)
        if self.library is None or course is None:
            return []
        return await self.library.passages_for(course, message.text, self._token_budget)

    def _spawn(self, conversation_id: str, run_id: str, turn_id: str, instructions: str) -> None:
        task = asyncio.create_task(
            self._complete(conversation_id, run_id, turn_id, instructions),
            name=f"chat run {run_id}",
        )
        self._tasks[run_id] = task
        task.add_done_callback(lambda _: self._forget_task(run_id))

    def _forget_task(self, run_id: str) -> None:
        self._tasks.pop(run_id, None)
        self._partials.pop(run_id, None)
        changed = self._changed.get(run_id)
        if changed is not None:
            changed.set()  # the run ended here: its outcome is recorded, for the engine to read

    def _changed_event(self, run_id: str) -> asyncio.Event:
        return self._changed.setdefault(run_id, asyncio.Event())

    def streamed_state(self, run_id: str) -> RunState | None:
        """While this process streams the completion: in progress, with the text so far."""
        if run_id not in self._tasks:
            return None  # ended (or elsewhere): its outcome is read from Redis
        return RunState(RunStatus.IN_PROGRESS, partial_text="".join(self._partials.get(run_id, ())))

    def stream_changed(self, run_id: str) -> asyncio.Event | None:
        return self._changed_event(run_id) if run_id in self._tasks else self._changed.get(run_id)

    async def find_message(self, conversation_id: str, message: UserMessage) -> str | None:
        return None  # adding is idempotent per turn: add_message finds it itself

    async def find_run(self, conversation_id: str, message: UserMessage) -> str | None:
        """This turn's run, if one was started: `run_state` asks again if it died unfinished."""
        run_id = await self._redis.get(self._keys.chat_turn_run(message.turn_id))
        if run_id is None or not await self._redis.exists(
            self._keys.chat_run(run_id, conversation_id)
        ):
            return None
        return str(run_id)

    async def run_state(self, conversation_id: str, run_id: str) -> RunState:
        """The run's status; an unfinished run with no task here (its process died) resumes."""
        reason = self._unrecorded.pop(run_id, None)
        if reason is not None:  # known here first: Redis may still be unreachable
            with contextlib.suppress(RedisError):
                await self._fail(conversation_id, run_id, reason)
            return RunState(RunStatus.FAILED, error=reason)
        record = await self._redis.hgetall(self._keys.chat_run(run_id, conversation_id))
        if not record:
            return RunState(RunStatus.FAILED, error="unknown run")
        status = RunStatus(record["status"])
        if not status.is_final and run_id not in self._tasks:
            if not record.get("turn"):
                await self._fail(conversation_id, run_id, INTERRUPTED)
                return RunState(RunStatus.FAILED, error=INTERRUPTED)
            log.info("chat run %s was left unfinished: asking the model again", run_id)
            instructions = record.get("instructions", self._instructions)
            self._spawn(conversation_id, run_id, record["turn"], instructions)
        usage = None
        if "input_tokens" in record:
            usage = Usage(
                int(record["input_tokens"]),
                int(record.get("output_tokens", 0)),
                int(record.get("cached_tokens", 0)),
                estimated=record.get("estimated") == "1",
            )
        partial = "" if status.is_final else "".join(self._partials.get(run_id, ()))
        return RunState(
            status, error=record.get("error") or None, usage=usage, partial_text=partial
        )

    async def answer(self, conversation_id: str, run_id: str, after_message_id: str) -> Answer:
        record = await self._redis.hgetall(self._keys.chat_run(run_id, conversation_id))
        found = json.loads(record["citations"]) if record.get("citations") else []
        citations = [
            Citation(c["title"] or c["url"], c["url"], c["start"], c["end"]) for c in found
        ]
        text = record.get("answer", "")
        citations += passage_citations(text, passages_from_json(record.get("passages")))
        return Answer(text, citations=citations)

    async def cancel_run(self, conversation_id: str, run_id: str) -> None:
        """Stop the run and record it as cancelled (its task records nothing when stopped)."""
        task = self._tasks.get(run_id)
        if task is not None:
            await _cancel(task)
        self._unrecorded.pop(run_id, None)
        await self._record_unless_ended(conversation_id, run_id, status=RunStatus.CANCELLED)

    def release(self, run_id: str) -> None:
        """The completion goes on (its answer is recorded for whoever follows the run)."""
        if run_id not in self._tasks:
            self._partials.pop(run_id, None)
            self._changed.pop(run_id, None)

    async def delete_conversation(self, conversation_id: str, run_ids: Sequence[str]) -> None:
        """Everything lives in Redis only: the history, and the records of runs whose turn
        never ended (a delivered turn's run record is gone already, see `forget_run`)."""
        for run_id in run_ids:
            task = self._tasks.get(run_id)
            if task is not None:
                await _cancel(task)
            self.release(run_id)
        await self._history.delete(conversation_id)
        for run_id in run_ids:
            await self.forget_run(conversation_id, run_id)

    async def delete_file(self, file_id: str) -> None:
        """Nothing to do: chat uploads no files (attachments go into the prompt)."""

    async def delete_vector_store(self, vector_store_id: str) -> None:
        """Nothing to do: chat keeps course materials in Redis, not in vector stores."""

    async def forget_run(self, conversation_id: str, run_id: str) -> None:
        """Drop the run's record (its answer is in the history) and the turn's link to it."""
        run_key = self._keys.chat_run(run_id, conversation_id)
        turn_id = await self._redis.hget(run_key, "turn")
        gone = [run_key] + ([self._keys.chat_turn_run(turn_id)] if turn_id else [])
        await self._redis.delete(*gone)

    async def close(self) -> None:
        """Stop the runs of this process; they stay unfinished, for the next one to resume."""
        await asyncio.gather(*(_cancel(task) for task in list(self._tasks.values())))
        await self._client.close()

    async def _complete(
        self, conversation_id: str, run_id: str, turn_id: str, instructions: str
    ) -> None:
        """Run one completion to its end; whatever fails, the run ends (but when cancelled).

        A cancelled task records nothing: `cancel_run` records the cancel, and on `close`
        the run stays unfinished so that the next process resumes it.
        """
        try:
            await self._ask(conversation_id, run_id, turn_id, instructions)
            self._images.pop(turn_id, None)
        except asyncio.CancelledError:
            raise
        except RedisError as error:
            log.error("chat run %s failed: its outcome could not be recorded: %s", run_id, error)
            self._unrecorded[run_id] = STORAGE_UNREACHABLE
        except Exception:
            log.exception("chat run %s crashed", run_id)
            try:
                await self._fail(conversation_id, run_id, UNEXPECTED)
            except RedisError:
                self._unrecorded[run_id] = UNEXPECTED

    async def _ask(
        self, conversation_id: str, run_id: str, turn_id: str, instructions: str
    ) -> None:
        """Stream one completion and record its outcome; the history gets only whole answers.

        The turn's instructions go first as the system message, the same text for every turn
        of a course and mode, so a server's prefix cache keeps hitting."""
        if not await self._record_unless_ended(
            conversation_id, run_id, status=RunStatus.IN_PROGRESS
        ):
            return
        asked = up_to_question(await self._history.read(conversation_id), turn_id)
        if asked is None:
            await self._fail(conversation_id, run_id, QUESTION_GONE)
            return
        messages = [
            ChatMessage("system", instructions),
            *fit_to_budget(instructions, asked, self._token_budget),
        ]
        streamed = Streamed(self._partials.setdefault(run_id, []), self._changed_event(run_id))
        try:
            await self._stream(messages, streamed)
        except BackendError as error:
            await self._fail(conversation_id, run_id, error.reason)
            return
        if streamed.finish_reason is None:
            await self._fail(conversation_id, run_id, STREAM_CUT)
            return
        length_cut = streamed.finish_reason == "length"
        if not streamed.usage:  # the server reported none: counted here, and said so
            streamed.usage = {
                "input_tokens": sum(estimate_tokens(m.content) for m in messages),
                "output_tokens": estimate_output_tokens(streamed.text),
                "estimated": 1,
            }
        ended = await self._record_unless_ended(
            conversation_id,
            run_id,
            answer=ChatMessage("assistant", streamed.text, turn_id),
            status=RunStatus.INCOMPLETE if length_cut else RunStatus.COMPLETED,
            citations=json.dumps(streamed.citations) if streamed.citations else None,
            **streamed.usage,
        )
        if not ended:
            log.info("chat run %s had already ended: its answer is dropped", run_id)

    async def _fail(self, history_id: str, run_id: str, reason: str) -> None:
        await self._record_unless_ended(history_id, run_id, status=RunStatus.FAILED, error=reason)

    async def _record_unless_ended(
        self,
        history_id: str,
        run_id: str,
        *,
        answer: ChatMessage | None = None,
        **fields: object,
    ) -> bool:
        """Record `fields` (and append `answer`) in one transaction, unless the run ended.
        (On Redis Cluster the run's record carries its history's tag: one slot.)

        Two tasks may work on one run (a process thought dead was only slow) and the user
        may stop it at any time: whatever ended the run first stands, and False says so. An
        answer is appended once per turn; when the history already has one, the run records
        that one, so what the user sees is what the model will remember.
        """
        run_key = self._keys.chat_run(run_id, history_id)
        watched = [run_key] + ([self._history.key(history_id)] if answer else [])
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(FINISH_ATTEMPTS):
                try:
                    await pipe.watch(*watched)
                    status = await pipe.hget(run_key, "status")
                    if status is None or RunStatus(status).is_final:
                        return False
                    appended = None
                    if answer is not None:
                        history = await self._history.read(history_id, client=pipe)
                        kept = answer_of(history, answer.turn_id)
                        fields["answer"] = (kept or answer).content
                        # A history reset meanwhile (`/tutor new`) is not brought back.
                        asked = up_to_question(history, answer.turn_id) is not None
                        appended = answer if kept is None and asked else None
                    pipe.multi()
                    if appended is not None:
                        self._history.queue_append(pipe, history_id, appended)
                    self._queue_record(pipe, history_id, run_id, **fields)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue
        raise WatchError(f"chat run {run_id}: its record kept changing while being written")

    def _content(self, message: ChatMessage) -> str | list[dict[str, Any]]:
        """A message's content: its text, with the turn's images as `image_url` parts."""
        images = self._images.get(message.turn_id) if message.role == "user" else None
        if not images:
            return message.content
        parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
        parts.extend({"type": "image_url", "image_url": {"url": url}} for url in images)
        return parts

    async def _stream(self, messages: list[ChatMessage], streamed: Streamed) -> None:
        """Stream one completion into `streamed`; its finish reason stays None if it broke off.

        The text arrives in `streamed.parts` as it is generated, for `run_state` to show.
        """
        request: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": self._content(m)} for m in messages],
            "stream": True,
            self._token_field.value: self._max_output_tokens,
        }
        with translated_errors("chat completion"):
            stream = await self._open(request)
            try:
                # Closed however it ends, so a stopped turn stops the server generating too.
                async with stream:
                    await self._read(stream, streamed)
            except Exception as error:  # the transport's error type varies by SDK version
                log.warning("chat stream broke off: %s", type(error).__name__)
                streamed.finish_reason = None

    async def _open(self, request: dict[str, Any]) -> openai.AsyncStream[ChatCompletionChunk]:
        """Start the completion stream, asking for its usage while the server takes that."""
        asked = self._ask_usage
        try:
            options = {"stream_options": USAGE_OPTION} if asked else {}
            return await self._client.chat.completions.create(**request, **options)
        except openai.APIStatusError as error:
            if not (asked and rejects_parameter(error, "stream_options")):
                raise
            if self._ask_usage:
                self._ask_usage = False
                log.warning(NO_STREAM_OPTIONS)
            return await self._client.chat.completions.create(**request)

    @staticmethod
    async def _read(stream: openai.AsyncStream[ChatCompletionChunk], streamed: Streamed) -> None:
        """Collect the chunks into `streamed` as they arrive."""
        async for chunk in stream:
            usage = usage_of_completion(chunk.usage)
            if usage is not None:
                streamed.usage = {
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "cached_tokens": usage.cached_tokens,
                }
            for choice in chunk.choices:
                if choice.delta.content:
                    streamed.parts.append(choice.delta.content)
                    streamed.changed.set()
                # Not a declared field: search models send citations this way.
                streamed.citations.extend(url_citations(choice.delta))
                streamed.finish_reason = choice.finish_reason or streamed.finish_reason

    async def _record(self, history_id: str, run_id: str, **fields: object) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            self._queue_record(pipe, history_id, run_id, **fields)
            await pipe.execute()

    def _queue_record(self, pipe: Pipeline, history_id: str, run_id: str, **fields: object) -> None:
        key = self._keys.chat_run(run_id, history_id)
        mapping = {name: str(value) for name, value in fields.items() if value is not None}
        pipe.hset(key, mapping=mapping)
        pipe.expire(key, RUN_RECORD_TTL_SECONDS)


async def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has ended, cancelling it again if a cancel was lost.

    Python 3.11's `asyncio.wait_for`, which redis-py writes through, swallows a cancel that
    arrives just as the write completes: the run would go on to the end of its answer.
    """
    for _ in range(CANCEL_ATTEMPTS):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=CANCEL_WAIT_SECONDS)
        if done:
            return
    log.warning("%s did not end when cancelled", task.get_name())


@dataclass
class Streamed:
    """What a completion stream delivered so far."""

    parts: list[str]
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set at every new part
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
