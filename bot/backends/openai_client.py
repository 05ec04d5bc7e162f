"""The shared AsyncOpenAI client, and its exceptions turned into words a user understands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator

import openai

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
    if api is None or error.status_code != 404 or getattr(error, "code", None):
        return None
    text = str(getattr(error, "message", "") or "").lower()
    return None if any(hint in text for hint in NAMED_RESOURCE_HINTS) else api


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


def make_client(
    *, api_key: str | None, base_url: str | None, timeout: float, max_retries: int
) -> openai.AsyncOpenAI:
    """The one AsyncOpenAI client of the process, configured from settings only."""
    return openai.AsyncOpenAI(
        api_key=api_key or "not-needed",
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
    )
