"""Feedback clicks under answers, and the comment a thumbs-down may bring.

Listeners run before Slack gets its ack (`process_before_response`): a click is stored (one
Redis step, bounded) before it, and the replies only the clicker sees (the question after a
thumbs-down, the thanks for a comment) go out after it, so the ack never waits for Slack.
Slack does not resend interactions: a click that cannot be stored is said so to the clicker.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.slack.background import BackgroundTasks
from bot.slack.feedback_blocks import (
    ASK_WHAT_WAS_WRONG,
    COMMENT_ACTION,
    FEEDBACK_ACTION,
    THANKS,
    THANKS_FOR_COMMENT,
    comment_prompt_blocks,
    turn_of_comment_block,
)
from bot.slack.interactions import clicker_of, tell_clicker
from bot.slack.listeners.recording import ACK_PATH_SECONDS
from bot.tutor.feedback import Click, FeedbackStore, Rating, parse_feedback_value

log = logging.getLogger(__name__)

NOT_SAVED = "Sorry, I couldn't save your feedback just now. Please click again in a moment."


def register_feedback_listeners(
    app: AsyncApp, feedback: FeedbackStore, background: BackgroundTasks
) -> None:
    @app.action(FEEDBACK_ACTION)
    async def on_feedback(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        parsed = parse_feedback_value(str(action.get("value") or ""))
        clicker = clicker_of(body)
        if parsed is None or not clicker.user_id:
            log.info("a feedback click without a turn of ours was ignored")
            return
        rating, turn_id = parsed
        click = Click(turn_id, rating, clicker.user_id, clicker.team_id, clicker.channel_id)
        try:
            async with asyncio.timeout(ACK_PATH_SECONDS):
                previous = await feedback.record(click)
        except (RedisError, TimeoutError) as error:
            log.warning("feedback on %s not stored (%s)", turn_id, type(error).__name__)
            background.spawn(tell_clicker(respond, NOT_SAVED))
            return
        log.info("feedback %s on %s", rating.value, turn_id)
        if rating is Rating.DOWN and previous is not Rating.DOWN:
            prompt = comment_prompt_blocks(turn_id)
            background.spawn(tell_clicker(respond, ASK_WHAT_WAS_WRONG, blocks=prompt))

    @app.action(COMMENT_ACTION)
    async def on_comment(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        turn_id = turn_of_comment_block(str(action.get("block_id") or ""))
        user = clicker_of(body).user_id
        if turn_id is None or not user:
            log.info("a feedback comment without a turn of ours was ignored")
            return
        try:
            async with asyncio.timeout(ACK_PATH_SECONDS):
                kept = await feedback.comment(turn_id, user, str(action.get("value") or ""))
        except (RedisError, TimeoutError) as error:
            log.warning("feedback comment on %s not stored (%s)", turn_id, type(error).__name__)
            background.spawn(tell_clicker(respond, NOT_SAVED))
            return
        log.info("feedback comment on %s %s", turn_id, "stored" if kept else "empty")
        # The question (and its input) gives way to the thanks.
        background.spawn(
            tell_clicker(respond, THANKS_FOR_COMMENT if kept else THANKS, replace=True)
        )
