"""Socket Mode: with SLACK_APP_TOKEN the bot connects out and gets the same events."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import TutorBot
from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.settings import BackendKind
from tests.conftest import RedisServer
from tests.e2e.conftest import bot_settings


@contextlib.asynccontextmanager
async def socket_mode_bot(
    slack: SlackStandIn, openai: OpenAIStandIn, redis_url: str, prefix: str
) -> AsyncIterator[TutorBot]:
    """The bot connected over Socket Mode to the Slack stand-in, stopped on exit."""
    settings = dataclasses.replace(
        bot_settings(slack.base_url, openai.base_url, redis_url, prefix, BackendKind.RESPONSES),
        slack_signing_secret=None,
        slack_app_token=slack.app_token,
        port=0,  # /healthz and /metrics on any free port
    )
    bot = await TutorBot.create(settings)
    await bot.start_socket_mode()
    try:
        yield bot
    finally:
        await bot.stop(grace_seconds=1)


async def test_socket_mode_answers_mentions_and_commands(
    redis_server: RedisServer, redis_prefix: str, stand_ins: tuple
) -> None:
    slack, openai = stand_ins
    async with socket_mode_bot(slack, openai, redis_server.url, redis_prefix):
        await slack.wait_for(lambda: slack.socket_connected)
        mention = {"type": "app_mention", "channel": "C9", "user": "U9",
                   "text": "<@UBOT> Who was Zenobia?", "ts": "1790000000.000100"}  # fmt: skip
        envelope = await slack.send_socket_envelope(
            "events_api",
            {"type": "event_callback", "team_id": "T1", "api_app_id": "A1", "event": mention,
             "event_id": "EvSOCKET1", "event_time": int(time.time())},
        )  # fmt: skip
        await slack.wait_for(lambda: envelope in slack.socket_acks)
        await slack.wait_for(
            lambda: any(
                slack.visible_text("C9", m.ts) == "Answer 1: Who was Zenobia?"
                for m in slack.thread("C9", "1790000000.000100")
            )
        )
        help_envelope = await slack.send_socket_envelope(
            "slash_commands",
            {"command": "/tutor", "text": "help", "team_id": "T1", "channel_id": "C9",
             "user_id": "U9", "response_url": slack.new_response_url()},
        )  # fmt: skip
        await slack.wait_for(lambda: help_envelope in slack.socket_acks)
        assert "/tutor help" in str(slack.socket_acks[help_envelope].get("payload"))


async def test_socket_mode_does_not_ack_a_message_it_cannot_record(
    tmp_path: Path, redis_prefix: str, stand_ins: tuple
) -> None:
    slack, openai = stand_ins
    own_redis = RedisServer(tmp_path)
    own_redis.start()
    try:
        async with socket_mode_bot(slack, openai, own_redis.url, redis_prefix):
            await slack.wait_for(lambda: slack.socket_connected)
            mention = {"type": "app_mention", "channel": "C9", "user": "U9",
                       "text": "<@UBOT> Anyone home?", "ts": "1790000000.000200"}  # fmt: skip
            payload = {"type": "event_callback", "team_id": "T1", "event": mention,
                       "event_id": "EvSOCKETDOWN", "event_time": int(time.time())}  # fmt: skip
            own_redis.stop()
            unacked = await slack.send_socket_envelope("events_api", payload)
            await slack.wait_for(lambda: len(slack.calls_to("chat.postMessage")) == 1)
            assert "can't take questions" in slack.calls_to("chat.postMessage")[0].args["text"]

            own_redis.start()
            redelivered = await slack.send_socket_envelope("events_api", payload)
            await slack.wait_for(lambda: redelivered in slack.socket_acks)
            await slack.wait_for(
                lambda: any(
                    slack.visible_text("C9", m.ts) == "Answer 1: Anyone home?"
                    for m in slack.thread("C9", "1790000000.000200")
                )
            )
            assert unacked not in slack.socket_acks, "Slack delivers what was not acked again"
    finally:
        own_redis.stop()


async def test_socket_mode_acks_malformed_payloads_and_changes_nothing(
    redis_server: RedisServer,
    redis_prefix: str,
    stand_ins: tuple,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack, openai = stand_ins
    async with socket_mode_bot(slack, openai, redis_server.url, redis_prefix) as bot:
        await slack.wait_for(lambda: slack.socket_connected)
        envelopes = [
            await slack.send_socket_envelope("events_api", {"type": "event_callback",
                                                            "event": None}),
            await slack.send_socket_envelope("events_api", {"type": "event_callback",
                "event": {"type": "app_mention", "channel": "C9", "user": "U9", "text": ["x"],
                          "ts": "1790000000.000300"}}),
            await slack.send_socket_envelope("slash_commands", {"command": "/tutor",
                                                                "text": "hi", "user_id": "U9"}),
            await slack.send_socket_envelope("interactive", {"type": "block_actions",
                                                             "user": {"id": "U9"}}),
        ]  # fmt: skip
        await slack.wait_for(lambda: all(e in slack.socket_acks for e in envelopes))
        await bot.worker.wait_idle()
        await bot.background.drain(5)
        assert [c.method for c in slack.calls] == ["auth.test", "apps.connections.open"]
        assert openai.requests == []
        assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
        refusals = [r for r in caplog.records if r.getMessage().startswith("refused a Socket")]
        assert len(refusals) == len(envelopes)
