"""HTTP mode details: signatures, health, and Redis going away and coming back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.settings import BackendKind
from tests.e2e.conftest import Harness, harness_with_own_redis

pytestmark = pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])

MENTION = {"type": "app_mention", "channel": "C1", "user": "U1", "text": "<@UBOT> hi"}


async def test_bad_or_stale_signatures_get_401_and_cause_nothing(harness: Harness) -> None:
    status, _ = await harness.events.send_event(
        {**MENTION, "ts": "1700000000.000001"}, signature="v0=" + "0" * 64
    )
    assert status == 401
    stale = int(time.time()) - 10 * 60
    status, _ = await harness.events.send_event(
        {**MENTION, "ts": "1700000000.000002"}, timestamp=stale
    )
    assert status == 401
    await harness.wait_idle()
    assert harness.slack.calls_to("chat.postMessage") == []
    assert harness.openai.requests == []


async def test_url_verification_is_answered(harness: Harness) -> None:
    status, body = await harness.events.url_verification("challenge-123")
    assert status == 200 and "challenge-123" in body


async def test_healthz_follows_redis(
    tmp_path: Path, redis_prefix: str, backend: BackendKind
) -> None:
    async with harness_with_own_redis(tmp_path, redis_prefix, backend) as (harness, own_redis):
        status, body = await harness.get("/healthz")
        assert (status, '"ok"' in body) == (200, True)
        own_redis.stop()
        status, _ = await harness.get("/healthz")
        assert status == 503
        own_redis.start()
        status, _ = await harness.get("/healthz")
        assert status == 200


async def test_a_message_that_cannot_be_recorded_is_delivered_again_and_noticed_once(
    tmp_path: Path, redis_prefix: str, backend: BackendKind
) -> None:
    async with harness_with_own_redis(tmp_path, redis_prefix, backend) as (harness, own_redis):
        own_redis.stop()
        events = harness.events
        question = "<@UBOT> are you there?"
        started = time.monotonic()
        status, _, ts = await events.mention("C1", "U1", question, event_id="EvDOWN")
        assert status == 503, "Slack delivers it again"
        assert time.monotonic() - started < 2.5, "answered well within Slack's 3 s"
        status, _, dm_ts = await events.dm("D1", "U1", "and here?", event_id="EvDOWNDM")
        assert status == 503
        for retry in (1, 2):
            status, _, _ = await events.mention(
                "C1", "U1", question, ts=ts, event_id="EvDOWN", retry_num=retry
            )
            assert status == 503
            status, _, _ = await events.dm(
                "D1", "U1", "and here?", ts=dm_ts, event_id="EvDOWNDM", retry_num=retry
            )
            assert status == 503
        await harness.bot.background.drain(15)  # notices wait for Slack's redelivery first
        notices = harness.slack.calls_to("chat.postMessage")
        assert [(n.args["channel"], n.args.get("thread_ts")) for n in notices] == [
            ("C1", ts),
            ("D1", None),
        ], "one notice per message, however often it is delivered"
        assert all("can't take questions" in n.args["text"] for n in notices)

        own_redis.start()
        status, _, _ = await events.mention(
            "C1", "U1", question, ts=ts, event_id="EvDOWN", retry_num=3
        )
        assert status == 200
        replies = await harness.wait_for_bot_replies("C1", ts, 2)
        assert harness.slack.visible_text("C1", replies[1].ts) == "Answer 1: are you there?"
        status, _, _ = await events.mention(
            "C1", "U1", question, ts=ts, event_id="EvDOWN", retry_num=3
        )
        assert status == 200
        await harness.wait_idle()
        assert len(harness.slack.thread("C1", ts)) == 2, "answered once"
