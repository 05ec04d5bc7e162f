"""Slack events that start a turn: @mentions, direct messages, and replies in the channel
threads where the bot already has a conversation (no mention needed there).

Listeners run before Slack gets its ack (`process_before_response`): they translate the
event into a Turn and record it durably in one Redis step, so an acked message is never
lost and messages of one thread are queued in the order Slack acked them. Everything slow
happens in the turn workers or, for a Slack reply that is no turn, in the background.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.assistant_threads import AssistantThreads, thread_title
from bot.slack.background import BackgroundTasks
from bot.slack.conversation_keys import (
    direct_message_place,
    mention_place,
    thread_key,
    without_mention,
)
from bot.turns.intake import TurnIntake
from bot.turns.models import Turn, TurnSource
from bot.turns.text import clean_text

log = logging.getLogger(__name__)

EMPTY_MENTION = "Hi! Ask me a question after the mention, for example: @Tutor who was Hypatia?"
COMMAND_IN_THREAD = (
    "Slash commands don't work inside threads, so `/tutor` reached me as a plain message. "
    "No need for it here: just write your question in this thread."
)
COMMAND_PREFIX = "/tutor"
NOT_ACCEPTING = (
    ":warning: I can't take questions right now (my storage is unavailable). "
    "Please try again in a minute."
)


def is_from_a_person(event: dict[str, Any]) -> bool:
    """False for bots (ourselves included), edits, deletions and other message subtypes."""
    return not event.get("bot_id") and not event.get("subtype") and bool(event.get("user"))


def register_event_listeners(
    app: AsyncApp,
    intake: TurnIntake,
    background: BackgroundTasks,
    assistant_threads: AssistantThreads,
    *,
    thread_followups: bool,
) -> None:
    """Wire app_mention and message.im to the intake."""

    @app.event("app_mention")
    async def on_mention(
        body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if not is_from_a_person(event):
            return
        team_id = context.team_id or body.get("team_id") or ""
        key, thread_ts = mention_place(team_id, event)
        turn = turn_from(event, context, team_id, key, thread_ts, TurnSource.MENTION)
        await _hand_over(context.client, intake, background, turn, body, event)

    @app.event("message")
    async def on_message(
        body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if not is_from_a_person(event):
            return
        team_id = context.team_id or body.get("team_id") or ""
        in_pane = False
        if event.get("channel_type") == "im":
            key, thread_ts = direct_message_place(team_id, event)
            source = TurnSource.DIRECT_MESSAGE
            in_pane = await assistant_threads.is_assistant_thread(event["channel"], thread_ts)
            if in_pane and context.client and not await intake.has_conversation(key):
                background.spawn(
                    context.client.assistant_threads_setTitle(
                        channel_id=event["channel"],
                        thread_ts=thread_ts,
                        title=thread_title(event.get("text", "")),
                    )
                )
        elif thread_followups and is_thread_reply(event):
            thread_ts = event["thread_ts"]
            key = thread_key(team_id, event["channel"], thread_ts)
            if not await intake.has_conversation(key):
                return  # a thread the bot is not part of: left alone
            source = TurnSource.MENTION
        else:
            return
        turn = turn_from(event, context, team_id, key, thread_ts, source, in_pane)
        await _hand_over(context.client, intake, background, turn, body, event)


def turn_from(
    event: dict[str, Any],
    context: AsyncBoltContext,
    team_id: str,
    key: str,
    thread_ts: str | None,
    source: TurnSource,
    assistant_thread: bool = False,
) -> Turn:
    """The turn a person's message starts, with the bot's own mention removed and what is
    not text (see clean_text) dropped."""
    return Turn(
        conversation_key=key,
        team_id=team_id,
        channel_id=event["channel"],
        thread_ts=thread_ts,
        user_id=event["user"],
        text=without_mention(clean_text(event.get("text") or ""), context.bot_user_id),
        source=source,
        assistant_thread=assistant_thread,
    )


def is_thread_reply(event: dict[str, Any]) -> bool:
    """A reply inside a channel thread (not the thread's root, not a DM)."""
    thread_ts = event.get("thread_ts")
    return (
        event.get("channel_type") in ("channel", "group")
        and bool(thread_ts)
        and thread_ts != event.get("ts")
    )


async def _hand_over(
    client: AsyncWebClient | None,
    intake: TurnIntake,
    background: BackgroundTasks,
    turn: Turn,
    body: dict[str, Any],
    event: dict[str, Any],
) -> None:
    """Give the turn to the intake; tell the user plainly when that is impossible."""
    assert client is not None  # Bolt always provides a client for events
    delivery_id, message_ts = body.get("event_id"), event.get("ts")
    question, hint = _understood(turn.text)
    try:
        if question:
            turn = dataclasses.replace(turn, text=question)
            accepted = await intake.accept(turn, delivery_id=delivery_id, message_ts=message_ts)
        else:
            accepted = await intake.claim(delivery_id, turn.channel_id, message_ts)
        if hint and accepted:  # said once, however often Slack delivers the message
            background.spawn(
                client.chat_postEphemeral(
                    channel=turn.channel_id, user=turn.user_id, thread_ts=turn.thread_ts, text=hint
                )
            )
    except Exception:
        log.exception("could not accept a turn %s", turn.log_context())
        background.spawn(
            client.chat_postMessage(
                channel=turn.channel_id, thread_ts=turn.thread_ts, text=NOT_ACCEPTING
            )
        )


def _understood(text: str) -> tuple[str, str | None]:
    """The question in a message, and a kind hint (shown only to its author) if it needs one.

    A `/tutor` typed in a thread arrives as a plain message ("send as a message"): its
    question is answered anyway, with a word on how to ask there next time.
    """
    if text.lower().startswith(COMMAND_PREFIX) and text[len(COMMAND_PREFIX) :][:1] in ("", " "):
        rest = text[len(COMMAND_PREFIX) :].strip()
        question = "" if rest.lower() in ("", "help", "new") else rest
        return question, COMMAND_IN_THREAD
    return text, None if text else EMPTY_MENTION
