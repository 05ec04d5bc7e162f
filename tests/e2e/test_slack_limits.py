"""Slack's own limits: a fast ack (auth.test asked once, at start) and status edits that give
way to answers when Slack rate-limits chat.update."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from bot.app import TutorBot
from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.settings import BackendKind, ConfigError, StreamingMode
from bot.slack.placeholder import STOP_ACTION
from tests.conftest import RedisServer
from tests.e2e.conftest import Harness, bot_settings, running_harness, start_bot

pytestmark = pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])

BURST = 64


async def test_a_burst_of_first_requests_asks_slack_who_the_bot_is_once(
    harness: Harness,
) -> None:
    """Bolt's own single-workspace authorization asks auth.test on each request until one
    answer is cached: every request of a first burst waited for Slack before its ack."""

    async def deliver(i: int) -> tuple[int, str, str]:
        """One mention, delivered again as Slack does while the bot answers 503 (a loaded
        machine may not record a whole burst within the ack's bound; Slack's later retries
        come at once here)."""
        ts, event_id = harness.events.next_ts(), f"EvBurst{i}"
        for retry in (None, 1, 2, 3):
            status, body, _ = await harness.events.mention(
                f"C{i}", "U1", f"<@UBOT> question {i}", ts=ts, event_id=event_id, retry_num=retry
            )
            if status != 503:
                break
        return status, body, ts

    sent = await asyncio.gather(*(deliver(i) for i in range(BURST)))
    assert [status for status, _, _ in sent] == [200] * BURST
    await harness.wait_idle()
    auth_tests = [call for call in harness.slack.calls if call.method == "auth.test"]
    assert len(auth_tests) <= 1, f"{len(auth_tests)} auth.test calls"
    channel, ts = "C7", sent[7][2]
    [reply] = await harness.wait_for_bot_replies(channel, ts, 1)
    assert harness.slack.visible_text(channel, reply.ts) == "Answer 1: question 7", (
        "the bot's own mention is removed: the cached identity knows its user id"
    )


async def test_a_stop_pressed_by_someone_else_is_acked_without_waiting_for_slack(
    harness: Harness,
) -> None:
    """The note "only the asker can stop this" goes to a response_url that hangs: the click
    is acked all the same (it would wait for the webhook's 30 s timeout before its ack)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(5):
            status, _ = await harness.events.click(
                channel="C1", message_ts="1790000000.000001", user_id="U_OTHER",
                action_id=STOP_ACTION, value="turn_x|U_ASKER",
                response_url=f"http://127.0.0.1:{port}/hook",
            )  # fmt: skip
        assert status == 200
    finally:
        for writer in held:
            writer.close()
        silent.close()


async def test_a_refused_bot_token_stops_the_start_in_plain_words(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> None:
    slack, openai = SlackStandIn(token="xoxb-the-right-one"), OpenAIStandIn()
    settings = bot_settings(
        await slack.start(), await openai.start(), redis_server.url, redis_prefix, backend
    )
    bot = await TutorBot.create(dataclasses.replace(settings, slack_bot_token="xoxb-wrong"))
    try:
        with pytest.raises(ConfigError) as refused:
            await bot.start_http(host="127.0.0.1", port=0)
    finally:
        await bot.stop(grace_seconds=1)
        await slack.stop()
        await openai.stop()
    message = str(refused.value)
    assert message.startswith("Slack refused SLACK_BOT_TOKEN (invalid_auth).")
    assert "xoxb-wrong" not in message, "the token is never shown"


async def test_a_slack_that_cannot_answer_at_start_is_asked_again_later(
    redis_server: RedisServer,
    redis_prefix: str,
    backend: BackendKind,
    stand_ins: tuple[SlackStandIn, OpenAIStandIn],
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack, openai = stand_ins
    slack.fail("auth.test", "service_unavailable")
    settings = bot_settings(
        slack.base_url, openai.base_url, redis_server.url, redis_prefix, backend
    )
    with caplog.at_level(logging.WARNING, logger="bot.slack.identity"):
        bot, events, _ = await start_bot(settings)
    try:
        assert "cannot check SLACK_BOT_TOKEN with Slack (Slack answered service_unavailable)" in (
            caplog.text
        )
        status, _, early = await events.mention("C1", "U1", "<@UBOT> Who was Hypatia?")
        assert status == 200, "the bot serves before Slack told it who it is"
        deadline = asyncio.get_running_loop().time() + 10  # the retry comes after a second
        while bot.identity.known is None:
            assert asyncio.get_running_loop().time() < deadline, "auth.test was not asked again"
            await asyncio.sleep(0.01)
        assert len(slack.calls_to("auth.test")) == 1
        _, _, later = await events.mention("C2", "U1", "<@UBOT> Who was Zeno?")
        for channel, ts in (("C1", early), ("C2", later)):
            await slack.wait_for(
                lambda channel=channel, ts=ts: any(
                    "Answer 1:" in slack.visible_text(channel, m.ts)
                    for m in slack.thread(channel, ts)
                )
            )
        [answer] = [slack.visible_text("C2", m.ts) for m in slack.thread("C2", later)]
        assert answer == "Answer 1: Who was Zeno?"
    finally:
        await bot.stop(grace_seconds=1)
        await events.close()


async def test_a_rate_limited_status_edit_pauses_status_edits_and_the_answer_goes_on(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> None:
    """A status edit that gets 429 is dropped, not retried after Retry-After: no more status
    edits for Retry-After (30 s), and the answer arrives at once."""
    async with running_harness(
        redis_server.url, redis_prefix, backend, streaming=StreamingMode.EDIT
    ) as harness:
        slack = harness.slack
        slack.rate_limit("chat.update", retry_after=30)
        await harness.events.dm("D1", "U1", "[slow:2] [long:1500] Tell me about Rome")

        def answered() -> bool:
            replies = [m for m in slack.channel_top_level("D1") if m.bot_id]
            return any(len(slack.visible_text("D1", m.ts)) == 1500 for m in replies)

        await slack.wait_for(answered, timeout=20)
        await harness.wait_idle()
        updates = [call for call in slack.calls if call.method == "chat.update"]
        assert updates[0].error == "ratelimited", "the first edit was a status edit"
        assert len(updates) == 2, "nothing but the answer after the 429"
        assert updates[1].ok and "still writing" not in updates[1].args["text"]
