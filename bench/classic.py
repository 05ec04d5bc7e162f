"""The classic loop the bot is measured against: the quickstart pattern, with the official SDKs.

Post a placeholder, create a conversation and a background response, `retrieve` it every
0.5 s until its status is final, then edit the placeholder into the answer (the retrieve that
saw the end carries the output). No streaming, no queue, no Redis: one coroutine per turn.
"""

from __future__ import annotations

import asyncio
import logging
import time

from openai import AsyncOpenAI
from slack_sdk.web.async_client import AsyncWebClient

from bench.turns import Turn
from bot.settings import Settings
from bot.slack.client import make_web_client

POLL_SECONDS = 0.5
ACTIVE = ("queued", "in_progress")
MODEL = Settings().tutor_model  # what the bot asks for by default
TURN_SLACK_SECONDS = 60  # beyond the model's time, for 429 waits

log = logging.getLogger(__name__)


class ClassicLoop:
    """Answers turns the quickstart way; `ask` starts one and returns at once."""

    def __init__(self, *, slack_url: str, slack_token: str, openai_url: str) -> None:
        # The bot's own client settings: honour Retry-After on 429, as a careful quickstart would.
        self.slack: AsyncWebClient = make_web_client(slack_token, slack_url)
        self.openai = AsyncOpenAI(base_url=openai_url, api_key="sk-classic", max_retries=2)
        self._tasks: set[asyncio.Task[None]] = set()

    async def ask(self, turn: Turn) -> None:
        turn.sent_at = time.monotonic()
        task = asyncio.create_task(self._answer(turn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, turn: Turn) -> None:
        try:
            async with asyncio.timeout(turn.model_seconds + TURN_SLACK_SECONDS):
                await self._loop(turn)
        except Exception as error:  # a failed turn shows as unanswered in the table
            log.warning("classic turn %s failed: %s", turn.token, error)

    async def _loop(self, turn: Turn) -> None:
        placeholder = await self.slack.chat_postMessage(
            channel=turn.channel, thread_ts=f"{time.time():.6f}", text="Thinking…"
        )
        conversation = await self.openai.conversations.create()
        response = await self.openai.responses.create(
            model=MODEL, conversation=conversation.id, input=turn.question, background=True
        )
        while response.status in ACTIVE:
            await asyncio.sleep(POLL_SECONDS)
            response = await self.openai.responses.retrieve(response.id)
        await self.slack.chat_update(
            channel=turn.channel, ts=placeholder["ts"], text=response.output_text
        )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.openai.close()
