"""Buttons: Stop on a placeholder stops the run (for the person who asked).

Listeners run before Slack gets its ack (`process_before_response`): the stop is recorded
(one Redis step, bounded) before it, and the notes to the clicker (someone else's answer, or
a stop that could not be recorded) go out after it, so the ack never waits for Slack.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.slack.background import BackgroundTasks
from bot.slack.interactions import clicker_of, tell_clicker
from bot.slack.listeners.recording import ACK_PATH_SECONDS
from bot.slack.placeholder import STOP_ACTION, parse_stop_value
from bot.turns.stops import StopRequests

log = logging.getLogger(__name__)

NOT_YOURS = "Only <@{asker}> can stop this answer."
NOT_STOPPED = "Sorry, I couldn't stop this answer just now. Please click *Stop* again."


def register_action_listeners(
    app: AsyncApp, stops: StopRequests, background: BackgroundTasks
) -> None:
    @app.action(STOP_ACTION)
    async def on_stop(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        turn_id, asker = parse_stop_value(str(action.get("value", "")))
        if clicker_of(body).user_id != asker:
            background.spawn(tell_clicker(respond, NOT_YOURS.format(asker=asker)))
            return
        try:
            async with asyncio.timeout(ACK_PATH_SECONDS):
                await stops.request(turn_id)
        except (RedisError, TimeoutError) as error:
            log.warning("stop for %s not recorded (%s)", turn_id, type(error).__name__)
            background.spawn(tell_clicker(respond, NOT_STOPPED))
            return
        log.info("stop requested for %s", turn_id)
