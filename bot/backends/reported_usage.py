"""The tokens a model server reports, read from either API's usage object into `Usage`."""

from __future__ import annotations

from openai.types.completion_usage import CompletionUsage
from openai.types.responses import Response

from bot.backends.base import Usage


def usage_of_response(response: Response) -> Usage | None:
    """A Responses API response's usage (None while it reports none)."""
    if response.usage is None:
        return None
    details = response.usage.input_tokens_details
    return Usage(
        input_tokens=response.usage.input_tokens,
        output_tokens=response.usage.output_tokens,
        cached_tokens=(details.cached_tokens or 0) if details is not None else 0,
    )


def usage_of_completion(usage: CompletionUsage | None) -> Usage | None:
    """A Chat Completions usage (a completion's, or a stream's last chunk's)."""
    if usage is None:
        return None
    details = usage.prompt_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        cached_tokens=(details.cached_tokens or 0) if details is not None else 0,
    )
