"""Asking the model for a quiz: one call outside the learner's conversation, as structured
output, through the backend's own AsyncOpenAI client (its timeout, its retries).

- `responses`: `POST /responses` with `text.format` a strict JSON schema and `store: false`
  (nothing kept at the provider; no conversation).
- `chat`: `POST /chat/completions` with `response_format` a strict JSON schema. A server
  that refuses it (a 400 naming `response_format`) is asked with the schema in the
  instructions instead, from then on (one warning in the log). Chat Completions stores
  nothing unless asked to (`store` is left out: OpenAI's default is false, and local servers
  do not know it).
- `assistants`: the protocol has no call outside a thread (a quiz would leave a thread and a
  run behind on the server), so the quiz is asked by Chat Completions, which servers that
  still speak Assistants serve too; one that does not (404: no such API) is asked through
  Responses from then on.

Every writer answers with the model's text (`ModelText`); `bot.tutor.quiz` checks it.
"""

from __future__ import annotations

import logging
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from bot.backends.base import BackendError
from bot.backends.openai_client import (
    TELL_ADMIN,
    is_missing_endpoint,
    read_reply,
    rejects_parameter,
    translated_errors,
)
from bot.backends.reported_usage import usage_of_completion, usage_of_response
from bot.settings import BackendKind, Settings, TokenLimitField
from bot.tutor.quiz import (
    QUIZ_OUTPUT_TOKENS,
    QUIZ_SCHEMA,
    SCHEMA_NAME,
    ModelText,
    QuizPrompt,
    QuizWriter,
    asking_for_json,
)

log = logging.getLogger(__name__)

ACTION = "write quiz"
NO_RESPONSE_FORMAT = (
    "the model server refused response_format (a JSON schema): quizzes are asked for with the "
    "schema in the instructions from now on"
)
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": SCHEMA_NAME, "schema": QUIZ_SCHEMA, "strict": True},
}
TEXT_FORMAT: dict[str, Any] = {
    "format": {"type": "json_schema", "name": SCHEMA_NAME, "schema": QUIZ_SCHEMA, "strict": True}
}


class ApiNotServed(BackendError):
    """The model server has no such API at all (a 404 for the create itself)."""


def _not_served(api: str, error: openai.APIStatusError) -> ApiNotServed | None:
    if not isinstance(error, openai.NotFoundError) or not is_missing_endpoint(error):
        return None
    return ApiNotServed(
        f"{ACTION}: 404, no {api}",
        reason=f"the model server does not offer the {api}",
        advice=TELL_ADMIN,
    )


class ResponsesQuizWriter:
    """A quiz from one stored-nowhere response with a JSON schema as its text format."""

    def __init__(self, client: openai.AsyncOpenAI, *, model: str) -> None:
        self._client = client
        self._model = model

    async def write(self, prompt: QuizPrompt) -> ModelText:
        with translated_errors(ACTION):
            try:
                response = await self._client.responses.create(
                    model=self._model,
                    instructions=prompt.instructions,
                    input=prompt.message,
                    store=False,
                    max_output_tokens=QUIZ_OUTPUT_TOKENS,
                    text=TEXT_FORMAT,  # type: ignore[arg-type]
                )
            except openai.APIStatusError as error:
                not_served = _not_served("Responses API", error)
                if not_served is None:
                    raise
                raise not_served from error
        with read_reply(ACTION):
            return ModelText(response.output_text, usage_of_response(response))


class ChatQuizWriter:
    """A quiz from one chat completion with a JSON schema as its response format (or, where
    the server refuses that, with the schema in the instructions)."""

    def __init__(
        self, client: openai.AsyncOpenAI, *, model: str, token_field: TokenLimitField
    ) -> None:
        self._client = client
        self._model = model
        self._token_field = token_field
        self._schema_format = True  # until the server refuses `response_format`

    async def write(self, prompt: QuizPrompt) -> ModelText:
        with translated_errors(ACTION):
            try:
                completion = await self._create(prompt)
            except openai.APIStatusError as error:
                not_served = _not_served("Chat Completions API", error)
                if not_served is None:
                    raise
                raise not_served from error
        with read_reply(ACTION):
            return ModelText(
                completion.choices[0].message.content or "", usage_of_completion(completion.usage)
            )

    async def _create(self, prompt: QuizPrompt) -> ChatCompletion:
        asked = self._schema_format
        if asked:
            try:
                return await self._client.chat.completions.create(
                    **self._request(prompt),
                    response_format=RESPONSE_FORMAT,  # type: ignore[arg-type]
                )
            except openai.APIStatusError as error:
                if not rejects_parameter(error, "response_format"):
                    raise
                if self._schema_format:
                    self._schema_format = False
                    log.warning(NO_RESPONSE_FORMAT)
        return await self._client.chat.completions.create(**self._request(asking_for_json(prompt)))

    def _request(self, prompt: QuizPrompt) -> dict[str, Any]:
        return {
            "model": self._model,
            "messages": [
                {"role": "system", "content": prompt.instructions},
                {"role": "user", "content": prompt.message},
            ],
            self._token_field.value: QUIZ_OUTPUT_TOKENS,
        }


class FirstServedQuizWriter:
    """Asks the first of `writers` whose API the server serves, and remembers which."""

    def __init__(self, *writers: QuizWriter) -> None:
        self._writers = writers
        self._current = 0

    async def write(self, prompt: QuizPrompt) -> ModelText:
        while True:
            try:
                return await self._writers[self._current].write(prompt)
            except ApiNotServed as error:
                if self._current + 1 >= len(self._writers):
                    raise
                self._current += 1
                log.warning("%s: quizzes are asked through the next API from now on", error)


def build_quiz_writer(settings: Settings, client: openai.AsyncOpenAI) -> QuizWriter:
    """The quiz writer for the configured backend, on the backend's client."""
    chat = ChatQuizWriter(client, model=settings.tutor_model, token_field=settings.chat_token_field)
    responses = ResponsesQuizWriter(client, model=settings.tutor_model)
    if settings.backend is BackendKind.CHAT:
        return chat
    if settings.backend is BackendKind.ASSISTANTS:
        return FirstServedQuizWriter(chat, responses)
    return responses
