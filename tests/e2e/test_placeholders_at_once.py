"""The placeholder at once, and streamed runs followed without polls (issue 10)."""

from __future__ import annotations

import pytest

from bot.settings import BackendKind, StreamingMode
from tests.conftest import RedisServer
from tests.e2e.conftest import CREATE_PATH, Harness, running_harness

CHANNEL = "C800"
USER = "U800"


async def test_questions_waiting_behind_an_earlier_one_show_their_placeholders_at_once(
    harness: Harness,
) -> None:
    held = harness.openai.hold("POST", CREATE_PATH[harness.settings.backend])
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> first")
    for text in ("second", "third"):
        await harness.events.mention(CHANNEL, USER, f"<@UBOT> {text}", thread_ts=root)
    # All three while the first question's run cannot even start.
    await harness.slack.wait_for(lambda: len(harness.bot_texts(CHANNEL, root)) == 3)
    texts = harness.bot_texts(CHANNEL, root)
    assert all("Thinking" in text for text in texts)
    assert all("earlier question" in text for text in texts[1:]), texts
    held.set()
    await harness.slack.wait_for(
        lambda: not any("Thinking" in t for t in harness.bot_texts(CHANNEL, root)), timeout=20
    )
    assert harness.bot_texts(CHANNEL, root) == [
        "Answer 1: first", "Answer 2: second", "Answer 3: third",
    ]  # fmt: skip


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_a_question_waiting_for_a_free_slot_shows_its_placeholder_at_once(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> None:
    async with running_harness(redis_server.url, redis_prefix, backend, concurrency=1) as h:
        held = h.openai.hold("POST", CREATE_PATH[backend])
        _, _, busy_root = await h.events.mention(CHANNEL, USER, "<@UBOT> one")
        await h.openai.wait_for(lambda: h.openai.count("POST", CREATE_PATH[backend]) == 1)
        _, _, root = await h.events.mention(CHANNEL, USER, "<@UBOT> two")
        await h.slack.wait_for(lambda: len(h.bot_texts(CHANNEL, root)) == 1)
        assert "in line" in h.bot_texts(CHANNEL, root)[0], "it says it waits for capacity"
        held.set()
        await h.slack.wait_for(lambda: h.bot_texts(CHANNEL, root) == ["Answer 1: two"], timeout=20)
        assert h.bot_texts(CHANNEL, busy_root) == ["Answer 1: one"]


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES, BackendKind.ASSISTANTS])
async def test_a_streamed_run_is_answered_without_a_single_status_check(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> None:
    async with running_harness(
        redis_server.url, redis_prefix, backend, streaming=StreamingMode.EDIT, poll_interval=0.02
    ) as h:
        _, _, root = await h.events.mention(CHANNEL, USER, "<@UBOT> [slow:0.5] Who was Sappho?")
        await h.slack.wait_for(lambda: h.bot_texts(CHANNEL, root) == ["Answer 1: Who was Sappho?"])
        status_checks = r"/responses/resp_|/runs/run_"
        assert h.openai.count("GET", status_checks) == 0, "its stream told the engine everything"
