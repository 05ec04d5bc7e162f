"""Choosing the backend named by TUTOR_BACKEND."""

from __future__ import annotations

import logging

import openai
from redis.asyncio import Redis

from bot.backends.assistants import AssistantsBackend
from bot.backends.base import Backend
from bot.backends.chat import ChatBackend
from bot.backends.file_search import VectorStoreLibrary
from bot.backends.openai_client import ApiErrorListener, make_client
from bot.backends.passages import LocalLibrary
from bot.backends.provider_files import ProviderFiles
from bot.backends.responses import ResponsesBackend
from bot.settings import BackendKind, ConfigError, Settings, StreamingMode
from bot.storage.keys import Keys
from bot.tutor.materials import CourseLibrary, MaterialStore

log = logging.getLogger(__name__)


def require_model_server(settings: Settings) -> None:
    """Raise ConfigError when the settings name no model server the backend can use."""
    if settings.backend is not BackendKind.CHAT and not (
        settings.openai_api_key or settings.openai_base_url
    ):
        raise ConfigError(
            f"OPENAI_API_KEY is not set (needed by TUTOR_BACKEND={settings.backend.value}). "
            "Set it, or point OPENAI_BASE_URL at a compatible server."
        )


def make_model_client(
    settings: Settings, on_api_error: ApiErrorListener | None = None
) -> openai.AsyncOpenAI:
    """The process's one client of the model server; raises ConfigError when the settings
    name no server. `on_api_error` is told of every failed request (for metrics)."""
    require_model_server(settings)
    return make_client(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
        on_error=on_api_error,
    )


def build_backend(
    settings: Settings,
    redis: Redis,
    keys: Keys,
    on_api_error: ApiErrorListener | None = None,
    *,
    client: openai.AsyncOpenAI | None = None,
) -> Backend:
    """The configured backend; raises ConfigError when its settings are incomplete.

    It uses `client` (which it closes when closed), else a client of its own made with
    `on_api_error` (see `make_model_client`).
    """
    require_model_server(settings)
    if client is None:
        client = make_model_client(settings, on_api_error)
    if settings.web_search and settings.backend is not BackendKind.RESPONSES:
        log.warning(
            "TUTOR_WEB_SEARCH=on is ignored: web search needs TUTOR_BACKEND=responses (this is %s)",
            settings.backend.value,
        )
    files = ProviderFiles(redis, keys)  # uploads for attachments, deleted with their conversation
    if settings.backend is BackendKind.ASSISTANTS:
        return AssistantsBackend(
            client,
            redis,
            keys,
            assistant_id=settings.assistant_id,
            assistant_name=settings.tutor_name,
            model=settings.tutor_model,
            instructions=settings.tutor_instructions,
            max_output_tokens=settings.max_output_tokens,
            context_tokens=settings.context_tokens,
            stream=settings.streaming is not StreamingMode.OFF,
            stream_start_seconds=settings.openai_timeout,
            vision=settings.vision,
            files=files,
            library=VectorStoreLibrary(client, MaterialStore(redis, keys)),
        )
    if settings.backend is BackendKind.CHAT:
        return ChatBackend(
            client,
            redis,
            keys,
            model=settings.tutor_model,
            instructions=settings.tutor_instructions,
            max_output_tokens=settings.max_output_tokens,
            token_budget=settings.context_tokens,
            token_field=settings.chat_token_field,
            vision=settings.vision,
            library=LocalLibrary(redis, keys, MaterialStore(redis, keys)),
        )
    return ResponsesBackend(
        client,
        model=settings.tutor_model,
        instructions=settings.tutor_instructions,
        max_output_tokens=settings.max_output_tokens,
        context_tokens=settings.context_tokens,
        stream=settings.streaming is not StreamingMode.OFF,
        stream_start_seconds=settings.openai_timeout,
        web_search=settings.web_search,
        vision=settings.vision,
        files=files,
        library=VectorStoreLibrary(client, MaterialStore(redis, keys)),
    )


def course_library(backend: Backend) -> CourseLibrary | None:
    """Where the backend keeps course materials (None: it takes none)."""
    library = getattr(backend, "library", None)
    return library if isinstance(library, VectorStoreLibrary | LocalLibrary) else None
