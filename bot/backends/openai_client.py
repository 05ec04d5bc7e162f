"""The shared AsyncOpenAI client, and its exceptions turned into words a user understands."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import openai

from bot.backends.base import BackendError, ConversationBusy

log = logging.getLogger(__name__)

UNREACHABLE = "I couldn't reach the model server"
RATE_LIMITED = "the model server is busy right now (rate limit)"
SERVER_ERROR = "the model server had an internal error"
AUTH_ERROR = "the model server refused the tutor's API key"
BAD_REQUEST = "the model server rejected the request"
TRY_LATER = "Please try again in a minute."
TELL_ADMIN = "Please tell whoever runs the tutor."


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
        log.warning("model server answered %s to %s", status, action)
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
