"""The shared AsyncOpenAI client, and its exceptions turned into words a user understands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator

import openai

try:  # the HTTP library under the SDK: httpx2 since openai 3, httpx before
    import httpx2 as httpx
except ModuleNotFoundError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

from bot.backends.base import BackendError, ConversationBusy

log = logging.getLogger(__name__)

UNREACHABLE = "I couldn't reach the model server"
RATE_LIMITED = "the model server is busy right now (rate limit)"
SERVER_ERROR = "the model server had an internal error"
AUTH_ERROR = "the model server refused the tutor's API key"
BAD_REQUEST = "the model server rejected the request"
UNREADABLE = "the model server sent a reply the tutor could not read"
MODEL_UNKNOWN = "the model server does not know the model the tutor is set up with"
TRY_LATER = "Please try again in a minute."
TELL_ADMIN = "Please tell whoever runs the tutor."
USE_CHAT = "Whoever runs the tutor should set TUTOR_BACKEND=chat."
# Deletes sent at once when a forgotten conversation's stored responses are deleted.
DELETES_AT_ONCE = 8

# Creates at the root of an API: a 404 there means the server does not serve that API
# (self-hosted servers have no Conversations or Assistants API; OpenAI shut Assistants down).
API_OF_CREATE = {
    "create conversation": "Conversations API",
    "create response": "Responses API",
    "create thread": "Assistants API",
    "create assistant": "Assistants API",
}
# Words of a 404 from a server that has the API but lacks something the request names.
NAMED_RESOURCE_HINTS = ("model", "conv_", "resp_", "thread_", "asst_")


def is_busy_error(error: openai.APIStatusError) -> bool:
    """True for "a run is still active on this conversation" in either API's words."""
    code = getattr(error, "code", None)
    text = str(error).lower()
    return code == "conversation_locked" or (
        error.status_code == 400 and ("while a run" in text or "already has an active run" in text)
    )


def rejects_parameter(error: openai.APIStatusError, name: str) -> bool:
    """True for a 400/422 about the request parameter `name` itself (nothing was created):
    its `param` names it (or a part of it), or its message does.

    Any other 400 (a request too long, a refused input) says nothing about that parameter.
    """
    if error.status_code not in (400, 422) or is_busy_error(error):
        return False
    body = error.body if isinstance(error.body, dict) else {}
    param = body.get("param") or (body.get("error") or {}).get("param")
    if isinstance(param, str) and re.fullmatch(rf"{re.escape(name)}([.\[].*)?", param):
        return True
    return re.search(rf"\b{re.escape(name)}\b", str(error), re.IGNORECASE) is not None


@contextlib.contextmanager
def translated_errors(action: str) -> Iterator[None]:
    """Re-raise SDK errors from `action` as BackendError (ConversationBusy where it applies)."""
    try:
        yield
    except openai.APITimeoutError as error:
        raise BackendError(f"{action}: timed out", reason=UNREACHABLE) from error
    except openai.APIConnectionError as error:
        raise BackendError(f"{action}: connection failed", reason=UNREACHABLE) from error
    except openai.APIStatusError as error:
        status = error.status_code
        api = api_not_served(action, error)
        if api is not None:
            log.warning(
                "the model server does not serve the %s (404 to %s): set TUTOR_BACKEND=chat "
                "for a server that only speaks Chat Completions",
                api,
                action,
            )
            raise BackendError(
                f"{action}: 404, no {api}",
                reason=f"the model server does not offer the {api}",
                advice=USE_CHAT,
            ) from error
        log.warning("model server answered %s to %s", status, action)
        if getattr(error, "code", None) == "model_not_found":
            log.warning("the model server does not know the model: check TUTOR_MODEL")
            raise BackendError(
                f"{action}: model not found", reason=MODEL_UNKNOWN, advice=TELL_ADMIN
            ) from error
        if is_busy_error(error):
            raise ConversationBusy(f"{action}: conversation busy") from error
        if status == 429:
            raise BackendError(f"{action}: 429", reason=RATE_LIMITED, advice=TRY_LATER) from error
        if status in (401, 403):
            raise BackendError(
                f"{action}: {status}", reason=AUTH_ERROR, advice=TELL_ADMIN
            ) from error
        if status >= 500:
            raise BackendError(f"{action}: {status}", reason=SERVER_ERROR) from error
        raise BackendError(f"{action}: {status}", reason=BAD_REQUEST, advice=TELL_ADMIN) from error


async def delete_unless_gone(action: str, delete: Callable[[], Awaitable[object]]) -> None:
    """Delete something at the server; a 404 means it is gone already (or the server never
    had that API, so it holds nothing of it). Other failures raise BackendError."""
    with translated_errors(action):
        try:
            await delete()
        except openai.NotFoundError:
            log.info("%s: already gone", action)


class UploadDeletes:
    """Deleting what a backend uploaded to an OpenAI-compatible server, when the bot forgets
    it: an attachment's file, a course's vector store (its files go one by one, as forget
    jobs say). Mixed into the backends that upload; they hold the client in `_client`."""

    _client: openai.AsyncOpenAI

    async def delete_file(self, file_id: str) -> None:
        await delete_unless_gone("delete file", lambda: self._client.files.delete(file_id))

    async def delete_vector_store(self, vector_store_id: str) -> None:
        await delete_unless_gone(
            "delete vector store", lambda: self._client.vector_stores.delete(vector_store_id)
        )


async def delete_each(
    action: str, ids: Iterable[str], delete: Callable[[str], Awaitable[object]]
) -> None:
    """`delete_unless_gone` for every id, a few at a time; raises the first failure once
    every delete was tried (what was deleted stays deleted, the rest is tried again)."""
    slots = asyncio.Semaphore(DELETES_AT_ONCE)

    async def one(item: str) -> None:
        async with slots:
            await delete_unless_gone(action, lambda: delete(item))

    results = await asyncio.gather(*(one(item) for item in ids), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def api_not_served(action: str, error: openai.APIStatusError) -> str | None:
    """The API `action` needs, when its 404 says the server lacks that API altogether.

    A 404 that names something (an error code such as model_not_found, a model, an id)
    comes from a server that has the API and lacks only that thing.
    """
    api = API_OF_CREATE.get(action)
    return api if api is not None and is_missing_endpoint(error) else None


def is_missing_endpoint(error: openai.APIStatusError) -> bool:
    """True for a 404 that says the server has no such URL at all (an API it lacks), not a
    404 about something the request names (an error code such as model_not_found, an id).

    Only meaningful for requests to the root of an API (a create, a list), whose URLs hold
    no id that the server's "Invalid URL (…)" would repeat.
    """
    if error.status_code != 404 or getattr(error, "code", None):
        return False
    text = str(getattr(error, "message", "") or "").lower()
    return not any(hint in text for hint in NAMED_RESOURCE_HINTS)


@contextlib.contextmanager
def read_reply(action: str) -> Iterator[None]:
    """Reading a reply the server shaped unexpectedly is its mistake, said as such.

    The SDK parses leniently: a field of another shape surfaces only when read, as an
    AttributeError or TypeError, which would otherwise read as a bug of the bot.
    """
    try:
        yield
    except (AttributeError, TypeError, KeyError, ValueError, IndexError) as error:
        log.warning("unreadable reply to %s: %s", action, error)
        raise BackendError(f"{action}: unreadable reply", reason=UNREADABLE) from error


# Told of every failed request to the model server: (service, HTTP status or error kind).
ApiErrorListener = Callable[[str, str], None]


class ErrorCountingTransport(httpx.AsyncBaseTransport):
    """The SDK's transport, telling `listener` of each failed request (retries included):
    its HTTP status from 400 up, or the kind of connection failure."""

    def __init__(self, inner: httpx.AsyncBaseTransport, listener: ApiErrorListener) -> None:
        self._inner = inner
        self._listener = listener

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TimeoutException:
            self._listener("openai", "timeout")
            raise
        except httpx.TransportError:
            self._listener("openai", "connection")
            raise
        if response.status_code >= 400:
            self._listener("openai", str(response.status_code))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def make_client(
    *,
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    max_retries: int,
    on_error: ApiErrorListener | None = None,
) -> openai.AsyncOpenAI:
    """The one AsyncOpenAI client of the process, configured from settings only."""
    http_client = None
    if on_error is not None:
        # The SDK's own defaults (connection limits, redirects), with the counting transport.
        transport = httpx.AsyncHTTPTransport(limits=openai.DEFAULT_CONNECTION_LIMITS)
        http_client = openai.DefaultAsyncHttpxClient(
            transport=ErrorCountingTransport(transport, on_error)
        )
    return openai.AsyncOpenAI(
        api_key=api_key or "not-needed",
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        http_client=http_client,
    )
