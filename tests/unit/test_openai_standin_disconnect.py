"""A client leaving a stream early (a stopped bot, a cancelled turn) is no server error."""

from __future__ import annotations

import asyncio
import logging

import pytest
from openai import AsyncOpenAI

from bot.local.openai_api import OpenAIStandIn


async def test_a_client_leaving_mid_stream_is_not_logged_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stand_in = OpenAIStandIn(queued_seconds=0.05, in_progress_seconds=0.3)
    client = AsyncOpenAI(api_key="sk-test", base_url=await stand_in.start(), max_retries=0)
    try:
        stream = await client.responses.create(
            model="m", input="a question long enough to stream", stream=True, background=True
        )
        async for event in stream:
            assert event.type == "response.created"
            break
        await stream.close()
        job = next(iter(stand_in.response_jobs.values()))
        async with asyncio.timeout(5):  # until the stand-in's next write finds the client gone
            while True:
                if not job.streaming:
                    break
                await asyncio.sleep(0.01)
    finally:
        await client.close()
        await stand_in.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
