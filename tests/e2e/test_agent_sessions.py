"""Slack's agent surface: session statuses and titles where the app is an agent, today's
behaviour where it is not, and the native Stop (agent_session_stopped), also on streams."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.local.slack_api import SESSION_STATUSES
from bot.settings import BackendKind, StreamingMode
from tests.conftest import RedisServer
from tests.e2e.conftest import Harness, running_harness

pytestmark = pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
CHANNEL = "C950"
USER = "U950"
OTHER = "U951"


@pytest.fixture
async def streaming(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> AsyncIterator[Harness]:
    """A bot that streams answers natively in threads (the other modules' bots do not)."""
    async with running_harness(
        redis_server.url, redis_prefix, backend, streaming=StreamingMode.NATIVE
    ) as harness:
        yield harness


def session_statuses(harness: Harness, thread_ts: str) -> list[str]:
    """The statuses the bot gave the thread's session, in order, repeats folded."""
    statuses: list[str] = []
    for call in harness.slack.calls:
        if call.method == "agents.sessions.setStatus" and call.args.get("thread_ts") == thread_ts:
            status = str(call.args["status"])
        elif call.method == "chat.stopStream" and call.args.get("session_status"):
            status = str(call.args["session_status"])
        else:
            continue
        if not statuses or statuses[-1] != status:
            statuses.append(status)
    return statuses


async def test_an_agent_app_shows_the_session_working_then_waiting_with_a_title(
    harness: Harness,
) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> Tell me about Boudica.")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.wait_idle()
    assert session_statuses(harness, root) == ["processing", "active"]
    await harness.events.mention(CHANNEL, USER, "<@UBOT> Where did she fight?", thread_ts=root)
    await harness.wait_for_bot_replies(CHANNEL, root, 2)
    await harness.wait_idle()
    # The scripted answer repeats the question: it ends asking something, so the session
    # waits for the learner.
    assert session_statuses(harness, root) == ["processing", "active", "processing", "suspended"]
    statuses = [c.args["status"] for c in harness.slack.calls_to("agents.sessions.setStatus")]
    assert set(statuses) <= SESSION_STATUSES
    [rename] = harness.slack.calls_to("agents.sessions.rename")
    title = "Tell me about Boudica."  # the first question
    assert rename.args == {"channel_id": CHANNEL, "thread_ts": root, "title": title}
    session = harness.slack.agent_sessions[(CHANNEL, root)]
    assert session.title == title and session.status == "suspended"
    assert session.initiator == USER


async def test_an_app_that_is_no_agent_answers_as_before(streaming: Harness) -> None:
    harness = streaming
    harness.slack.agent_app = False
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> [slow:0.5] Who was Cato")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.events.mention(CHANNEL, USER, "<@UBOT> [slow:0.5] And Scipio", thread_ts=root)
    replies = await harness.wait_for_bot_replies(CHANNEL, root, 2)
    await harness.wait_idle()
    texts = [harness.slack.visible_text(CHANNEL, m.ts) for m in replies]
    assert texts == ["Answer 1: Who was Cato", "Answer 2: And Scipio"]
    tried = [c for c in harness.slack.calls if c.method.startswith("agents.")]
    assert [(c.method, c.error) for c in tried] == [
        ("agents.sessions.setStatus", "not_authorized")
    ], "tried once, then the workspace is known to have no sessions"
    stops = harness.slack.calls_to("chat.stopStream")
    assert len(stops) == 2 and not any("session_status" in c.args for c in stops)
    assert not harness.slack.calls_to("chat.postEphemeral")


async def test_the_native_stop_stops_a_streamed_run_for_the_asker_only(
    streaming: Harness,
) -> None:
    harness = streaming
    question = "<@UBOT> [slow:5] [long:3000] Tell me everything"
    _, _, root = await harness.events.mention(CHANNEL, USER, question)
    await harness.slack.wait_for(lambda: bool(harness.slack.calls_to("chat.startStream")))
    [start] = harness.slack.calls_to("chat.startStream")
    stream_ts = start.response["ts"]

    status, _ = await harness.native_stop(CHANNEL, root, OTHER)  # Slack stops the stream
    assert status == 200
    await harness.slack.wait_for(lambda: bool(harness.slack.calls_to("chat.postEphemeral")))
    [refusal] = harness.slack.calls_to("chat.postEphemeral")
    assert refusal.args["user"] == OTHER and f"Only <@{USER}> can stop" in refusal.args["text"]
    assert harness.openai.count("POST", r"/responses/[^/]+/cancel$") == 0

    status, _ = await harness.native_stop(CHANNEL, root, USER)
    assert status == 200
    text = await harness.wait_for_text(CHANNEL, stream_ts, lambda t: "stopped" in t, timeout=5)
    assert "Answer 1" not in text, "the turn ends saying it was stopped"
    await harness.wait_idle()
    assert harness.openai.count("POST", r"/responses/[^/]+/cancel$") == 1
    assert session_statuses(harness, root)[-1] == "active", "the app moved it off processing"
    assert harness.slack.agent_sessions[(CHANNEL, root)].status == "active"
