"""Private by default: message text never reaches the logs at INFO or above, and leaves Redis
once its turn is delivered (except in the `chat` history, which is the conversation)."""

from __future__ import annotations

import logging

import pytest

from bot.settings import BackendKind
from bot.storage.connection import connect
from tests.e2e.conftest import CREATE_PATH, Harness
from tests.e2e.leftovers import dm_answers
from tests.redis_contents import naming, redis_contents

# Short (a Home topic was once a question's first eight words, so a short question stayed).
QUESTION = "What did quipucamayoc record?"


@pytest.mark.parametrize(
    "backend", [BackendKind.RESPONSES, BackendKind.CHAT], ids=["responses", "chat"]
)
async def test_question_text_stays_out_of_logs_and_leaves_redis_once_delivered(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    backend = harness.settings.backend
    create = harness.openai.hold("POST", CREATE_PATH[backend])
    dm = "D900"
    status, _ = await harness.events.slash_command(
        "/tutor", "mode guided", channel_id=dm, user_id="U900", response_url="http://unused"
    )  # guided: its turn is kept for "Show me the answer", its text is not
    assert status == 200
    await harness.events.dm(dm, "U900", QUESTION)
    await harness.openai.wait_for(lambda: harness.openai.count("POST", CREATE_PATH[backend]) == 1)
    redis = connect(harness.settings.redis_url or "")
    try:
        prefix = harness.settings.redis_prefix
        holding = naming(await redis_contents(redis, prefix), QUESTION)
        assert [name for name in holding if ":turn:" in name], "kept until delivered"

        create.set()
        await harness.slack.wait_for(lambda: dm_answers(harness, dm) == [f"Answer 1: {QUESTION}"])
        await harness.wait_idle()
        contents = await redis_contents(redis, prefix)
    finally:
        await redis.aclose()
    holding = naming(contents, QUESTION)  # the question, and the answer that repeats it
    if backend is BackendKind.CHAT:
        assert holding and all(":chat:history:" in name for name in holding)
    else:
        assert holding == {}
    assert not [name for name in contents if ":chat:run:" in name or ":chat:turn-run:" in name]

    logged = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r for r in logged if r.name.startswith("bot.turns")], "the turn was logged"
    assert [r.getMessage() for r in logged if QUESTION in r.getMessage()] == []
