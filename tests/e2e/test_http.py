"""HTTP mode details: signatures, health, and Redis going away and coming back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.settings import BackendKind
from tests.conftest import RedisServer
from tests.e2e.conftest import Harness, running_harness

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
    own_redis = RedisServer(tmp_path)
    own_redis.start()
    try:
        async with running_harness(own_redis.url, redis_prefix, backend) as harness:
            status, body = await harness.get("/healthz")
            assert (status, '"ok"' in body) == (200, True)

            own_redis.stop()
            status, _ = await harness.get("/healthz")
            assert status == 503
            _, _, ts = await harness.events.mention("C1", "U1", "<@UBOT> are you there?")
            replies = await harness.wait_for_bot_replies("C1", ts, 1)
            assert "can't take questions" in harness.slack.visible_text("C1", replies[0].ts)

            own_redis.start()
            status, _ = await harness.get("/healthz")
            assert status == 200
            _, _, ts = await harness.events.mention("C1", "U1", "<@UBOT> and now?")
            replies = await harness.wait_for_bot_replies("C1", ts, 1)
            assert harness.slack.visible_text("C1", replies[0].ts) == "Answer 1: and now?"
    finally:
        own_redis.stop()
