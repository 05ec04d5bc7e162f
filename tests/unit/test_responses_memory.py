"""The Responses backend keeps finished responses only until their answer is read, and few."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from openai.types.responses import Response

from bot.backends.base import RunStatus
from bot.backends.responses import FINISHED_KEPT, ResponsesBackend


class Responses:
    """`client.responses` that knows each response's status (from its id) and counts reads."""

    def __init__(self) -> None:
        self.retrieved = 0
        self.with_raw_response = RawResponses(self)

    async def retrieve(self, response_id: str) -> Response:
        self.retrieved += 1
        return Response.model_construct(
            id=response_id, status=response_id.split("_")[0], error=None,
            incomplete_details=None, usage=None, output=[],
        )  # fmt: skip


class RawResponses:
    """`client.responses.with_raw_response`: the same, with (no) headers."""

    def __init__(self, responses: Responses) -> None:
        self._responses = responses

    async def retrieve(self, response_id: str) -> Any:
        response = await self._responses.retrieve(response_id)
        return SimpleNamespace(headers={}, parse=lambda: response)


def backend_with(responses: Responses) -> ResponsesBackend:
    client: Any = SimpleNamespace(responses=responses)
    return ResponsesBackend(client, model="m", instructions="i", max_output_tokens=10)


async def test_failed_and_cancelled_responses_are_not_kept() -> None:
    backend = backend_with(Responses())
    for index in range(10):
        for status in ("failed", "cancelled"):
            state = await backend.run_state("conv", f"{status}_{index}")
            assert state.status == RunStatus(status)
    assert backend._finished == {}


async def test_answered_responses_are_read_once_and_unanswered_ones_are_bounded() -> None:
    responses = Responses()
    backend = backend_with(responses)
    await backend.run_state("conv", "completed_answered")
    await backend.answer("conv", "completed_answered", "")
    assert responses.retrieved == 1, "the answer came from the state already read"
    for index in range(FINISHED_KEPT * 3):  # turns stopped between finishing and answering
        await backend.run_state("conv", f"incomplete_{index}")
    assert len(backend._finished) == FINISHED_KEPT
    assert f"incomplete_{FINISHED_KEPT * 3 - 1}" in backend._finished, "the newest are kept"
