"""Slack's AI app surfaces: agent_view's Messages tab and legacy assistant_view threads."""

from __future__ import annotations

import pytest

from bot.settings import BackendKind
from tests.e2e.conftest import Harness

pytestmark = pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
DM = "D800"
USER = "U800"


async def test_the_messages_tab_gets_suggested_prompts_without_a_thread(harness: Harness) -> None:
    await harness.events.send_event(
        {"type": "app_home_opened", "user": USER, "channel": DM, "tab": "messages"}
    )
    await harness.events.send_event(
        {"type": "app_home_opened", "user": USER, "channel": DM, "tab": "home"}
    )
    await harness.slack.wait_for(
        lambda: bool(harness.slack.calls_to("assistant.threads.setSuggestedPrompts"))
    )
    [call] = harness.slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert call.args["channel_id"] == DM and "thread_ts" not in call.args
    assert 1 <= len(call.args["prompts"]) <= 4
    assert all(p["title"] and p["message"] for p in call.args["prompts"])


async def test_an_assistant_thread_gets_prompts_a_title_and_pane_status(harness: Harness) -> None:
    thread_ts = harness.events.next_ts()
    await harness.events.send_event(
        {
            "type": "assistant_thread_started",
            "assistant_thread": {
                "user_id": USER,
                "channel_id": DM,
                "thread_ts": thread_ts,
                "context": {"channel_id": "C1", "team_id": "T1"},
            },
        }
    )
    await harness.slack.wait_for(
        lambda: bool(harness.slack.calls_to("assistant.threads.setSuggestedPrompts"))
    )
    [prompts] = harness.slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert prompts.args["thread_ts"] == thread_ts

    await harness.events.dm(DM, USER, "Who was Mansa Musa?", thread_ts=thread_ts)
    replies = await harness.wait_for_bot_replies(DM, thread_ts, 1)
    assert harness.slack.visible_text(DM, replies[0].ts) == "Answer 1: Who was Mansa Musa?"
    await harness.events.dm(DM, USER, "[slow:0.3] How rich was he?", thread_ts=thread_ts)
    await harness.wait_for_bot_replies(DM, thread_ts, 2)
    await harness.wait_idle()

    titles = harness.slack.calls_to("assistant.threads.setTitle")
    assert [t.args["title"] for t in titles] == ["Who was Mansa Musa?"], "titled once, first"
    statuses = [c.args["status"] for c in harness.slack.calls_to("assistant.threads.setStatus")]
    assert any(s.startswith("is ") for s in statuses)
    assert statuses[-1] == "", "cleared when the answer is there"
