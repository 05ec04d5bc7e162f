"""`python -m bot web` and `python -m bot worker`: Slack received in one process, answered in
another, on one Redis."""

from __future__ import annotations

import dataclasses

from bot.app import TutorBot
from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.local.slack_events import SlackEventSender
from bot.settings import BackendKind
from tests.conftest import RedisServer
from tests.e2e.conftest import SIGNING_SECRET, bot_settings


async def test_a_web_process_records_and_a_worker_process_answers(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn], redis_server: RedisServer, redis_prefix: str
) -> None:
    slack, openai = stand_ins
    settings = dataclasses.replace(
        bot_settings(
            slack.base_url, openai.base_url, redis_server.url, redis_prefix, BackendKind.CHAT
        ),
        port=0,
    )
    web = await TutorBot.create(dataclasses.replace(settings, worker_name="web"))
    worker = await TutorBot.create(dataclasses.replace(settings, worker_name="worker"))
    events = None
    try:
        port = await web.start_http(host="127.0.0.1", port=0, answer_turns=False)
        events = SlackEventSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
        _, _, first = await events.mention("C1", "U1", "<@UBOT> Who was Hypatia?")
        # Nothing answers yet: the web process only records and shows the placeholder.
        await slack.wait_for(lambda: len(slack.thread("C1", first)) == 1)
        placeholder = slack.thread("C1", first)[0].ts
        assert "thinking" in slack.visible_text("C1", placeholder).lower()
        assert openai.requests == []

        await worker.start_worker()
        await slack.wait_for(
            lambda: slack.visible_text("C1", placeholder) == "Answer 1: Who was Hypatia?"
        )
        await worker.worker.wait_idle()
        assert web.worker.in_flight == 0 and not web.worker._readers, "web answers nothing"
        assert worker.metrics.turns.labels("answered")._value.get() == 1
    finally:
        if events is not None:
            await events.close()
        await web.stop(grace_seconds=1)
        await worker.stop(grace_seconds=1)
