"""The Responses protocol of the OpenAI stand-in: POST /responses (plain, background, streamed).

A background response's status comes from the clock; a streamed one is driven by its stream.
Either way it becomes final in `_finish`, once, which also appends its output to the conversation.

The prompt is kept within the model's context as the API does (`bot.local.context_window`):
with `context_management` compaction, a prompt past `compact_threshold` has its history
replaced by a compaction item (output before the message, and kept on the conversation, whose
later prompts start there); past the context window, `truncation: "disabled"` (the default)
answers 400 `context_length_exceeded` and `"auto"` drops the oldest history. Usage counts the
prompt the model read, cached as far as it repeats the previous prompt of the same model and
`prompt_cache_key`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.local.context_window import (
    MIN_COMPACT_THRESHOLD,
    ContextLimits,
    Part,
    PromptCache,
    bucket,
    compacted,
    prompt_tokens,
    truncated,
)
from bot.local.openai_common import (
    JSON,
    ApiError,
    Pacing,
    Schedule,
    Timers,
    break_connection,
    check_metadata,
    cut_point,
    json_body,
    missing,
    new_id,
    open_event_stream,
    sleep_until,
    sse,
)
from bot.local.openai_conversations import (
    Conversation,
    ConversationsAPI,
    compaction_item,
    message_item,
    messages_of,
    parts_of,
    stored_items,
    text_part,
)
from bot.local.openai_files import FilesAPI, file_search_call, quoting, searched_stores
from bot.local.scripted_model import QuizScript, Reply, pieces, quiz_reply, respond

# How long the scripted web search takes, streamed (so a reply can show it at work).
SEARCH_SECONDS = 0.2

ACTIVE = frozenset({"queued", "in_progress"})
FINAL = frozenset({"completed", "failed", "cancelled", "incomplete"})
FAILURE = {"code": "server_error", "message": "The model failed (scripted)."}
LOCKED = (
    "Another process is currently operating on this conversation. Please retry after a few seconds."
)
ECHOED = ("instructions", "max_output_tokens", "previous_response_id", "prompt_cache_key")
OVERFLOW = (
    "Your input exceeds the context window of this model. Please adjust your input and try again."
)
NO_COMPACTION = "Unsupported parameter: 'context_management' is not supported with this request."
DEFAULT_COMPACT_SHARE = 0.8  # of the context window, where a compaction entry names no threshold


@dataclass
class ResponseJob:
    """One response: its answer is decided at creation, its status by the clock or its stream."""

    id: str
    request: JSON
    schedule: Schedule
    reply: Reply
    history: list[Part]  # what a response chained to this one reads before its own input
    background: bool
    store: bool
    conversation_id: str | None
    metadata: dict[str, str]
    status: str
    item_id: str = field(default_factory=lambda: new_id("msg_"))
    output: list[JSON] = field(default_factory=list)
    ended_at: int | None = None
    streaming: bool = False
    compaction: JSON | None = None  # the compaction item it outputs before its message
    search: JSON | None = None  # the web_search_call item it outputs before its message
    file_search: JSON | None = None  # the file_search_call item it outputs before its message
    cached_tokens: int = 0
    # When it became final, on the monotonic clock (benchmarks time what follows from here):
    # a streamed response when its stream says so, another when its schedule says.
    finished_at: float | None = None

    @property
    def message_index(self) -> int:
        """Where its message stands in its output (after a compaction item, if any)."""
        return len(self.items_before) + (self.search is not None)

    @property
    def items_before(self) -> list[JSON]:
        """The items its output has before its message and its web search, if any (a
        compaction, played whole; a file search, played with its progress events)."""
        return [item for item in (self.compaction, self.file_search) if item is not None]

    @property
    def outcome(self) -> str:
        steer = self.reply.directives
        if steer.fail:
            return "failed"
        return "incomplete" if steer.incomplete else "completed"


def response_json(job: ResponseJob) -> JSON:
    """The response as the API shows it (the SDK's `Response`)."""
    request = job.request
    return {
        "id": job.id,
        "object": "response",
        "created_at": job.schedule.created_at,
        "status": job.status,
        "background": job.background,
        "completed_at": job.ended_at if job.status == "completed" else None,
        "error": dict(FAILURE) if job.status == "failed" else None,
        "incomplete_details": _incomplete_details(job),
        **{name: request.get(name) for name in ECHOED},
        "max_tool_calls": None,
        "model": request["model"],
        "output": job.output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "conversation": {"id": job.conversation_id} if job.conversation_id else None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "temperature": request.get("temperature", 1.0),
        "text": {"format": text_format(request.get("text")), "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0),
        "top_logprobs": 0,
        "truncation": request.get("truncation") or "disabled",
        "usage": _usage(job.reply, job.cached_tokens) if job.output else None,
        "user": None,
        "metadata": job.metadata,
        "safety_identifier": None,
    }


def _incomplete_details(job: ResponseJob) -> JSON | None:
    return {"reason": "max_output_tokens"} if job.status == "incomplete" else None


def _usage(reply: Reply, cached_tokens: int) -> JSON:
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
        "output_tokens": reply.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.total_tokens,
    }


def output_message(job: ResponseJob, status: str, text: str | None) -> JSON:
    """The assistant message the response outputs (no content yet when `text` is None)."""
    content = [] if text is None else [text_part("assistant", text)]
    if text is not None and text == job.reply.text and job.reply.citations:
        content[0]["annotations"] = [
            {"type": "file_citation", "file_id": c.file_id, "filename": c.title, "index": c.end}
            if c.file_id else
            {"type": "url_citation", "start_index": c.start, "end_index": c.end,
             "title": c.title, "url": c.url}
            for c in job.reply.citations
        ]  # fmt: skip
    return {**message_item("assistant", content, status), "id": job.item_id}


class EventWriter:
    """Writes a response's stream events, numbering them as the API does."""

    def __init__(self, stream: web.StreamResponse, job: ResponseJob) -> None:
        self.stream = stream
        self.job = job
        self.sequence = 0

    async def send(self, kind: str, **fields: Any) -> None:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        await self.stream.write(sse(event, event=kind))

    async def state(self, kind: str) -> None:
        """An event carrying the whole response, as it is now."""
        await self.send(kind, response=response_json(self.job))

    async def part(self, kind: str, text: str, **fields: Any) -> None:
        place = {
            "item_id": self.job.item_id,
            "output_index": self.job.message_index,
            "content_index": 0,
        }
        await self.send(kind, **place, **fields, part=text_part("assistant", text))


class ResponsesAPI:
    """State and handlers of /responses; owns the conversations it reads and extends."""

    def __init__(
        self,
        pacing: Pacing,
        timers: Timers,
        limits: ContextLimits | None = None,
        quiz: QuizScript | None = None,
        files: FilesAPI | None = None,
    ) -> None:
        self.files = files or FilesAPI()
        self.pacing = pacing
        self.timers = timers
        self.limits = limits or ContextLimits()
        self.quiz = quiz or QuizScript()
        self.files = files  # the vector stores file_search reads
        self.cache = PromptCache()
        # Set by a test to hold every web search in `searching` until it is set.
        self.search_gate: asyncio.Event | None = None
        self.text_gate: asyncio.Event | None = None  # see OpenAIStandIn.hold_answer_text
        self.jobs: dict[str, ResponseJob] = {}
        self.conversations_api = ConversationsAPI(self)

    @property
    def conversations(self) -> dict[str, Conversation]:
        return self.conversations_api.conversations

    def routes(self) -> list[web.RouteDef]:
        return [
            *self.conversations_api.routes(),
            web.post("/v1/responses", self.create),
            web.get("/v1/responses/{response_id}", self.get),
            web.delete("/v1/responses/{response_id}", self.delete),
            web.post("/v1/responses/{response_id}/cancel", self.cancel),
        ]

    # -- handlers --------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        job = self._new_job(body)
        if body.get("stream"):
            return await self._stream(request, job)
        if job.background:
            self._follow(job)
            return web.json_response(response_json(job))
        await sleep_until(job.schedule.finished)
        self.refresh(job)
        return web.json_response(response_json(job))

    async def get(self, request: web.Request) -> web.Response:
        if request.query.get("stream") == "true":
            raise ApiError(400, "The stand-in does not replay streams: retrieve without stream.")
        job = self._job(request)
        self.refresh(job)
        return web.json_response(response_json(job))

    async def delete(self, request: web.Request) -> web.Response:
        job = self._job(request)
        del self.jobs[job.id]
        return web.json_response({"id": job.id, "object": "response.deleted", "deleted": True})

    async def cancel(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if not job.background:
            raise ApiError(400, "Only responses created with background=true can be cancelled.")
        self.refresh(job)
        if job.status in FINAL:
            raise ApiError(400, f"Cannot cancel a response with status '{job.status}'.")
        job.status = "cancelled"
        job.ended_at = job.schedule.epoch(time.monotonic())
        return web.json_response(response_json(job))

    def _job(self, request: web.Request) -> ResponseJob:
        response_id = request.match_info["response_id"]
        job = self.jobs.get(response_id)
        if job is None or not job.store:
            raise ApiError(404, f"Response with id '{response_id}' not found.")
        return job

    # -- creation --------------------------------------------------------------------------

    def _new_job(self, body: JSON) -> ResponseJob:
        """Validate the request, decide the answer, and put the input on the conversation."""
        if not body.get("model"):
            raise missing("model")
        if "input" not in body:
            raise missing("input")
        background, store = bool(body.get("background")), body.get("store") is not False
        if background and not store:
            raise ApiError(400, "Background mode requires store=true.", param="background")
        structured = text_format(body.get("text"))["type"] == "json_schema"
        threshold = self._compact_threshold(body.get("context_management"))
        truncation = _truncation(body.get("truncation"))
        conversation = self._conversation(body)
        items = stored_items(body["input"], "input")
        earlier, new = self._history(body, conversation), messages_of(items, self.files.name_of)
        searches = _searches_web(body.get("tools"))
        instructions = self._instructions(body)
        prompt: list[Part] = [*instructions, *earlier, *new]
        history: list[Part] = [*earlier, *new]
        compaction = None
        if threshold is not None and earlier and prompt_tokens(prompt) > threshold:
            prompt = [*instructions, compacted(earlier), *new]
            summary = compacted(history)  # what the compaction item stands for
            history, compaction = [summary], compaction_item(summary)
        prompt = self._within_window(prompt, truncation, keep_last=len(new))
        if structured:
            reply = quiz_reply(prompt, self.quiz.next_fault())
        else:  # a model with the web_search tool searches, and cites what it found
            reply = respond(prompt, cite=searches)
        file_search = None
        stores = searched_stores(body.get("tools"))
        if stores and self.files is not None and new:
            question = new[-1][1]
            hit = self.files.search(stores, question)
            reply = reply if hit is None else quoting(reply, hit)
            file_search = file_search_call(question, hit)
            if "file_search_call.results" not in (body.get("include") or []):
                file_search["results"] = None
        job = ResponseJob(
            id=new_id("resp_"),
            request=body,
            schedule=self._schedule(background, reply),
            reply=reply,
            history=history,
            background=background,
            store=store,
            conversation_id=conversation.id if conversation else None,
            metadata=check_metadata(body.get("metadata")),
            status="queued" if background else "in_progress",
            compaction=compaction,
            search=_search_item(new) if searches and not structured else None,
            file_search=file_search,
            cached_tokens=self.cache.cached_tokens(
                bucket(body["model"], body.get("prompt_cache_key")), prompt
            ),
        )
        if conversation is not None:
            conversation.items.extend(items)
            conversation.response_ids.append(job.id)
        self.jobs[job.id] = job
        return job

    def _conversation(self, body: JSON) -> Conversation | None:
        value = body.get("conversation")
        if value is None:
            return None
        if body.get("previous_response_id"):
            raise ApiError(
                400,
                "Mutually exclusive parameters: 'previous_response_id' and 'conversation'.",
                param="conversation",
            )
        conversation_id = value.get("id") if isinstance(value, dict) else value
        conversation = self.conversations_api.conversation(str(conversation_id))
        self.ensure_unlocked(conversation)
        return conversation

    def _compact_threshold(self, value: Any) -> int | None:
        """The threshold `context_management` asks compaction at; 400 where it is refused."""
        if value is None:
            return None
        param = "context_management"
        if not self.limits.accepts_compaction:
            raise ApiError(400, NO_COMPACTION, code="unsupported_parameter", param=param)
        if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
            raise ApiError(400, f"Invalid '{param}': expected an array of objects.", param=param)
        thresholds = []
        for index, entry in enumerate(value):
            if entry.get("type") != "compaction":
                raise ApiError(
                    400,
                    f"Invalid value for '{param}[{index}].type': only 'compaction' is supported.",
                    code="invalid_value",
                    param=f"{param}[{index}].type",
                )
            threshold = entry.get("compact_threshold")
            if threshold is None:
                threshold = int(self.limits.window_tokens * DEFAULT_COMPACT_SHARE)
            if not isinstance(threshold, int) or threshold < MIN_COMPACT_THRESHOLD:
                raise ApiError(
                    400,
                    f"Invalid '{param}[{index}].compact_threshold': integer below minimum value. "
                    f"Expected a value >= {MIN_COMPACT_THRESHOLD}, but got {threshold} instead.",
                    code="integer_below_min_value",
                    param=f"{param}[{index}].compact_threshold",
                )
            thresholds.append(threshold)
        return min(thresholds, default=None)

    def _within_window(self, prompt: list[Part], truncation: str, keep_last: int) -> list[Part]:
        """The prompt as the model's context window lets it be read (maybe truncated), or 400."""
        limit = self.limits.window_tokens
        if truncation == "auto":
            prompt = truncated(prompt, limit, keep_last)
        if prompt_tokens(prompt) > limit:
            raise ApiError(400, OVERFLOW, code="context_length_exceeded", param="input")
        return prompt

    def _history(self, body: JSON, conversation: Conversation | None) -> list[Part]:
        """What came before this input: the conversation's items (from its latest compaction
        on) or the previous response's."""
        if conversation is not None:
            return parts_of(conversation.items)
        previous_id = body.get("previous_response_id")
        if not previous_id:
            return []
        previous = self.jobs.get(previous_id)
        if previous is None or not previous.store:
            raise ApiError(
                404,
                f"Previous response with id '{previous_id}' not found.",
                param="previous_response_id",
            )
        self.refresh(previous)
        answered: list[Part] = [("assistant", previous.reply.text)] if previous.output else []
        return previous.history + answered

    @staticmethod
    def _instructions(body: JSON) -> list[tuple[str, str]]:
        instructions = body.get("instructions")
        return [("system", instructions)] if isinstance(instructions, str) and instructions else []

    def _schedule(self, background: bool, reply: Reply) -> Schedule:
        """Background work queues and takes `in_progress_seconds`; other work only `[slow:…]`."""
        slow = reply.directives.slow
        if background:
            working = self.pacing.in_progress_seconds if slow is None else slow
            return Schedule.begin(self.pacing.queued_seconds, working)
        return Schedule.begin(0.0, slow or 0.0)

    def _follow(self, job: ResponseJob) -> None:
        self.timers.at(job.schedule.started, lambda: self.refresh(job))
        self.timers.at(job.schedule.finished, lambda: self.refresh(job))

    # -- streaming -------------------------------------------------------------------------

    async def _stream(self, request: web.Request, job: ResponseJob) -> web.StreamResponse:
        """Play the response as events; an interrupted background response carries on."""
        job.streaming = True
        stream = await open_event_stream(request)
        try:
            await self._play(request, job, EventWriter(stream, job))
        finally:
            job.streaming = False
            if job.status not in FINAL and job.background:
                self.refresh(job)
                self._follow(job)
            elif job.status not in FINAL:
                job.status = "cancelled"
                job.ended_at = job.schedule.epoch(time.monotonic())
        return stream

    async def _play(self, request: web.Request, job: ResponseJob, events: EventWriter) -> None:
        await events.state("response.created")
        if job.background:
            await events.state("response.queued")
            await sleep_until(job.schedule.started)
        job.status = "in_progress"
        await events.state("response.in_progress")
        if job.outcome == "failed":
            await sleep_until(job.schedule.finished)
            self._finish(job)
            await events.state("response.failed")
            return
        await self._play_text(request, job, events)
        if job.status in FINAL:  # cancelled while streaming
            return
        self._finish(job)
        index = job.message_index
        await events.send("response.output_item.done", output_index=index, item=job.output[index])
        await events.state(f"response.{job.status}")

    async def _play_text(self, request: web.Request, job: ResponseJob, events: EventWriter) -> None:
        """The message's events up to its text being done, spread over the working time (a
        compaction item, if any, comes whole before it)."""
        for position, before in enumerate(job.items_before):
            if before.get("type") == "file_search_call":
                await self._play_tool_call(events, before, position, "file_search_call")
                continue
            for kind in ("response.output_item.added", "response.output_item.done"):
                await events.send(kind, output_index=position, item=before)
        if job.search is not None:
            index = job.message_index - 1
            await self._play_tool_call(events, job.search, index, "web_search_call")
        index = job.message_index
        item = output_message(job, "in_progress", None)
        await events.send("response.output_item.added", output_index=index, item=item)
        await events.part("response.content_part.added", "")
        chunks = pieces(job.reply.text)
        start = time.monotonic()
        step = max(0.0, job.schedule.finished - start) / max(1, len(chunks))
        place = {"item_id": job.item_id, "output_index": index, "content_index": 0}
        cut = job.reply.directives.cut
        for index, chunk in enumerate(chunks):
            if cut and index == cut_point(len(chunks)):
                break_connection(request)
            await events.send("response.output_text.delta", **place, delta=chunk, logprobs=[])
            if self.text_gate is not None:
                await self.text_gate.wait()
            await sleep_until(start + step * (index + 1))
        if cut:
            break_connection(request)
        text = job.reply.text
        for number, citation in enumerate(job.reply.citations):
            annotation = {
                "type": "url_citation",
                "start_index": citation.start,
                "end_index": citation.end,
                "title": citation.title,
                "url": citation.url,
            }
            await events.send(
                "response.output_text.annotation.added",
                **place, annotation_index=number, annotation=annotation,
            )  # fmt: skip
        await events.send("response.output_text.done", **place, text=text, logprobs=[])
        await events.part("response.content_part.done", text)

    async def _play_tool_call(self, events: EventWriter, item: JSON, index: int, kind: str) -> None:
        """A tool call item's events, as the API streams them (`kind`: web_search_call,
        file_search_call), taking a moment: added, in_progress, searching, completed, done."""
        place = {"item_id": item["id"], "output_index": index}
        working = {**item, "status": "in_progress"}
        if kind == "file_search_call":
            working["results"] = None  # known once the search is done
        await events.send("response.output_item.added", output_index=index, item=working)
        await events.send(f"response.{kind}.in_progress", **place)
        await events.send(f"response.{kind}.searching", **place)
        if self.search_gate is not None:
            await self.search_gate.wait()
        else:
            await sleep_until(time.monotonic() + SEARCH_SECONDS)
        await events.send(f"response.{kind}.completed", **place)
        done = {**item, "status": "completed"}
        await events.send("response.output_item.done", output_index=index, item=done)

    # -- the clock -------------------------------------------------------------------------

    def refresh(self, job: ResponseJob) -> None:
        """Bring a background (or plain) response's status up to the clock."""
        if job.status in FINAL or job.streaming:
            return
        moment = time.monotonic()
        if moment < job.schedule.started:
            return
        job.status = "in_progress"
        if moment >= job.schedule.finished:
            self._finish(job)

    def _finish(self, job: ResponseJob) -> None:
        """The one place a response becomes final; its output joins the conversation here."""
        if job.status in FINAL:
            return
        job.status = job.outcome
        job.ended_at = job.schedule.epoch(job.schedule.finished)
        job.finished_at = time.monotonic() if job.streaming else job.schedule.finished
        if job.status == "failed":
            return
        search = [] if job.search is None else [{**job.search, "status": "completed"}]
        job.output = [*job.items_before, *search, output_message(job, job.status, job.reply.text)]
        conversation = self.conversations.get(job.conversation_id or "")
        if conversation is not None:
            conversation.items.extend(dict(item) for item in job.output)

    def refresh_conversation(self, conversation: Conversation) -> None:
        for response_id in conversation.response_ids:
            if response_id in self.jobs:
                self.refresh(self.jobs[response_id])

    def ensure_unlocked(self, conversation: Conversation) -> None:
        """400 `conversation_locked` while another response works on the conversation."""
        self.refresh_conversation(conversation)
        for response_id in conversation.response_ids:
            job = self.jobs.get(response_id)
            if job is not None and job.status in ACTIVE:
                raise ApiError(400, LOCKED, code="conversation_locked")


def text_format(value: Any) -> JSON:
    """The request's `text.format` (plain text when absent), checked as the API checks it: a
    `json_schema` format needs a `name` and a `schema` object. (The scripted model writes a
    quiz for any schema: it is the bot's only use of one.)"""
    if value is None:
        return {"type": "text"}
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid type for 'text': expected an object.", param="text")
    fmt = value.get("format") or {"type": "text"}
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        raise ApiError(400, "Invalid value for 'text.format.type'.", param="text.format.type")
    if fmt["type"] == "json_schema":
        for name in ("name", "schema"):
            if not fmt.get(name):
                raise ApiError(
                    400,
                    f"Missing required parameter: 'text.format.{name}'.",
                    code="missing_required_parameter",
                    param=f"text.format.{name}",
                )
        if not isinstance(fmt["schema"], dict):
            raise ApiError(
                400, "Invalid type for 'text.format.schema'.", param="text.format.schema"
            )
    return dict(fmt)


def _searches_web(tools: Any) -> bool:
    """Whether the request gives the model the web_search tool (400 for a malformed list)."""
    if tools is None:
        return False
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise ApiError(400, "Invalid 'tools': expected an array of objects.", param="tools")
    return any(t.get("type") in ("web_search", "web_search_preview") for t in tools)


def _search_item(new: list[tuple[str, str]]) -> JSON:
    """The web_search_call the scripted model makes: it searches for the question."""
    query = new[-1][1] if new else ""
    return {
        "id": new_id("ws_"),
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": query[:200]},
    }


def _truncation(value: Any) -> str:
    if value is None:
        return "disabled"
    if value not in ("auto", "disabled"):
        raise ApiError(
            400,
            f"Invalid value for 'truncation': '{value}'. Expected 'auto' or 'disabled'.",
            code="invalid_value",
            param="truncation",
        )
    return str(value)
