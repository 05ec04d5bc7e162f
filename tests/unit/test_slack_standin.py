"""The Slack stand-in behaves like the Web API as the real slack_sdk client sees it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.local.slack_api import NON_MARKETPLACE_RATE_LIMITS, SlackStandIn
from bot.local.slack_events import SlackEventSender, sign


async def test_post_update_delete_and_what_a_person_sees(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    auth = await client.auth_test()
    assert auth["user_id"] == "UBOT" and auth["bot_id"] == "BBOT"
    root = await client.chat_postMessage(channel="C1", text="root")
    reply = await client.chat_postMessage(channel="C1", thread_ts=root["ts"], text="Thinking…")
    assert float(reply["ts"]) > float(root["ts"])
    await client.chat_update(channel="C1", ts=reply["ts"], text="The answer")
    assert slack.visible_text("C1", reply["ts"]) == "The answer"
    assert slack.messages[("C1", reply["ts"])].edits == ["Thinking…", "The answer"]
    assert [m.ts for m in slack.thread("C1", root["ts"])] == [root["ts"], reply["ts"]]
    await client.chat_delete(channel="C1", ts=reply["ts"])
    assert [m.ts for m in slack.thread("C1", root["ts"])] == [root["ts"]]
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "from blocks"}}]
    posted = await client.chat_postMessage(channel="C2", text="fallback", blocks=blocks)
    assert slack.visible_text("C2", posted["ts"]) == "from blocks"


async def test_errors_come_back_as_slack_sends_them(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.channels_without_bot.add("C9")
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C9", text="x")
    assert raised.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError, match="message_not_found"):
        await client.chat_update(channel="C1", ts="1.000001", text="x")
    with pytest.raises(SlackApiError, match="invalid_auth"):
        await AsyncWebClient(token="xoxb-wrong", base_url=slack.base_url).auth_test()
    with pytest.raises(SlackApiError, match="markdown_text_conflict"):
        await client.chat_postMessage(channel="C1", text="x", markdown_text="y")
    slack.fail("chat.postMessage", "fatal_error")
    with pytest.raises(SlackApiError, match="fatal_error"):
        await client.chat_postMessage(channel="C1", text="x")


async def test_rate_limits_answer_429_with_retry_after(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    slack.rate_limit("chat.update", retry_after=7)
    posted = await client.chat_postMessage(channel="C1", text="x")
    with pytest.raises(SlackApiError) as raised:
        await client.chat_update(channel="C1", ts=posted["ts"], text="y")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "7"
    await client.chat_update(channel="C1", ts=posted["ts"], text="y")


class FakeClock:
    """The stand-in's rate-limit clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def status_of(call: Awaitable[object]) -> tuple[int, str | None]:
    """(HTTP status, Retry-After) of a Web API call made without retry handlers."""
    try:
        await call
    except SlackApiError as error:
        return error.response.status_code, error.response.headers.get("Retry-After")
    return 200, None


async def test_published_tiers_hold_chat_update_to_tier_3_per_workspace() -> None:
    slack = SlackStandIn(token="xoxb-ok", rate_limits=True)
    slack.clock = clock = FakeClock()
    await slack.start()
    try:
        client = AsyncWebClient(token="xoxb-ok", base_url=slack.base_url)
        posted = [
            (await client.chat_postMessage(channel=f"C{i}", text="x"))["ts"] for i in range(51)
        ]
        edits = [
            await status_of(client.chat_update(channel=f"C{i}", ts=ts, text="y"))
            for i, ts in enumerate(posted)
        ]
        # A minute's allowance at once (Tier 3: 50), then 429 until the bucket refills.
        assert edits == [(200, None)] * 50 + [(429, "2")]
        assert slack.calls[-1].error == "ratelimited"
        clock.now += 1.2  # 50 a minute: one more call after 1.2 s
        assert await status_of(client.chat_update(channel="C50", ts=posted[50], text="y")) == (
            200,
            None,
        )
        assert (await status_of(client.chat_update(channel="C0", ts=posted[0], text="z")))[0] == 429
    finally:
        await slack.stop()


async def test_published_tiers_limit_posts_per_channel_with_a_short_burst() -> None:
    slack = SlackStandIn(token="xoxb-ok", rate_limits=True)
    slack.clock = clock = FakeClock()
    await slack.start()
    try:
        client = AsyncWebClient(token="xoxb-ok", base_url=slack.base_url)
        in_c1 = [await status_of(client.chat_postMessage(channel="C1", text="x")) for _ in range(4)]
        assert in_c1 == [(200, None)] * 3 + [(429, "1")]
        assert await status_of(client.chat_postMessage(channel="C2", text="x")) == (200, None)
        clock.now += 1.0
        assert await status_of(client.chat_postMessage(channel="C1", text="x")) == (200, None)
    finally:
        await slack.stop()


async def test_rate_limits_are_off_unless_asked_and_switchable(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C1", text="x")
    for _ in range(60):  # beyond Tier 3's burst: no limits by default
        await client.chat_update(channel="C1", ts=posted["ts"], text="y")
    slack.clock = clock = FakeClock()
    slack.enforce_rate_limits(NON_MARKETPLACE_RATE_LIMITS)
    replies = [await status_of(client.conversations_replies(channel="C1", ts="1.1")) for _ in "ab"]
    # Outside the Marketplace: one conversations.replies a minute.
    assert replies == [(200, None), (429, "60")]
    clock.now += 60
    assert await status_of(client.conversations_replies(channel="C1", ts="1.1")) == (200, None)
    slack.enforce_rate_limits(None)
    replies = [await status_of(client.conversations_replies(channel="C1", ts="1.1")) for _ in "ab"]
    assert replies == [(200, None), (200, None)]


async def test_response_urls_take_five_messages(slack: SlackStandIn) -> None:
    webhook = AsyncWebhookClient(slack.new_response_url())
    statuses = [(await webhook.send(text=f"m{i}")).status_code for i in range(6)]
    assert statuses == [200] * 5 + [404]
    assert [p["text"] for p in slack.response_url_posts] == [f"m{i}" for i in range(5)]


async def test_streams_need_recipients_outside_dms(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    with pytest.raises(SlackApiError, match="missing_recipient"):
        await client.api_call("chat.startStream", json={"channel": "C1", "thread_ts": "1.1"})
    started = await client.api_call("chat.startStream", json={"channel": "D1", "thread_ts": "1.1"})
    ts = started["ts"]
    await client.api_call(
        "chat.appendStream", json={"channel": "D1", "ts": ts, "markdown_text": "Hel"}
    )
    await client.api_call(
        "chat.stopStream", json={"channel": "D1", "ts": ts, "markdown_text": "lo"}
    )
    assert slack.visible_text("D1", ts) == "Hello"


async def test_wait_for_wakes_on_a_call_and_times_out_helpfully(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    waiter = asyncio.create_task(slack.wait_for(lambda: len(slack.calls) >= 1, timeout=5))
    await client.chat_postMessage(channel="C1", text="x")
    await waiter
    with pytest.raises(TimeoutError, match=r"chat\.postMessage"):
        await slack.wait_for(lambda: False, timeout=0.05)


async def test_sender_signs_like_slack() -> None:
    timestamp = int(time.time())
    body = '{"a": 1}'
    assert SignatureVerifier("s3cret").is_valid(body, timestamp, sign("s3cret", timestamp, body))

    received: dict[str, str] = {}

    async def capture(request: aiohttp.web.Request) -> aiohttp.web.Response:
        received.update(request.headers)
        received["body"] = await request.text()
        return aiohttp.web.Response(text="ok")

    app = aiohttp.web.Application()
    app.router.add_post("/slack/events", capture)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    sender = SlackEventSender(f"http://127.0.0.1:{port}/slack/events", "s3cret")
    try:
        await sender.mention("C1", "U1", "<@UBOT> hi", retry_num=2)
    finally:
        await sender.close()
        await runner.cleanup()
    verifier = SignatureVerifier("s3cret")
    assert verifier.is_valid(
        received["body"],
        received["X-Slack-Request-Timestamp"],
        received["X-Slack-Signature"],
    )
    assert received["X-Slack-Retry-Num"] == "2"
