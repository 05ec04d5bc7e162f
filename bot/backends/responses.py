"""The Responses backend (default): a Slack conversation is a Conversations API conversation.

A turn is one background response on that conversation: the server stores the history,
runs the model in the background, and we poll the response's status like a run's.

What a turn costs is bounded by the API's own context management: with a context budget,
server-side compaction past it (`context_management`), else `truncation: "auto"` (which
drops the oldest items only at the model's context window). A server that refuses
`context_management` (a 400 naming it: nothing was created) gets the same create with
truncation instead, and no compaction from then on. Each conversation has its own
`prompt_cache_key`, so its stable prefix is billed at the cached rate.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import openai
from openai.types.conversations import ConversationItem
from openai.types.responses import Response, ResponseStreamEvent

from bot.backends.base import (
    Answer,
    AttachmentKind,
    Citation,
    RunState,
    RunStatus,
    Source,
    StepKind,
    StepStatus,
    ToolStep,
    UserMessage,
)
from bot.backends.file_search import VectorStoreLibrary, file_search_tools
from bot.backends.openai_client import (
    UploadDeletes,
    delete_each,
    delete_unless_gone,
    rejects_parameter,
    translated_errors,
)
from bot.backends.partial_text import FIRST_EVENT_SECONDS, PartialTexts
from bot.backends.provider_files import ProviderFiles
from bot.backends.reported_usage import usage_of_response
from bot.tutor.materials import CourseRef

log = logging.getLogger(__name__)

# Response statuses are a subset of run statuses, with the same meanings.
STATUS_OF: dict[str, RunStatus] = {
    "queued": RunStatus.QUEUED,
    "in_progress": RunStatus.IN_PROGRESS,
    "completed": RunStatus.COMPLETED,
    "failed": RunStatus.FAILED,
    "cancelled": RunStatus.CANCELLED,
    "incomplete": RunStatus.INCOMPLETE,
}
# The run id of a response found after a crash: the id of the user item it answers.
ORPHAN_PREFIX = "after:"
ORPHAN_SEARCH_ITEMS = 20
PART_SEPARATOR = "\n\n"
# Conversation metadata values are at most 512 characters.
METADATA_VALUE_LIMIT = 512
# Finished responses kept for their answer; a turn that never asks for it (it stopped or
# timed out in between) leaves one behind, dropped once this many newer ones are kept.
FINISHED_KEPT = 64
NO_COMPACTION = (
    "the model server refused context_management (server-side compaction): responses use "
    "truncation=auto from now on, which bounds a turn's context only at the model's window, "
    "not at TUTOR_CONTEXT_TOKENS"
)


class ResponsesBackend(UploadDeletes):
    """Runs turns as background responses on a conversation (`conv_…`)."""

    name = "responses"

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        instructions: str,
        max_output_tokens: int,
        context_tokens: int = 0,
        stream: bool = False,
        stream_start_seconds: float = FIRST_EVENT_SECONDS,
        web_search: bool = False,
        vision: bool = True,
        files: ProviderFiles | None = None,
        library: VectorStoreLibrary | None = None,
    ) -> None:
        self._client = client
        self.library = library  # course materials: a vector store per course
        self._partials = PartialTexts(stream, stream_start_seconds)  # the text streamed so far
        self._web_search = web_search
        self._vision = vision
        self._files = files  # uploads for attachments, listed per conversation
        self._model = model
        self._instructions = instructions
        self._max_output_tokens = max_output_tokens
        self._context_tokens = context_tokens  # 0: no budget
        # Compaction until the server refuses it (then truncation, for this process's life).
        self._compaction = context_tokens > 0
        # The last state read of each response that finished with an answer, so `answer`
        # needs no second request (oldest first).
        self._finished: dict[str, Response] = {}

    async def create_conversation(self, conversation_key: str) -> str:
        with translated_errors("create conversation"):
            conversation = await self._client.conversations.create(
                metadata={"slack": conversation_key[:METADATA_VALUE_LIMIT]}
            )
        return conversation.id

    async def add_message(self, conversation_id: str, message: UserMessage) -> str:
        """Nothing to do yet: the message is the input of the response that `start_run` makes."""
        return ""

    async def start_run(self, conversation_id: str, message: UserMessage) -> str:
        """Create the background response; with streaming, read its text as it is written.

        A background response outlives its stream: if the stream breaks, polling carries on.
        """
        compaction = self._compaction
        with translated_errors("upload attachment"):
            content = await self._content(message)
        with translated_errors("create response"):
            try:
                return await self._create(conversation_id, message, content, compaction)
            except openai.APIStatusError as error:
                if not (compaction and rejects_parameter(error, "context_management")):
                    raise
                if self._compaction:
                    self._compaction = False
                    log.warning(NO_COMPACTION)
                return await self._create(conversation_id, message, content, compaction=False)

    async def _content(self, message: UserMessage) -> str | list[dict[str, Any]]:
        """The user's message as input: its text, then each attachment (an image as a data
        URL, a PDF as a file uploaded for the conversation, `purpose=user_data`, a Word
        document as its text)."""
        if not message.attachments:
            return message.text
        parts: list[dict[str, Any]] = [{"type": "input_text", "text": message.text}]
        for attachment in message.attachments:
            if attachment.kind is AttachmentKind.IMAGE and self._vision:
                url = attachment.data_url()
                parts.append({"type": "input_image", "image_url": url, "detail": "auto"})
            elif attachment.kind is AttachmentKind.PDF:
                uploaded = await self._client.files.create(
                    file=(attachment.name, attachment.data, attachment.mimetype),
                    purpose="user_data",
                )
                if self._files is not None and message.conversation_key:
                    await self._files.remember(message.conversation_key, uploaded.id)
                parts.append({"type": "input_file", "file_id": uploaded.id})
            elif attachment.kind is AttachmentKind.WORD:
                parts.append({"type": "input_text", "text": attachment.as_text()})
        return parts

    async def _create(
        self,
        conversation_id: str,
        message: UserMessage,
        content: str | list[dict[str, Any]],
        compaction: bool,
    ) -> str:
        request: dict[str, Any] = {
            "model": self._model,
            "conversation": conversation_id,
            "input": [{"role": "user", "content": content}],
            "instructions": message.instructions_over(self._instructions),
            "background": True,
            "store": True,
            "max_output_tokens": self._max_output_tokens,
            "metadata": {"turn_id": message.turn_id},
            "prompt_cache_key": prompt_cache_key(conversation_id),
        }
        tools = await self.tools_for(message)
        if tools:
            request["tools"] = tools
            if any(tool["type"] == "file_search" for tool in tools):
                request["include"] = ["file_search_call.results"]
        if compaction:
            threshold = self._context_tokens
            request["context_management"] = [{"type": "compaction", "compact_threshold": threshold}]
        else:
            request["truncation"] = "auto"

        async def create(stream: bool) -> Any:
            streaming = {"stream": True} if stream else {}
            return await self._client.responses.create(**request, **streaming)

        return await self._partials.create(
            create, _created_response_id, _text_delta, _final_response, _response_of, _step_of
        )

    async def tools_for(self, message: UserMessage) -> list[dict[str, Any]]:
        """The tools of this turn's response: `file_search` over its course's materials, and
        the web with TUTOR_WEB_SEARCH."""
        tools: list[dict[str, Any]] = []
        course = CourseRef.parse(message.course)
        if self.library is not None and course is not None:
            tools += file_search_tools(await self.library.vector_store_ids(course))
        if self._web_search:
            tools.append({"type": "web_search"})
        return tools

    async def find_message(self, conversation_id: str, message: UserMessage) -> str | None:
        return ""  # the message travels with the response: there is nothing to add twice

    async def find_run(self, conversation_id: str, message: UserMessage) -> str | None:
        """The response a crashed attempt created for `message`, found through the conversation.

        Responses cannot be listed, but a created response has put its input on the
        conversation: if the newest user message there is ours, the create happened and the
        response is followed through the items that come after it (`after:<item id>`).
        """
        items = await self._newest_items(conversation_id)
        for item in items:
            if _role(item) == "user":
                if _text(item).strip() == message.text.strip():
                    return f"{ORPHAN_PREFIX}{getattr(item, 'id', '')}"
                return None
        return None

    async def run_state(self, conversation_id: str, run_id: str) -> RunState:
        if run_id.startswith(ORPHAN_PREFIX):
            replies = await self._replies_after(conversation_id, run_id)
            return RunState(RunStatus.COMPLETED if replies else RunStatus.IN_PROGRESS)
        with translated_errors("check response"):
            raw = await self._partials.unless_ended(
                run_id, lambda: self._client.responses.with_raw_response.retrieve(run_id)
            )
        response, poll_after = (raw, None) if isinstance(raw, Response) else _parsed(raw)
        state = self._state_of(run_id, response)
        if state.status.is_final:
            self._partials.forget(run_id)
        return RunState(
            state.status,
            state.error,
            state.usage,
            state.partial_text,
            poll_after=poll_after,
            steps=state.steps,
        )

    def streamed_state(self, run_id: str) -> RunState | None:
        latest = self._partials.latest(run_id)
        return None if latest is None else self._state_of(run_id, latest)

    def stream_changed(self, run_id: str) -> asyncio.Event | None:
        return self._partials.changed(run_id)

    def _state_of(self, run_id: str, response: Response) -> RunState:
        """The run state a response object shows (kept when an answer is to be read from it)."""
        status = STATUS_OF.get(response.status or "", RunStatus.IN_PROGRESS)
        partial = ""
        if status in (RunStatus.COMPLETED, RunStatus.INCOMPLETE):  # `answer` comes next
            self._keep_finished(run_id, response)
        elif not status.is_final:
            partial = self._partials.text(run_id)
        steps = _merged_steps(_steps_in_output(response), self._partials.steps(run_id))
        error = None
        if response.error is not None:
            error = response.error.message
        elif response.incomplete_details is not None:
            error = f"incomplete: {response.incomplete_details.reason}"
        return RunState(
            status,
            error=error,
            usage=usage_of_response(response),
            partial_text=partial,
            steps=steps,
        )

    def _keep_finished(self, run_id: str, response: Response) -> None:
        self._finished.pop(run_id, None)
        self._finished[run_id] = response
        while len(self._finished) > FINISHED_KEPT:
            del self._finished[next(iter(self._finished))]

    async def answer(self, conversation_id: str, run_id: str, after_message_id: str) -> Answer:
        if run_id.startswith(ORPHAN_PREFIX):
            replies = await self._replies_after(conversation_id, run_id)
            return Answer("\n\n".join(_text(item) for item in replies))
        response = self._finished.pop(run_id, None)
        if response is None:
            with translated_errors("fetch answer"):
                response = await self._client.responses.retrieve(run_id)
        texts: list[str] = []
        citations: list[Citation] = []
        offset = 0  # where the part starts in the joined text
        for item in response.output:
            if item.type != "message":
                continue
            for part in item.content:
                if part.type == "output_text":
                    offset += len(PART_SEPARATOR) if texts else 0
                    texts.append(part.text)
                    citations.extend(_citation(a, offset) for a in part.annotations)
                    offset += len(part.text)
        text = PART_SEPARATOR.join(texts)
        return Answer(text, usage=usage_of_response(response), citations=citations)

    async def cancel_run(self, conversation_id: str, run_id: str) -> None:
        if run_id.startswith(ORPHAN_PREFIX):
            return  # its id was never known, so it cannot be cancelled; it ends by itself
        self._finished.pop(run_id, None)
        self._partials.forget(run_id)
        try:
            with translated_errors("cancel response"):
                await self._client.responses.cancel(run_id)
        except Exception as error:  # a response that already ended cannot be cancelled: fine
            log.info("cancel of response %s not applied: %s", run_id, error)

    def release(self, run_id: str) -> None:
        self._finished.pop(run_id, None)
        self._partials.forget(run_id)

    async def delete_conversation(self, conversation_id: str, run_ids: Sequence[str]) -> None:
        """Its stored responses, then the conversation: deleting a conversation leaves its
        items, which live on as the responses' input and output. The bot adds no files.

        A response a crash left unrecorded (`after:` ids) cannot be named, so it stays.
        """
        stored = [run_id for run_id in run_ids if not run_id.startswith(ORPHAN_PREFIX)]
        for run_id in stored:
            self.release(run_id)
        await delete_each("delete response", stored, self._client.responses.delete)
        await delete_unless_gone(
            "delete conversation", lambda: self._client.conversations.delete(conversation_id)
        )

    async def forget_run(self, conversation_id: str, run_id: str) -> None:
        """Nothing kept here: the response stays at the provider with its conversation."""

    async def _newest_items(self, conversation_id: str) -> list[ConversationItem]:
        with translated_errors("look for response"):
            page = await self._client.conversations.items.list(
                conversation_id, order="desc", limit=ORPHAN_SEARCH_ITEMS
            )
        return list(page.data)

    async def _replies_after(self, conversation_id: str, run_id: str) -> list[ConversationItem]:
        """The assistant messages after the user item named in `run_id`, oldest first."""
        user_item_id = run_id.removeprefix(ORPHAN_PREFIX)
        replies: list[ConversationItem] = []
        for item in await self._newest_items(conversation_id):
            if getattr(item, "id", None) == user_item_id:
                return list(reversed(replies))
            if _role(item) == "assistant":
                replies.append(item)
        return []  # the user item scrolled out of sight: treat as not answered yet

    async def close(self) -> None:
        await self._partials.close()
        await self._client.close()


def prompt_cache_key(conversation_id: str) -> str:
    """The cache bucket of a conversation's turns: stable, and naming nothing but a hash."""
    return "tutor-" + hashlib.sha256(conversation_id.encode()).hexdigest()[:32]


def _created_response_id(event: ResponseStreamEvent) -> str | None:
    return event.response.id if event.type == "response.created" else None


def _response_of(event: ResponseStreamEvent) -> Response | None:
    """The response as an event about its state carries it (created, queued, in progress…)."""
    response = getattr(event, "response", None)
    return response if isinstance(response, Response) else None


def _parsed(raw: Any) -> tuple[Response, float | None]:
    """The response of a raw reply, and how long the server asks us to wait before the next
    check (`openai-poll-after-ms`), if it says."""
    hint = raw.headers.get("openai-poll-after-ms")
    poll_after = int(hint) / 1000 if hint and hint.isdigit() else None
    return raw.parse(), poll_after


def _final_response(event: ResponseStreamEvent) -> Response | None:
    """The response as the event that ends its stream carries it."""
    if event.type in ("response.completed", "response.failed", "response.incomplete"):
        return event.response
    return None


def _text_delta(event: ResponseStreamEvent) -> str | None:
    return event.delta if event.type == "response.output_text.delta" else None


# The stream events of tool calls, as (step kind, step status).
STEP_EVENTS: dict[str, tuple[StepKind, StepStatus]] = {
    "response.web_search_call.in_progress": (StepKind.WEB_SEARCH, StepStatus.IN_PROGRESS),
    "response.web_search_call.searching": (StepKind.WEB_SEARCH, StepStatus.IN_PROGRESS),
    "response.web_search_call.completed": (StepKind.WEB_SEARCH, StepStatus.COMPLETE),
    "response.file_search_call.in_progress": (StepKind.FILE_SEARCH, StepStatus.IN_PROGRESS),
    "response.file_search_call.searching": (StepKind.FILE_SEARCH, StepStatus.IN_PROGRESS),
    "response.file_search_call.completed": (StepKind.FILE_SEARCH, StepStatus.COMPLETE),
}
STEP_ITEMS = {"web_search_call": StepKind.WEB_SEARCH, "file_search_call": StepKind.FILE_SEARCH}
# Where a url_citation found while streaming is shown: as a source of the last search.
CITED = "cited"


def _step_of(event: ResponseStreamEvent) -> ToolStep | Source | None:
    """A tool call's progress an event tells, or a source the answer cites."""
    known = STEP_EVENTS.get(event.type)
    if known is not None:
        return ToolStep(str(getattr(event, "item_id", "")), known[0], known[1])
    if event.type == "response.output_text.annotation.added":
        annotation = getattr(event, "annotation", None)  # a model (SDK 3.x), or a dict
        if isinstance(annotation, dict):
            kind, url, title = (
                annotation.get("type"),
                annotation.get("url"),
                annotation.get("title"),
            )
        else:
            kind = getattr(annotation, "type", None)
            url, title = getattr(annotation, "url", None), getattr(annotation, "title", None)
        if kind == "url_citation" and url:
            return Source(str(title or url), str(url))
    return None


# A tool call item's status → its step's (the API streams no event for a failed search).
ITEM_STEP_STATUS = {
    "completed": StepStatus.COMPLETE,
    "incomplete": StepStatus.COMPLETE,  # cut short with the response: it ran
    "failed": StepStatus.ERROR,
}


def _steps_in_output(response: Response) -> tuple[ToolStep, ...]:
    """The tool calls a response's output shows (polled, or its final state)."""
    steps: list[ToolStep] = []
    for item in response.output:
        kind = STEP_ITEMS.get(item.type)
        if kind is not None:
            status = ITEM_STEP_STATUS.get(getattr(item, "status", ""), StepStatus.IN_PROGRESS)
            steps.append(ToolStep(str(getattr(item, "id", "")), kind, status))
    return tuple(steps)


def _merged_steps(
    polled: tuple[ToolStep, ...], streamed: tuple[ToolStep, ...]
) -> tuple[ToolStep, ...]:
    """Both views of the run's tool calls, by id: the streamed one (with sources) wins,
    but a call the output shows ended (complete, or failed) has ended so."""
    merged = {step.id: step for step in streamed}
    for step in polled:
        seen = merged.get(step.id)
        if seen is None:
            merged[step.id] = step
        elif step.status is not StepStatus.IN_PROGRESS and step.status is not seen.status:
            merged[step.id] = ToolStep(seen.id, seen.kind, step.status, seen.sources)
    return tuple(merged.values())


def _role(item: ConversationItem) -> str | None:
    return getattr(item, "role", None) if item.type == "message" else None


def _text(item: ConversationItem) -> str:
    """The text of a message item (input or output text parts)."""
    parts = getattr(item, "content", None) or []
    return "".join(getattr(part, "text", "") or "" for part in parts)


def _citation(annotation: object, offset: int) -> Citation:
    """A citation from a url_citation (a passage), or a file citation (a point in the text)."""
    title = getattr(annotation, "title", None) or getattr(annotation, "filename", None)
    url = getattr(annotation, "url", None)
    label = str(title or url or getattr(annotation, "file_id", "") or "source")
    start = getattr(annotation, "start_index", None)
    end = getattr(annotation, "end_index", None)
    if start is None or end is None:
        start = end = getattr(annotation, "index", None)
    if start is None or end is None:
        return Citation(label, url)
    return Citation(label, url, offset + start, offset + end)
