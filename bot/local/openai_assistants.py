"""The Assistants protocol of the OpenAI stand-in: assistants, threads, messages and runs.

A run's status is computed from the clock whenever it is read (and by timers, so state moves on
even unread); its answer is appended to the thread exactly once, when completion is first seen.

A run reads the thread as the API's `truncation_strategy` says (`auto`, the default: the most
recent messages that fit; `last_messages`: that many) within `max_prompt_tokens` (else the
model's context window, `bot.local.context_window`); a prompt still past that limit ends the
run `incomplete` (reason `max_prompt_tokens`) without an answer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import web

from bot.local.context_window import ContextLimits, Part, prompt_tokens, truncated
from bot.local.openai_common import (
    JSON,
    ApiError,
    ListQuery,
    Pacing,
    Schedule,
    Timers,
    check_metadata,
    json_body,
    list_body,
    missing,
    new_id,
    not_found,
    now,
    open_event_stream,
    sleep_until,
    sse,
)
from bot.local.openai_files import FilesAPI, described, quoting
from bot.local.scripted_model import Reply, pieces, respond

ACTIVE = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
FINAL = frozenset({"cancelled", "failed", "completed", "incomplete", "expired"})
EXPIRY_SECONDS = 600
MIN_PROMPT_TOKENS = 256  # the API's lower bound for `max_prompt_tokens`
PROMPT_LIMITED = "max_prompt_tokens"
FAILURE = {"code": "server_error", "message": "The model failed (scripted)."}
RUN_PARAMS = (
    "max_prompt_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "response_format",
    "tool_choice",
    "parallel_tool_calls",
)


@dataclass
class Thread:
    """A thread and everything on it, in creation order."""

    id: str
    created_at: int
    metadata: dict[str, str]
    messages: list[JSON] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    tool_resources: JSON = field(default_factory=dict)


@dataclass
class Run:
    """One run: its answer is decided at creation, its status by `schedule` (or a cancel)."""

    id: str
    thread_id: str
    assistant_id: str
    model: str
    instructions: str
    schedule: Schedule
    reply: Reply
    outcome: str
    metadata: dict[str, str]
    params: JSON
    status: str = "queued"
    started_at: int | None = None
    ended_at: int | None = None
    cancel_deadline: float | None = None
    message_id: str | None = None
    streamed_message_id: str | None = None  # the id its stream announced for the answer
    incomplete_reason: str = "max_completion_tokens"  # or PROMPT_LIMITED: then no answer

    @property
    def answers(self) -> bool:
        """Whether it writes an answer (unless it is cancelled first)."""
        return self.outcome in ("completed", "incomplete") and self.incomplete_reason != (
            PROMPT_LIMITED
        )


def outcome_of(reply: Reply) -> str:
    """The final status a run reaches unless it is cancelled first."""
    steer = reply.directives
    if steer.fail:
        return "failed"
    if steer.expire:
        return "expired"
    return "incomplete" if steer.incomplete else "completed"


def run_json(run: Run) -> JSON:
    """The run as the API shows it (the SDK's `Run`)."""
    final = run.status in FINAL
    return {
        "id": run.id,
        "object": "thread.run",
        "created_at": run.schedule.created_at,
        "thread_id": run.thread_id,
        "assistant_id": run.assistant_id,
        "status": run.status,
        "required_action": None,
        "last_error": dict(FAILURE) if run.status == "failed" else None,
        "expires_at": _expires_at(run),
        "started_at": run.started_at,
        "cancelled_at": run.ended_at if run.status == "cancelled" else None,
        "failed_at": run.ended_at if run.status == "failed" else None,
        "completed_at": run.ended_at if run.status == "completed" else None,
        "incomplete_details": _incomplete_details(run),
        "model": run.model,
        "instructions": run.instructions,
        "tools": [],
        "metadata": run.metadata,
        "usage": _usage(run.reply) if final and run.message_id else None,
        "truncation_strategy": run.params.get("truncation_strategy")
        or {"type": "auto", "last_messages": None},
        "max_prompt_tokens": run.params.get("max_prompt_tokens"),
        "max_completion_tokens": run.params.get("max_completion_tokens"),
        "temperature": run.params.get("temperature", 1.0),
        "top_p": run.params.get("top_p", 1.0),
        "response_format": run.params.get("response_format", "auto"),
        "tool_choice": run.params.get("tool_choice", "auto"),
        "parallel_tool_calls": run.params.get("parallel_tool_calls", True),
    }


def _expires_at(run: Run) -> int | None:
    if run.status == "expired":
        return run.ended_at
    return None if run.status in FINAL else run.schedule.created_at + EXPIRY_SECONDS


def _incomplete_details(run: Run) -> JSON | None:
    return {"reason": run.incomplete_reason} if run.status == "incomplete" else None


def _usage(reply: Reply) -> JSON:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.total_tokens,
    }


def message_json(thread_id: str, role: str, content: list[JSON] | str, **extra: Any) -> JSON:
    """A thread message (the SDK's `Message`); `extra` overrides the defaults."""
    created = now()
    message = {
        "id": new_id("msg_"),
        "object": "thread.message",
        "created_at": created,
        "thread_id": thread_id,
        "role": role,
        "content": content,
        "assistant_id": None,
        "run_id": None,
        "attachments": [],
        "metadata": {},
        "status": "completed",
        "completed_at": created,
        "incomplete_at": None,
        "incomplete_details": None,
    }
    return {**message, **extra}


def text_block(text: str) -> JSON:
    return {"type": "text", "text": {"value": text, "annotations": []}}


def cited_text_block(reply: Reply) -> JSON:
    """The reply as a text block; [cite] passages get a marker and a file_citation each."""
    text, annotations, shift = reply.text, [], 0
    for index, citation in enumerate(reply.citations):
        marker = f"【{index}:0†source】"
        at = citation.end + shift
        text = text[:at] + marker + text[at:]
        file_id = citation.file_id or "file-" + citation.title.lower()
        annotations.append({
            "type": "file_citation", "text": marker, "start_index": at,
            "end_index": at + len(marker), "file_citation": {"file_id": file_id},
        })  # fmt: skip
        shift += len(marker)
    return {"type": "text", "text": {"value": text, "annotations": annotations}}


def content_blocks(content: Any) -> list[JSON]:
    """A message's content as the API stores it: a string or text/image parts, as blocks."""
    if isinstance(content, str):
        return [text_block(content)]
    if not isinstance(content, list) or not content:
        raise ApiError(400, "Invalid 'content': expected a string or a list of parts.")
    return [_block(part) for part in content]


def _block(part: Any) -> JSON:
    if not isinstance(part, dict) or part.get("type") not in ("text", "image_file", "image_url"):
        raise ApiError(400, "Invalid content part: expected text, image_file or image_url.")
    kind = part["type"]
    if kind == "text":
        return text_block(str(part.get("text", "")))
    # image_file: {file_id, detail?} (uploaded with purpose vision); image_url: {url, detail?}
    inner = part.get(kind)
    wanted = "file_id" if kind == "image_file" else "url"
    if not isinstance(inner, dict) or not isinstance(inner.get(wanted), str):
        raise ApiError(400, f"Invalid '{kind}': expected an object with '{wanted}'.", param=kind)
    return dict(part)


def message_text(message: JSON, name_of: Callable[[str], str] | None = None) -> str:
    """What the model reads from a thread message (in any of the TextShapes): its text, and
    what it saw in its images (named by `name_of`, a file id → its name)."""
    content = message["content"]
    if isinstance(content, str):
        return content
    read = [
        _block_text(block["text"]) if block["type"] == "text" else described(block, name_of)
        for block in content
    ]
    return "\n".join(text for text in read if text)


def _block_text(text: JSON | str) -> str:
    return text if isinstance(text, str) else str(text["value"])


class TextShape(StrEnum):
    """How the assistant's text is laid out in its messages and stream deltas.

    Only BLOCKS is the documented protocol; the others imitate servers seen to deviate
    from it, so that the bot's tolerance of them can be tested.
    """

    BLOCKS = "blocks"  # [{"type": "text", "text": {"value": ..., "annotations": [...]}}]
    TEXT_AS_STRING = "text-as-string"  # [{"type": "text", "text": "..."}]
    PLAIN_STRING = "plain-string"  # the content is the text itself


def shaped_content(block: JSON, shape: TextShape) -> list[JSON] | str:
    """An assistant message's content (one cited text block) laid out in `shape`."""
    value = block["text"]["value"]
    if shape is TextShape.TEXT_AS_STRING:
        return [{"type": "text", "text": value}]
    if shape is TextShape.PLAIN_STRING:
        return str(value)
    return [block]


def shaped_delta(chunk: str, shape: TextShape) -> list[JSON] | str:
    """A message delta's content holding `chunk`, laid out in `shape`."""
    if shape is TextShape.TEXT_AS_STRING:
        return [{"index": 0, "type": "text", "text": chunk}]
    if shape is TextShape.PLAIN_STRING:
        return chunk
    return [{"index": 0, "type": "text", "text": {"value": chunk}}]


class AssistantsAPI:
    """State and handlers of /assistants and /threads."""

    def __init__(
        self,
        pacing: Pacing,
        timers: Timers,
        limits: ContextLimits | None = None,
        *,
        files: FilesAPI | None = None,
    ) -> None:
        self.files = files  # the vector stores file_search reads
        self.pacing = pacing
        self.timers = timers
        self.limits = limits or ContextLimits()
        self.assistants: dict[str, JSON] = {}
        self.threads: dict[str, Thread] = {}
        self.runs: dict[str, Run] = {}
        self.text_shape = TextShape.BLOCKS

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/assistants", self.create_assistant),
            web.get("/v1/assistants", self.list_assistants),
            web.get("/v1/assistants/{assistant_id}", self.get_assistant),
            web.delete("/v1/assistants/{assistant_id}", self.delete_assistant),
            web.post("/v1/threads", self.create_thread),
            web.get("/v1/threads/{thread_id}", self.get_thread),
            web.post("/v1/threads/{thread_id}", self.update_thread),
            web.delete("/v1/threads/{thread_id}", self.delete_thread),
            web.post("/v1/threads/{thread_id}/messages", self.create_message),
            web.get("/v1/threads/{thread_id}/messages", self.list_messages),
            web.get("/v1/threads/{thread_id}/messages/{message_id}", self.get_message),
            web.post("/v1/threads/{thread_id}/runs", self.create_run),
            web.get("/v1/threads/{thread_id}/runs", self.list_runs),
            web.get("/v1/threads/{thread_id}/runs/{run_id}", self.get_run),
            web.post("/v1/threads/{thread_id}/runs/{run_id}/cancel", self.cancel_run),
        ]

    # -- assistants ------------------------------------------------------------------------

    async def create_assistant(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        if not body.get("model"):
            raise missing("model")
        assistant = {
            "id": new_id("asst_"),
            "object": "assistant",
            "created_at": now(),
            "name": body.get("name"),
            "description": body.get("description"),
            "model": body["model"],
            "instructions": body.get("instructions"),
            "tools": body.get("tools") or [],
            "tool_resources": body.get("tool_resources") or {},
            "metadata": check_metadata(body.get("metadata")),
            "temperature": body.get("temperature", 1.0),
            "top_p": body.get("top_p", 1.0),
            "response_format": body.get("response_format", "auto"),
        }
        self.assistants[assistant["id"]] = assistant
        return web.json_response(assistant)

    async def list_assistants(self, request: web.Request) -> web.Response:
        page, more = ListQuery.parse(request).page(list(self.assistants.values()))
        return web.json_response(list_body(page, more))

    async def get_assistant(self, request: web.Request) -> web.Response:
        return web.json_response(self._assistant(request.match_info["assistant_id"]))

    async def delete_assistant(self, request: web.Request) -> web.Response:
        assistant = self._assistant(request.match_info["assistant_id"])
        del self.assistants[assistant["id"]]
        return web.json_response(
            {"id": assistant["id"], "object": "assistant.deleted", "deleted": True}
        )

    def _assistant(self, assistant_id: str) -> JSON:
        if assistant_id not in self.assistants:
            raise not_found("assistant", assistant_id)
        return self.assistants[assistant_id]

    # -- threads ---------------------------------------------------------------------------

    async def create_thread(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        thread = Thread(new_id("thread_"), now(), check_metadata(body.get("metadata")))
        for message in body.get("messages") or []:
            thread.messages.append(self._new_message(thread.id, message))
        self.threads[thread.id] = thread
        return web.json_response(thread_json(thread))

    async def get_thread(self, request: web.Request) -> web.Response:
        return web.json_response(thread_json(self.thread(request.match_info["thread_id"])))

    async def update_thread(self, request: web.Request) -> web.Response:
        thread = self.thread(request.match_info["thread_id"])
        body = await json_body(request)
        if "metadata" in body:
            thread.metadata = check_metadata(body["metadata"])
        if "tool_resources" in body:
            thread.tool_resources = dict(body["tool_resources"] or {})
        return web.json_response(thread_json(thread))

    async def delete_thread(self, request: web.Request) -> web.Response:
        """The thread goes with its messages and its runs, as at the real API."""
        thread = self.thread(request.match_info["thread_id"])
        del self.threads[thread.id]
        for run_id in thread.run_ids:
            self.runs.pop(run_id, None)
        return web.json_response({"id": thread.id, "object": "thread.deleted", "deleted": True})

    def thread(self, thread_id: str) -> Thread:
        if thread_id not in self.threads:
            raise not_found("thread", thread_id)
        return self.threads[thread_id]

    # -- messages --------------------------------------------------------------------------

    async def create_message(self, request: web.Request) -> web.Response:
        thread = self.thread(request.match_info["thread_id"])
        body = await json_body(request)
        active = self.active_run(thread)
        if active is not None:
            raise ApiError(
                400, f"Can't add messages to {thread.id} while a run {active.id} is active."
            )
        message = self._new_message(thread.id, body)
        thread.messages.append(message)
        return web.json_response(message)

    def _new_message(self, thread_id: str, body: JSON) -> JSON:
        role = body.get("role")
        if role not in ("user", "assistant"):
            raise ApiError(400, "Invalid 'role': expected 'user' or 'assistant'.", param="role")
        if "content" not in body:
            raise missing("content")
        content = content_blocks(body["content"])
        for block in content:
            if block["type"] == "image_file" and self.files is not None:
                self.files.name_of(block["image_file"]["file_id"])  # 400: no such file
        return message_json(
            thread_id,
            role,
            content,
            attachments=body.get("attachments") or [],
            metadata=check_metadata(body.get("metadata")),
        )

    async def list_messages(self, request: web.Request) -> web.Response:
        thread = self.thread(request.match_info["thread_id"])
        self.refresh_thread(thread)
        messages = thread.messages
        if "run_id" in request.query:
            messages = [m for m in messages if m["run_id"] == request.query["run_id"]]
        page, more = ListQuery.parse(request).page(messages)
        return web.json_response(list_body(page, more))

    async def get_message(self, request: web.Request) -> web.Response:
        thread = self.thread(request.match_info["thread_id"])
        self.refresh_thread(thread)
        message_id = request.match_info["message_id"]
        for message in thread.messages:
            if message["id"] == message_id:
                return web.json_response(message)
        raise not_found("message", message_id)

    # -- runs ------------------------------------------------------------------------------

    async def create_run(self, request: web.Request) -> web.Response:
        thread = self.thread(request.match_info["thread_id"])
        body = await json_body(request)
        if not body.get("assistant_id"):
            raise missing("assistant_id")
        assistant = self._assistant(body["assistant_id"])
        active = self.active_run(thread)
        if active is not None:
            raise ApiError(400, f"Thread {thread.id} already has an active run {active.id}.")
        for extra in body.get("additional_messages") or []:
            thread.messages.append(self._new_message(thread.id, extra))
        run = self._new_run(thread, assistant, body)
        self.runs[run.id] = run
        thread.run_ids.append(run.id)
        self.timers.at(run.schedule.started, lambda: self.refresh(run))
        self.timers.at(run.schedule.finished, lambda: self.refresh(run))
        if body.get("stream"):
            return await self._stream_run(request, run)
        return self._run_response(run)

    async def _stream_run(self, request: web.Request, run: Run) -> web.StreamResponse:
        """The run's events as it goes; its status still follows the clock, so a client
        that hangs up (or only polls) sees the same run."""
        stream = await open_event_stream(request)

        async def send(event: str, data: JSON | str) -> None:
            await stream.write(sse(data, event=event))

        try:
            await send("thread.run.created", run_json(run))
            await send("thread.run.queued", run_json(run))
            await sleep_until(run.schedule.started)
            self.refresh(run)
            if run.status == "in_progress":
                await send("thread.run.in_progress", run_json(run))
                await self._stream_text(run, send)
            await sleep_until(run.schedule.finished)
            self.refresh(run)
            message = self._message(run)
            if message is not None:
                await send("thread.message.completed", message)
            await send(f"thread.run.{run.status}", run_json(run))
            await send("done", "[DONE]")
        except (ConnectionResetError, ConnectionError):
            pass  # the client went away; the run carries on by the clock
        return stream

    async def _stream_text(self, run: Run, send: Callable[[str, JSON], Awaitable[None]]) -> None:
        """The answer's text deltas, spread over the run's working time."""
        if not run.answers:
            return
        run.streamed_message_id = new_id("msg_")
        draft = message_json(run.thread_id, "assistant", [], id=run.streamed_message_id)
        await send("thread.message.created", {**draft, "status": "in_progress", "run_id": run.id})
        chunks = pieces(run.reply.text)
        start = time.monotonic()
        step = max(0.0, run.schedule.finished - start) / max(1, len(chunks))
        for index, chunk in enumerate(chunks):
            if run.status in FINAL or run.status == "cancelling":
                return
            content = shaped_delta(chunk, self.text_shape)
            delta = {"id": run.streamed_message_id, "object": "thread.message.delta",
                     "delta": {"content": content}}  # fmt: skip
            await send("thread.message.delta", delta)
            await sleep_until(start + step * (index + 1))
            self.refresh(run)

    def _message(self, run: Run) -> JSON | None:
        thread = self.threads.get(run.thread_id)
        if run.message_id is None or thread is None:
            return None
        return next((m for m in thread.messages if m["id"] == run.message_id), None)

    def _new_run(self, thread: Thread, assistant: JSON, body: JSON) -> Run:
        instructions = body.get("instructions") or assistant.get("instructions") or ""
        if body.get("additional_instructions"):
            instructions = f"{instructions}\n\n{body['additional_instructions']}".strip()
        limit = self._prompt_limit(body.get("max_prompt_tokens"))
        seen = self._seen(thread, instructions, _truncation(body.get("truncation_strategy")), limit)
        reply = self._searched(thread, assistant, body, respond(seen))
        over = prompt_tokens(seen) > limit
        working = reply.directives.slow
        schedule = Schedule.begin(
            self.pacing.queued_seconds,
            self.pacing.in_progress_seconds if working is None else working,
        )
        params = {name: body[name] for name in (*RUN_PARAMS, "truncation_strategy") if name in body}
        return Run(
            id=new_id("run_"),
            thread_id=thread.id,
            assistant_id=assistant["id"],
            model=body.get("model") or assistant["model"],
            instructions=instructions,
            schedule=schedule,
            reply=reply,
            outcome="incomplete" if over else outcome_of(reply),
            metadata=check_metadata(body.get("metadata")),
            params=params,
            incomplete_reason=PROMPT_LIMITED if over else "max_completion_tokens",
        )

    def _searched(self, thread: Thread, assistant: JSON, body: JSON, reply: Reply) -> Reply:
        """With the file_search tool (the run's, else the assistant's), the reply quotes the
        best passage of the thread's vector stores (else the assistant's) and cites it."""
        tools = body.get("tools") if body.get("tools") is not None else assistant.get("tools")
        if self.files is None or not any(
            isinstance(t, dict) and t.get("type") == "file_search" for t in tools or []
        ):
            return reply
        resources = thread.tool_resources or assistant.get("tool_resources") or {}
        stores = (resources.get("file_search") or {}).get("vector_store_ids") or []
        question = next(
            (message_text(m) for m in reversed(thread.messages) if m["role"] == "user"), ""
        )
        hit = self.files.search(list(stores), question)
        return reply if hit is None else quoting(reply, hit)

    def _name_of(self, file_id: str) -> str:
        """An image file's name, as the model says it saw it ("unnamed" once deleted)."""
        stored = self.files.files.get(file_id) if self.files is not None else None
        return stored.filename if stored is not None else "unnamed"

    def _prompt_limit(self, value: Any) -> int:
        """The tokens a run's prompt may have: `max_prompt_tokens`, within the context window."""
        if value is None:
            return self.limits.window_tokens
        if not isinstance(value, int) or value < MIN_PROMPT_TOKENS:
            raise ApiError(
                400,
                "Invalid 'max_prompt_tokens': integer below minimum value. Expected a value >= "
                f"{MIN_PROMPT_TOKENS}, but got {value} instead.",
                code="integer_below_min_value",
                param="max_prompt_tokens",
            )
        return min(value, self.limits.window_tokens)

    def _seen(self, thread: Thread, instructions: str, last: int | None, limit: int) -> list[Part]:
        """What the model reads: the instructions, then the thread: its `last` messages, or
        (`auto`, last None) the most recent that fit `limit`."""
        messages = thread.messages if last is None else thread.messages[-last:]
        seen: list[Part] = [("system", instructions)] if instructions else []
        seen += [(m["role"], message_text(m, self._name_of)) for m in messages]
        return truncated(seen, limit, keep_last=1) if last is None else seen

    async def list_runs(self, request: web.Request) -> web.Response:
        thread = self.thread(request.match_info["thread_id"])
        runs = [self.runs[run_id] for run_id in thread.run_ids if run_id in self.runs]
        for run in runs:
            self.refresh(run, observed=True)
        page, more = ListQuery.parse(request).page([run_json(run) for run in runs])
        return web.json_response(list_body(page, more))

    async def get_run(self, request: web.Request) -> web.Response:
        run = self._run(request)
        self.refresh(run, observed=True)
        return self._run_response(run)

    async def cancel_run(self, request: web.Request) -> web.Response:
        run = self._run(request)
        self.refresh(run)
        if run.status in FINAL:
            raise ApiError(400, f"Cannot cancel run with status '{run.status}'.")
        if run.status != "cancelling":
            run.status = "cancelling"
            run.cancel_deadline = time.monotonic() + self.pacing.queued_seconds
            self.timers.at(run.cancel_deadline, lambda: self.refresh(run))
        return self._run_response(run)

    def _run(self, request: web.Request) -> Run:
        thread = self.thread(request.match_info["thread_id"])
        run_id = request.match_info["run_id"]
        if run_id not in self.runs or self.runs[run_id].thread_id != thread.id:
            raise not_found("run", run_id)
        return self.runs[run_id]

    def _run_response(self, run: Run) -> web.Response:
        headers = {"openai-poll-after-ms": str(self.pacing.poll_after_ms)}
        return web.json_response(run_json(run), headers=headers)

    # -- the clock -------------------------------------------------------------------------

    def active_run(self, thread: Thread) -> Run | None:
        """The thread's run that is not final yet, after bringing every run up to date."""
        self.refresh_thread(thread)
        for run_id in thread.run_ids:
            run = self.runs.get(run_id)
            if run is not None and run.status in ACTIVE:
                return run
        return None

    def refresh_thread(self, thread: Thread) -> None:
        for run_id in thread.run_ids:
            if run_id in self.runs:
                self.refresh(self.runs[run_id])

    def refresh(self, run: Run, *, observed: bool = False) -> None:
        """Bring `run.status` up to the clock; `observed` (a read of the run) ends a cancel."""
        if run.status in FINAL:
            return
        moment = time.monotonic()
        if run.status == "cancelling":
            deadline = run.cancel_deadline or moment
            if observed or moment >= deadline:
                self._end(run, "cancelled", min(moment, deadline))
            return
        if moment < run.schedule.started:
            return
        run.status = "in_progress"
        run.started_at = run.schedule.epoch(run.schedule.started)
        if moment >= run.schedule.finished:
            self._end(run, run.outcome, run.schedule.finished)

    def _end(self, run: Run, status: str, moment: float) -> None:
        """The one place a run becomes final; its answer (if any) joins the thread here."""
        run.status = status
        run.ended_at = run.schedule.epoch(moment)
        thread = self.threads.get(run.thread_id)
        if status not in ("completed", "incomplete") or not run.answers or thread is None:
            return
        extra: JSON = {"assistant_id": run.assistant_id, "run_id": run.id}
        extra |= {"created_at": run.ended_at, "completed_at": run.ended_at}
        if status == "incomplete":
            extra |= {"status": "incomplete", "completed_at": None, "incomplete_at": run.ended_at}
            extra["incomplete_details"] = {"reason": "max_tokens"}
        if run.streamed_message_id is not None:
            extra["id"] = run.streamed_message_id
        content = shaped_content(cited_text_block(run.reply), self.text_shape)
        message = message_json(thread.id, "assistant", content, **extra)
        thread.messages.append(message)
        run.message_id = message["id"]


def _truncation(value: Any) -> int | None:
    """How many of the thread's last messages a `truncation_strategy` keeps (None: `auto`)."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "auto":
        return None
    last = value.get("last_messages") if isinstance(value, dict) else None
    if kind != "last_messages" or not isinstance(last, int) or last < 1:
        raise ApiError(
            400,
            "Invalid 'truncation_strategy': expected {'type': 'auto'} or "
            "{'type': 'last_messages', 'last_messages': n} with n >= 1.",
            param="truncation_strategy",
        )
    return last


def thread_json(thread: Thread) -> JSON:
    return {
        "id": thread.id,
        "object": "thread",
        "created_at": thread.created_at,
        "metadata": thread.metadata,
        "tool_resources": thread.tool_resources,
    }
