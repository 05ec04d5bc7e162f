"""The Responses backend (default): a Slack conversation is a Conversations API conversation.

A turn is one background response on that conversation: the server stores the history,
runs the model in the background, and we poll the response's status like a run's.
"""

from __future__ import annotations

import logging

import openai
from openai.types.responses import Response

from bot.backends.base import Answer, RunState, RunStatus, Usage, UserMessage
from bot.backends.openai_client import translated_errors

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
# Conversation metadata values are at most 512 characters.
METADATA_VALUE_LIMIT = 512


class ResponsesBackend:
    """Runs turns as background responses on a conversation (`conv_…`)."""

    name = "responses"

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        instructions: str,
        max_output_tokens: int,
    ) -> None:
        self._client = client
        self._model = model
        self._instructions = instructions
        self._max_output_tokens = max_output_tokens
        # The last state read of each response still being followed, so the answer needs
        # no second request.
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
        with translated_errors("create response"):
            response = await self._client.responses.create(
                model=self._model,
                conversation=conversation_id,
                input=[{"role": "user", "content": message.text}],
                instructions=self._instructions,
                background=True,
                store=True,
                truncation="auto",
                max_output_tokens=self._max_output_tokens,
                metadata={"turn_id": message.turn_id},
            )
        return response.id

    async def find_message(self, conversation_id: str, message: UserMessage) -> str | None:
        return ""  # the message travels with the response: there is nothing to add twice

    async def find_run(self, conversation_id: str, message: UserMessage) -> str | None:
        """None: responses cannot be listed, so a response whose id was never recorded (a
        crash within the create request) cannot be followed and the turn starts a new one."""
        return None

    async def run_state(self, conversation_id: str, run_id: str) -> RunState:
        with translated_errors("check response"):
            response = await self._client.responses.retrieve(run_id)
        status = STATUS_OF.get(response.status or "", RunStatus.IN_PROGRESS)
        if status.is_final:
            self._finished[run_id] = response
        error = None
        if response.error is not None:
            error = response.error.message
        elif response.incomplete_details is not None:
            error = f"incomplete: {response.incomplete_details.reason}"
        return RunState(status, error=error, usage=_usage(response))

    async def answer(self, conversation_id: str, run_id: str, after_message_id: str) -> Answer:
        response = self._finished.pop(run_id, None)
        if response is None:
            with translated_errors("fetch answer"):
                response = await self._client.responses.retrieve(run_id)
        texts: list[str] = []
        annotations: list[str] = []
        for item in response.output:
            if item.type != "message":
                continue
            for part in item.content:
                if part.type == "output_text":
                    texts.append(part.text)
                    annotations.extend(_annotation_text(a) for a in part.annotations)
        return Answer("\n\n".join(texts), usage=_usage(response), annotations=annotations)

    async def cancel_run(self, conversation_id: str, run_id: str) -> None:
        self._finished.pop(run_id, None)
        try:
            with translated_errors("cancel response"):
                await self._client.responses.cancel(run_id)
        except Exception as error:  # a response that already ended cannot be cancelled: fine
            log.info("cancel of response %s not applied: %s", run_id, error)

    async def close(self) -> None:
        await self._client.close()


def _usage(response: Response) -> Usage | None:
    if response.usage is None:
        return None
    details = response.usage.input_tokens_details
    return Usage(
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        cached_tokens=details.cached_tokens if details is not None else 0,
    )


def _annotation_text(annotation: object) -> str:
    """A readable label for a citation: its title and URL, or its file name."""
    title = getattr(annotation, "title", None) or getattr(annotation, "filename", None)
    url = getattr(annotation, "url", None)
    if title and url:
        return f"{title} ({url})"
    return str(title or url or getattr(annotation, "file_id", ""))
