"""Chat Completions of the OpenAI stand-in: POST /chat/completions, whole or streamed.

Like the API, it never shortens a prompt: one past the model's context window is refused
(400 `context_length_exceeded`). A prompt that repeats the previous one's beginning (same
model and `prompt_cache_key`) is billed cached for that prefix, as OpenAI's prompt cache and
local servers' prefix caches do (see `bot.local.context_window`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from aiohttp import web

from bot.local.context_window import ContextLimits, PromptCache, bucket, prompt_tokens
from bot.local.openai_common import (
    JSON,
    ApiError,
    break_connection,
    cut_point,
    json_body,
    missing,
    new_id,
    now,
    open_event_stream,
    sleep_until,
    sse,
)
from bot.local.openai_files import described
from bot.local.scripted_model import (
    QuizScript,
    Reply,
    asks_for_quiz_in_words,
    pieces,
    quiz_reply,
    respond,
)

FINGERPRINT = "fp_standin"
FAILURE_MESSAGE = "The model failed (scripted)."
# What vLLM and llama.cpp answer (HTTP 400) when a chat template that requires alternation
# (Mistral's, Gemma's) meets two user or two assistant messages in a row.
ALTERNATION_MESSAGE = "Conversation roles must alternate user/assistant/user/assistant/..."
# What servers that predate `stream_options` answer (HTTP 400) when it is sent.
UNKNOWN_STREAM_OPTIONS = "Unrecognized request argument supplied: stream_options"
# The same for servers without structured output.
UNKNOWN_RESPONSE_FORMAT = "Unrecognized request argument supplied: response_format"


def chat_messages(value: Any) -> list[tuple[str, str]]:
    """The request's messages as (role, text); text parts of a content list are joined."""
    if not isinstance(value, list) or not value:
        raise missing("messages")
    return [(str(message.get("role")), _text(message.get("content"))) for message in value]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (
            part.get("text", "") or described(part) or ""
            for part in content
            if isinstance(part, dict)
        )
        return "\n".join(text for text in texts if text)
    return ""


def response_format_type(value: Any) -> str:
    """The type of `response_format`, checked as the API checks it: `json_schema` needs a
    `json_schema` object with a `name` and a `schema`."""
    if value is None:
        return "text"
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise ApiError(
            400, "Invalid value for 'response_format.type'.", param="response_format.type"
        )
    spec = value.get("json_schema") if kind == "json_schema" else {"name": "-", "schema": {}}
    if (
        not isinstance(spec, dict)
        or not spec.get("name")
        or not isinstance(spec.get("schema"), dict)
    ):
        raise ApiError(
            400,
            "Missing required parameter: 'response_format.json_schema'.",
            code="missing_required_parameter",
            param="response_format.json_schema",
        )
    return str(kind)


def check_alternation(messages: list[tuple[str, str]]) -> None:
    """After an optional system message, user and assistant alternate, user first."""
    roles = [role for role, _ in messages]
    if roles[:1] == ["system"]:
        roles = roles[1:]
    for index, role in enumerate(roles):
        if role != ("user" if index % 2 == 0 else "assistant"):
            raise ApiError(400, ALTERNATION_MESSAGE)


def check_window(tokens: int, limits: ContextLimits) -> None:
    """OpenAI's refusal of a prompt past the model's context window."""
    if tokens > limits.window_tokens:
        raise ApiError(
            400,
            f"This model's maximum context length is {limits.window_tokens} tokens. However, "
            f"your messages resulted in {tokens} tokens. Please reduce the length of the messages.",
            code="context_length_exceeded",
            param="messages",
        )


def usage_json(reply: Reply, cached_tokens: int = 0) -> JSON:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.total_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def finish_reason(reply: Reply) -> str:
    return "length" if reply.directives.incomplete else "stop"


# A numbered passage in the system message, as a retrieval-augmented prompt shows it:
# `[1] (<source>)` on its own line, the passage's text on the next.
_PASSAGE = re.compile(r"^\[(\d+)\] \(([^)\n]*)\)\n([^\n]+)", re.MULTILINE)


def citing_passage(reply: Reply, messages: Sequence[tuple[str, str]]) -> Reply:
    """Where the system message lists numbered passages, the scripted model quotes the first
    sentence of the first one and cites it by its number, as it is asked to."""
    system = next((text for role, text in messages if role == "system"), "")
    found = _PASSAGE.search(system)
    if found is None:
        return reply
    sentence = found.group(3).split(". ")[0].strip()[:200]
    quoted = f"From the course materials: “{sentence}” [{found.group(1)}]"
    return replace(reply, text=f"{reply.text}\n\n{quoted}")


class ChatAPI:
    """The handler of /chat/completions.

    `require_alternation` makes it refuse what strict chat templates refuse (see
    `check_alternation`); OpenAI itself takes any order of roles. `accepts_stream_options`
    off makes it a server that refuses that parameter (400), `reports_usage` off one that
    never reports usage, as some local servers do, `accepts_response_format` off one without
    structured output (400 naming `response_format`). Asked for a JSON schema, or for a quiz
    as JSON in the instructions, the scripted model writes a quiz (`quiz` steers it).
    """

    def __init__(self, limits: ContextLimits | None = None, quiz: QuizScript | None = None) -> None:
        self.require_alternation = False
        self.accepts_stream_options = True
        self.accepts_response_format = True
        self.reports_usage = True
        self.limits = limits or ContextLimits()
        self.cache = PromptCache()
        self.quiz = quiz or QuizScript()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/chat/completions", self.create)]

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = await json_body(request)
        if not body.get("model"):
            raise missing("model")
        messages = chat_messages(body.get("messages"))
        if self.require_alternation:
            check_alternation(messages)
        if "stream_options" in body and not self.accepts_stream_options:
            raise ApiError(400, UNKNOWN_STREAM_OPTIONS)
        if "response_format" in body and not self.accepts_response_format:
            raise ApiError(400, UNKNOWN_RESPONSE_FORMAT)
        structured = response_format_type(body.get("response_format")) == "json_schema"
        check_window(prompt_tokens(messages), self.limits)
        if structured or asks_for_quiz_in_words(messages):
            reply = quiz_reply(messages, self.quiz.next_fault())
        else:
            reply = citing_passage(respond(messages), messages)
        if reply.directives.fail:
            raise ApiError(500, FAILURE_MESSAGE, code="server_error", type="server_error")
        cached = self.cache.cached_tokens(
            bucket(body["model"], body.get("prompt_cache_key")), messages
        )
        usage = usage_json(reply, cached) if self.reports_usage else None
        completion = Completion(new_id("chatcmpl-"), body["model"], reply, usage)
        if body.get("stream"):
            options = body.get("stream_options") or {}
            include_usage = bool(options.get("include_usage")) and usage is not None
            return await completion.stream(request, include_usage)
        await asyncio.sleep(reply.directives.slow or 0)
        return web.json_response(completion.whole())


class Completion:
    """One completion's answer, as one object or as a stream of chunks."""

    def __init__(self, completion_id: str, model: str, reply: Reply, usage: JSON | None) -> None:
        self.id = completion_id
        self.model = model
        self.reply = reply
        self.usage = usage
        self.created = now()

    def whole(self) -> JSON:
        message = {"role": "assistant", "content": self.reply.text, "refusal": None}
        annotations = self._annotations()
        choice = {"index": 0, "message": {**message, "annotations": annotations}, "logprobs": None}
        return {
            **self._envelope("chat.completion"),
            "choices": [{**choice, "finish_reason": finish_reason(self.reply)}],
            "usage": self.usage,
        }

    async def stream(self, request: web.Request, include_usage: bool) -> web.StreamResponse:
        """Role first, then ~20-character pieces, the finish reason, usage if asked, [DONE]."""
        stream = await open_event_stream(request)
        extra = {"usage": None} if include_usage else {}
        chunks = pieces(self.reply.text)
        start = time.monotonic()
        step = (self.reply.directives.slow or 0.0) / (len(chunks) + 1)
        await stream.write(sse(self._chunk({"role": "assistant", "content": ""}, None, extra)))
        cut = self.reply.directives.cut
        for index, text in enumerate(chunks):
            if cut and index == cut_point(len(chunks)):
                break_connection(request)
            await sleep_until(start + step * (index + 1))
            await stream.write(sse(self._chunk({"content": text}, None, extra)))
        if cut:
            break_connection(request)
        if self.reply.citations:  # as search models do: an annotations-only delta at the end
            await stream.write(sse(self._chunk({"annotations": self._annotations()}, None, extra)))
        await sleep_until(start + step * (len(chunks) + 1))
        await stream.write(sse(self._chunk({}, finish_reason(self.reply), extra)))
        if include_usage:
            usage_chunk = {**self._envelope("chat.completion.chunk"), "choices": []}
            await stream.write(sse({**usage_chunk, "usage": self.usage}))
        await stream.write(sse("[DONE]"))
        return stream

    def _annotations(self) -> list[JSON]:
        return [
            {"type": "url_citation", "url_citation": {"start_index": c.start,
             "end_index": c.end, "title": c.title, "url": c.url}}
            for c in self.reply.citations
        ]  # fmt: skip

    def _chunk(self, delta: JSON, reason: str | None, extra: JSON) -> JSON:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return {**self._envelope("chat.completion.chunk"), "choices": [choice], **extra}

    def _envelope(self, kind: str) -> JSON:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "service_tier": "default",
        }
