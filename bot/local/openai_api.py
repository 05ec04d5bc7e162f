"""A local stand-in for the OpenAI HTTP API, which the official SDK talks to over real HTTP.

It serves the Assistants protocol (assistants, threads, messages, runs), Conversations and
Responses (plain, background and streamed) and Chat Completions (plain and streamed), answered
by the deterministic scripted model (`bot.local.scripted_model`). Tests steer it with directives
in the user's text and with `fail_next` / `hold`, and inspect what it received and holds.
It counts tokens and keeps prompts within the model's context window as the APIs do
(truncation, compaction, prompt caching: `bot.local.context_window`); `context_window` and
`accepts_compaction` set that model.
`without_apis` makes it a server that lacks some of those APIs (as self-hosted servers lack
Conversations and Assistants): their paths answer 404 like any unknown URL. It also serves
the Models API (`models`: each model's shutdown date, None when none is announced).

Run it on its own with `python -m bot.local.openai_api --port 8765`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.local.context_window import DEFAULT_WINDOW_TOKENS, ContextLimits
from bot.local.openai_assistants import AssistantsAPI, Run, TextShape, Thread
from bot.local.openai_chat import ChatAPI
from bot.local.openai_common import (
    JSON,
    ApiError,
    Pacing,
    Timers,
    error_response,
    new_id,
    open_event_stream,
)
from bot.local.openai_conversations import Conversation
from bot.local.openai_files import FilesAPI
from bot.local.openai_models import ModelsAPI
from bot.local.openai_responses import ResponseJob, ResponsesAPI, response_json
from bot.local.scripted_model import QuizScript
from bot.local.waiting import wait_until

log = logging.getLogger(__name__)

RECORDED_HEADERS = (
    "authorization",
    "openai-beta",
    "idempotency-key",
    "x-stainless-retry-count",
    "content-type",
    "accept",
)
MAX_BODY_BYTES = 32 * 1024 * 1024
# The APIs `without_apis` can leave out, by the paths they serve.
API_PATHS: dict[str, tuple[str, ...]] = {
    "assistants": ("/v1/assistants", "/v1/threads"),
    "conversations": ("/v1/conversations",),
    "responses": ("/v1/responses",),
    "chat": ("/v1/chat/completions",),
    "models": ("/v1/models",),
    "files": ("/v1/files",),
}
SHUTDOWN_SECONDS = 0.5
KEEP_ALIVE_SECONDS = 0.2
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived: what tests assert on."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]


@dataclass
class _Failure:
    """An injected HTTP error for the next `remaining` matching requests."""

    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int
    retry_after: float | None
    code: str | None


@dataclass(frozen=True)
class _Hold:
    """Matching requests wait for `event` before they are handled."""

    method: str
    pattern: re.Pattern[str]
    event: asyncio.Event


def _matches(method: str, pattern: re.Pattern[str], request_method: str, path: str) -> bool:
    return method.upper() in ("*", request_method.upper()) and bool(pattern.search(path))


def _injected_error(failure: _Failure) -> web.Response:
    kind = "server_error" if failure.status >= 500 else "invalid_request_error"
    code = failure.code
    if failure.status == 429:
        kind, code = "requests", code or "rate_limit_exceeded"
    error = ApiError(
        failure.status, f"Injected failure (HTTP {failure.status}).", code=code, type=kind
    )
    headers = {} if failure.retry_after is None else {"Retry-After": f"{failure.retry_after:g}"}
    return error_response(error, headers)


def _check_auth(request: web.Request) -> None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            code="invalid_api_key",
        )


class OpenAIStandIn:
    """The stand-in server with its steering (fail_next, hold) and inspection API."""

    def __init__(
        self,
        *,
        queued_seconds: float = 0.05,
        in_progress_seconds: float = 0.1,
        without_apis: Iterable[str] = (),
        context_window: int = DEFAULT_WINDOW_TOKENS,
        models: dict[str, str | None] | None = None,
    ) -> None:
        self.pacing = Pacing(queued_seconds, in_progress_seconds)
        self.limits = ContextLimits(window_tokens=context_window)
        self.without_apis: set[str] = set()
        self.leave_out(*without_apis)
        self.timers = Timers()
        self.files = FilesAPI()  # files and vector stores, read by file_search
        self._assistants = AssistantsAPI(self.pacing, self.timers, self.limits, files=self.files)
        self.quiz = QuizScript()
        self._responses = ResponsesAPI(
            self.pacing, self.timers, self.limits, self.quiz, files=self.files
        )
        self._chat = ChatAPI(self.limits, self.quiz)
        self._models = ModelsAPI(models)
        self.requests: list[RecordedRequest] = []
        self._received = asyncio.Condition()  # notified on every request recorded
        self._failures: list[_Failure] = []
        self._holds: list[_Hold] = []
        self._stalls: list[_Failure] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- timing ----------------------------------------------------------------------------

    @property
    def queued_seconds(self) -> float:
        return self.pacing.queued_seconds

    @queued_seconds.setter
    def queued_seconds(self, value: float) -> None:
        self.pacing.queued_seconds = value

    @property
    def in_progress_seconds(self) -> float:
        return self.pacing.in_progress_seconds

    @in_progress_seconds.setter
    def in_progress_seconds(self, value: float) -> None:
        self.pacing.in_progress_seconds = value

    @property
    def require_alternation(self) -> bool:
        """Refuse chat completions whose roles do not alternate, as strict templates do."""
        return self._chat.require_alternation

    @require_alternation.setter
    def require_alternation(self, value: bool) -> None:
        self._chat.require_alternation = value

    @property
    def context_window(self) -> int:
        """The served model's context window in tokens (`bot.local.context_window` counts)."""
        return self.limits.window_tokens

    @context_window.setter
    def context_window(self, value: int) -> None:
        self.limits.window_tokens = value

    @property
    def accepts_compaction(self) -> bool:
        """Whether Responses take `context_management` (off: 400 naming it)."""
        return self.limits.accepts_compaction

    @accepts_compaction.setter
    def accepts_compaction(self, value: bool) -> None:
        self.limits.accepts_compaction = value

    @property
    def chat(self) -> ChatAPI:
        """Chat Completions' switches: `accepts_stream_options`, `reports_usage`,
        `accepts_response_format`."""
        return self._chat

    @property
    def quiz_faults(self) -> list[str]:
        """Faults of the next quizzes the model writes, one each: "malformed" (cut JSON),
        "two_right" (a question with two right choices)."""
        return self.quiz.faults

    @property
    def models(self) -> dict[str, str | None]:
        """The models served, each with its shutdown date ("YYYY-MM-DD"; None: none announced);
        change it to add, remove or retire models."""
        return self._models.models

    # -- state for assertions --------------------------------------------------------------

    @property
    def assistants(self) -> dict[str, JSON]:
        return self._assistants.assistants

    @property
    def threads(self) -> dict[str, Thread]:
        return self._assistants.threads

    @property
    def runs(self) -> dict[str, Run]:
        return self._assistants.runs

    @property
    def conversations(self) -> dict[str, Conversation]:
        return self._responses.conversations

    @property
    def response_jobs(self) -> dict[str, ResponseJob]:
        return self._responses.jobs

    @property
    def responses(self) -> dict[str, JSON]:
        """Every response as GET /responses/{id} would show it now."""
        for job in self._responses.jobs.values():
            self._responses.refresh(job)
        return {job.id: response_json(job) for job in self._responses.jobs.values()}

    def thread_messages(self, thread_id: str) -> list[JSON]:
        """The thread's messages in creation order, up to the clock."""
        thread = self.threads[thread_id]
        self._assistants.refresh_thread(thread)
        return list(thread.messages)

    def conversation_items(self, conversation_id: str) -> list[JSON]:
        """The conversation's items in creation order, up to the clock."""
        conversation = self.conversations[conversation_id]
        self._responses.refresh_conversation(conversation)
        return list(conversation.items)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """Return as soon as `predicate()` holds, re-checking after every request received."""

        def recent() -> str:
            return "recent requests:\n" + "\n".join(
                f"  {r.method} {r.path}" for r in self.requests[-15:]
            )

        await wait_until(self._received, predicate, timeout, recent)

    def count(self, method: str, path_regex: str) -> int:
        """How many recorded requests match (method "*" matches any)."""
        pattern = re.compile(path_regex)
        return sum(_matches(method, pattern, r.method, r.path) for r in self.requests)

    # -- steering --------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        count: int = 1,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with HTTP `status` instead of handling them."""
        pattern = re.compile(path_regex)
        self._failures.append(_Failure(method, pattern, status, count, retry_after, code))

    def stall_streams(self, path_regex: str, *, count: int = 1) -> None:
        """The next `count` streamed creates matching answer 200 with an event stream that
        sends only keep-alive comments, until the client goes away (a wedged proxy)."""
        self._stalls.append(_Failure("POST", re.compile(path_regex), 200, count, None, None))

    def leave_out(self, *apis: str) -> None:
        """Serve no longer these APIs (names of API_PATHS): their paths answer 404."""
        unknown = set(apis) - set(API_PATHS)
        if unknown:
            raise ValueError(f"unknown APIs {sorted(unknown)}; known: {sorted(API_PATHS)}")
        self.without_apis.update(apis)

    @property
    def assistant_text_shape(self) -> TextShape:
        """How assistant messages lay out their text (only BLOCKS is the documented one)."""
        return self._assistants.text_shape

    @assistant_text_shape.setter
    def assistant_text_shape(self, shape: TextShape) -> None:
        self._assistants.text_shape = shape

    def hold_searches(self) -> asyncio.Event:
        """Web and file searches stay `searching` until the returned event is set."""
        gate = asyncio.Event()
        self._responses.search_gate = gate
        return gate

    def hold_answer_text(self) -> asyncio.Event:
        """Streamed responses stop after the first piece of their text until the returned
        event is set: a test sees an answer being streamed however slow the machine is."""
        gate = asyncio.Event()
        self._responses.text_gate = gate
        return gate

    def hold(self, method: str, path_regex: str) -> asyncio.Event:
        """Matching requests wait (in flight) until the returned event is set."""
        event = asyncio.Event()
        self._holds.append(_Hold(method, re.compile(path_regex), event))
        return event

    # -- serving ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0: a free port); returns the base URL ending in /v1."""
        self._runner = web.AppRunner(
            self._make_app(), access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
        )
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://{host}:{sock.getsockname()[1]}/v1"
        return self.base_url

    async def stop(self) -> None:
        """Release held requests, forget pending timers, and close every connection."""
        for held in self._holds:
            held.event.set()
        self.timers.cancel_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY_BYTES)
        app.add_routes(self._assistants.routes())
        app.add_routes(self._responses.routes())
        app.add_routes(self._chat.routes())
        app.add_routes(self._models.routes())
        app.add_routes(self.files.routes())
        app.on_response_prepare.append(_add_request_id)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record, maybe fail or hold, check the key, then handle; errors become JSON."""
        await self._record(request)
        failure = self._take_failure(request)
        if failure is not None:
            return _injected_error(failure)
        if self._take_stall(request):
            return await _keep_alives_only(request)
        try:
            _check_auth(request)
            if self._left_out(request.path):
                raise web.HTTPNotFound()
            await self._wait_for_holds(request)
            return await handler(request)
        except ApiError as error:
            return error_response(error)
        except web.HTTPException as error:
            if error.status not in (404, 405):
                raise
            message = f"Invalid URL ({request.method} {request.path})"
            return error_response(ApiError(error.status, message))
        except ConnectionError:
            # The client went away mid-stream (a cancelled turn, a bot shutting down): nothing
            # more can be sent. A response that cannot be written ends the request quietly.
            return web.Response(status=499)
        except Exception:
            log.exception("stand-in failed on %s %s", request.method, request.path)
            return error_response(ApiError(500, "The server had an error.", type="server_error"))

    async def _record(self, request: web.Request) -> None:
        raw = await request.read() if request.can_read_body else b""
        try:
            body = await request.json() if raw else None
        except ValueError:
            body = None
        present = (name for name in RECORDED_HEADERS if name in request.headers)
        headers = {name: request.headers[name] for name in present}
        recorded = RecordedRequest(request.method, request.path, dict(request.query), body, headers)
        self.requests.append(recorded)
        async with self._received:
            self._received.notify_all()

    def _left_out(self, path: str) -> bool:
        return any(
            path == prefix or path.startswith(prefix + "/")
            for api in self.without_apis
            for prefix in API_PATHS[api]
        )

    def _take_failure(self, request: web.Request) -> _Failure | None:
        for failure in self._failures:
            if failure.remaining > 0 and _matches(
                failure.method, failure.pattern, request.method, request.path
            ):
                failure.remaining -= 1
                return failure
        return None

    def _take_stall(self, request: web.Request) -> bool:
        body = self.requests[-1].json if self.requests else None
        if not isinstance(body, dict) or body.get("stream") is not True:
            return False
        for stall in self._stalls:
            if stall.remaining > 0 and _matches(
                "POST", stall.pattern, request.method, request.path
            ):
                stall.remaining -= 1
                return True
        return False

    async def _wait_for_holds(self, request: web.Request) -> None:
        for held in self._holds:
            if _matches(held.method, held.pattern, request.method, request.path):
                await held.event.wait()


async def _keep_alives_only(request: web.Request) -> web.StreamResponse:
    """An event stream that never sends an event: SSE comments until the client leaves."""
    stream = await open_event_stream(request)
    try:
        while True:
            await stream.write(b": keep-alive\n\n")
            await asyncio.sleep(KEEP_ALIVE_SECONDS)
    except ConnectionError:
        pass  # the client gave up on it
    return stream


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("x-request-id", new_id("req_"))


async def serve(
    host: str,
    port: int,
    queued_seconds: float,
    in_progress_seconds: float,
    without_apis: Iterable[str] = (),
    models: dict[str, str | None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM; print the base URL once listening."""
    stand_in = OpenAIStandIn(
        queued_seconds=queued_seconds,
        in_progress_seconds=in_progress_seconds,
        without_apis=without_apis,
        models=models,
    )
    print(await stand_in.start(host, port), flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await stand_in.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local stand-in for the OpenAI HTTP API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--queued-seconds", type=float, default=0.05)
    parser.add_argument("--in-progress-seconds", type=float, default=0.1)
    parser.add_argument(
        "--without",
        default="",
        metavar="API,...",
        help=f"APIs to answer 404 for, as a server lacking them: {', '.join(API_PATHS)}",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="ID[=YYYY-MM-DD]",
        help="serve this model (with its shutdown date) instead of the default catalogue; "
        "repeat for more",
    )
    args = parser.parse_args(argv)
    without = [name for name in args.without.split(",") if name]
    models = dict(_model_arg(value) for value in args.model) or None
    asyncio.run(
        serve(args.host, args.port, args.queued_seconds, args.in_progress_seconds, without, models)
    )


def _model_arg(value: str) -> tuple[str, str | None]:
    model_id, _, shutdown_date = value.partition("=")
    return model_id, shutdown_date or None


if __name__ == "__main__":
    main()
