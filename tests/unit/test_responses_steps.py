"""The tool steps a response's output shows, and how they merge with the streamed ones."""

from __future__ import annotations

from openai.types.responses import Response, ResponseFileSearchToolCall

from bot.backends.base import StepKind, StepStatus, ToolStep
from bot.backends.responses import _merged_steps, _steps_in_output


def searched(status: str) -> Response:
    call = ResponseFileSearchToolCall(
        id="fs_1", queries=["q"], status=status, type="file_search_call"
    )  # type: ignore[arg-type]
    return Response.model_construct(output=[call])


def test_a_search_that_failed_is_an_error_step_and_one_that_ran_is_complete() -> None:
    assert _steps_in_output(searched("failed")) == (
        ToolStep("fs_1", StepKind.FILE_SEARCH, StepStatus.ERROR),
    )
    for status in ("completed", "incomplete"):
        [step] = _steps_in_output(searched(status))
        assert step.status is StepStatus.COMPLETE
    [step] = _steps_in_output(searched("searching"))
    assert step.status is StepStatus.IN_PROGRESS


def test_the_output_ends_a_streamed_step_as_it_ended() -> None:
    streamed = (ToolStep("fs_1", StepKind.FILE_SEARCH, StepStatus.IN_PROGRESS),)
    polled = _steps_in_output(searched("failed"))
    assert [s.status for s in _merged_steps(polled, streamed)] == [StepStatus.ERROR]
    still = _steps_in_output(searched("searching"))
    assert _merged_steps(still, streamed) == streamed
