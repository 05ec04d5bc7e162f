"""Buttons: Stop on a placeholder stops the run (for the person who asked).

Listeners run before Slack gets its ack (`process_before_response`): the stop is recorded
(one Redis step) before it, and the note to someone else who clicked goes out after it, so
the ack never waits for Slack.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.slack.background import BackgroundTasks
from bot.slack.placeholder import STOP_ACTION, parse_stop_value
from bot.turns.stops import StopRequests

log = logging.getLogger(__name__)

NOT_YOURS = "Only <@{asker}> can stop this answer."


def register_action_listeners(
    app: AsyncApp, stops: StopRequests, background: BackgroundTasks
) -> None:
    @app.action(STOP_ACTION)
    async def on_stop(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        turn_id, asker = parse_stop_value(str(action.get("value", "")))
        clicker = (body.get("user") or {}).get("id")
        if clicker != asker:
            background.spawn(
                respond(
                    text=NOT_YOURS.format(asker=asker),
                    response_type="ephemeral",
                    replace_original=False,
                )
            )
            return
        await stops.request(turn_id)
        log.info("stop requested for %s", turn_id)
