"""Playing Slack towards the bot: each turn an `app_mention` in a channel of its own, signed
and posted to /slack/events; how long the bot takes to answer the POST is its ack time."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from bench.turns import Turn
from bot.local.slack_events import SlackEventSender

ACK_TIMEOUT_SECONDS = 10  # Slack itself gives up after 3 s and delivers again


class BotAsker:
    def __init__(self, events_url: str, signing_secret: str) -> None:
        self.sender = SlackEventSender(events_url, signing_secret)
        self._tasks: set[asyncio.Task[None]] = set()

    async def ask(self, turn: Turn) -> None:
        """Send the turn's mention in the background; returns at once."""
        turn.sent_at = time.monotonic()
        task = asyncio.create_task(self._send(turn))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, turn: Turn) -> None:
        assert turn.sent_at is not None
        try:
            async with asyncio.timeout(ACK_TIMEOUT_SECONDS):
                status, _, _ = await self.sender.mention(
                    turn.channel, turn.user, f"<@UBOT> {turn.question}"
                )
        except (TimeoutError, OSError, aiohttp.ClientError):
            return  # no ack: counted as such
        turn.ack_status = status
        turn.ack_seconds = time.monotonic() - turn.sent_at

    async def close(self) -> None:
        """Give up on POSTs still unanswered (the benchmark has waited long enough)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.sender.close()
