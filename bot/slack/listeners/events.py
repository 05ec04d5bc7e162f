"""Slack events that start a turn: @mentions, direct messages, and replies in the channel
threads where the bot already has a conversation (no mention needed there).

Listeners run before Slack gets its ack (`process_before_response`): they translate the
event into a Turn and record it durably in one Redis step, so an acked message is never
lost and messages of one thread are queued in the order Slack acked them. When recording
fails, Slack is asked to deliver the message again (see recording.py). Everything slow
happens in the turn workers or, for a Slack reply that is no turn, in the background.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.assistant_threads import AssistantThreads, thread_title
from bot.slack.background import BackgroundTasks
from bot.slack.command_threads import CommandThreads
from bot.slack.conversation_keys import (
    direct_message_place,
    mention_place,
    thread_key,
    without_mention,
)
from bot.slack.listeners.recording import Delivery, MessageRecording, delivery_of
from bot.slack.refusals import RefusalNotices
from bot.turns.guards import Refused
from bot.turns.intake import Accepted, TurnIntake
from bot.turns.models import Turn, TurnSource
from bot.turns.text import clean_text

log = logging.getLogger(__name__)

EMPTY_MENTION = "Hi! Ask me a question after the mention, for example: @Tutor who was Hypatia?"
COMMAND_IN_THREAD = (
    "Slash commands don't work inside threads, so `/tutor` reached me as a plain message. "
    "No need for it here: just write your question in this thread."
)
FORGET_IN_THREAD = (
    "Slash commands don't work inside threads, so `/tutor forget` reached me as a plain "
    "message. To forget this conversation, use *Forget this conversation* in the menu (⋮) "
    "of any of its messages."
)
COMMAND_PREFIX = "/tutor"


ATTACHED_ONLY = "Please look at the file I shared."
# Message subtypes a person's question may have: a message with files is a `file_share`.
PERSON_SUBTYPES = (None, "file_share")


def is_from_a_person(event: dict[str, Any]) -> bool:
    """False for bots (ourselves included), edits, deletions and other message subtypes."""
    return (
        not event.get("bot_id")
        and event.get("subtype") in PERSON_SUBTYPES
        and bool(event.get("user"))
    )


def file_ids(event: dict[str, Any]) -> tuple[str, ...]:
    """The ids of the files shared with a message (Slack's `files` array)."""
    files = event.get("files")
    if not isinstance(files, list):
        return ()
    return tuple(str(f["id"]) for f in files if isinstance(f, dict) and f.get("id"))


def register_event_listeners(
    app: AsyncApp,
    intake: TurnIntake,
    background: BackgroundTasks,
    assistant_threads: AssistantThreads,
    command_threads: CommandThreads,
    *,
    thread_followups: bool,
    refusal_notices: RefusalNotices,
    recording: MessageRecording | None = None,
) -> None:
    """Wire app_mention and message.im to the intake."""
    recording = recording or MessageRecording(background)

    @app.event("app_mention")
    async def on_mention(
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
        request: AsyncBoltRequest,
    ) -> None:
        if not is_from_a_person(event):
            return
        client = _client(context)
        team_id = context.team_id or body.get("team_id") or ""
        key, thread_ts = mention_place(team_id, event)
        turn = turn_from(event, context, team_id, key, thread_ts, TurnSource.MENTION)
        delivery = delivery_of(body, event, request)
        async with recording.attempt(client, turn, delivery, notify=True):
            # A /tutor thread continues the command's conversation.
            turn = dataclasses.replace(turn, conversation_key=await command_threads.resolve(key))
            await _hand_over(client, intake, background, refusal_notices, turn, delivery)

    @app.event("message")
    async def on_message(
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
        request: AsyncBoltRequest,
    ) -> None:
        if not is_from_a_person(event):
            return
        client = _client(context)
        team_id = context.team_id or body.get("team_id") or ""
        delivery = delivery_of(body, event, request)
        if event.get("channel_type") == "im":
            key, dm_thread_ts = direct_message_place(team_id, event)
            turn = turn_from(event, context, team_id, key, dm_thread_ts, TurnSource.DIRECT_MESSAGE)
            async with recording.attempt(client, turn, delivery, notify=True):
                if dm_thread_ts:  # a /tutor asked in the DM continues in its thread
                    key = await command_threads.resolve(key)
                in_pane = await assistant_threads.is_assistant_thread(turn.channel_id, dm_thread_ts)
                new_in_pane = in_pane and not await intake.has_conversation(key)
                turn = dataclasses.replace(turn, conversation_key=key, assistant_thread=in_pane)
                accepted = await _hand_over(
                    client, intake, background, refusal_notices, turn, delivery
                )
            if accepted and new_in_pane:
                background.spawn(
                    client.assistant_threads_setTitle(
                        channel_id=turn.channel_id,
                        thread_ts=dm_thread_ts,
                        title=thread_title(turn.text),
                    )
                )
        elif thread_followups and is_thread_reply(event):
            thread_ts = event["thread_ts"]
            key = thread_key(team_id, event["channel"], thread_ts)
            turn = turn_from(event, context, team_id, key, thread_ts, TurnSource.MENTION)
            # No notice until the bot knows the thread is one of its own.
            async with recording.attempt(client, turn, delivery, notify=False) as attempt:
                key = await command_threads.resolve(key)
                if not await intake.has_conversation(key):
                    return  # a thread the bot is not part of: left alone
                attempt.notify = True
                turn = dataclasses.replace(turn, conversation_key=key)
                await _hand_over(client, intake, background, refusal_notices, turn, delivery)


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
        files=file_ids(event),
    )


def is_thread_reply(event: dict[str, Any]) -> bool:
    """A reply inside a channel thread (not the thread's root, not a DM)."""
    thread_ts = event.get("thread_ts")
    return (
        event.get("channel_type") in ("channel", "group")
        and bool(thread_ts)
        and thread_ts != event.get("ts")
    )


def _client(context: AsyncBoltContext) -> AsyncWebClient:
    assert context.client is not None  # Bolt always provides a client for events
    return context.client


async def _hand_over(
    client: AsyncWebClient,
    intake: TurnIntake,
    background: BackgroundTasks,
    notices: RefusalNotices,
    turn: Turn,
    delivery: Delivery,
) -> bool:
    """Give the turn to the intake; True when it was accepted (the first time this message
    is seen, and not refused: a refusal is explained to its author).

    Raises what the intake raises (Redis errors): the caller makes Slack deliver it again.
    """
    event_id, message_ts = delivery.event_id, delivery.message_ts
    question, hint = _understood(turn.text)
    if not question and turn.files and hint == EMPTY_MENTION:  # a file alone is a question
        question, hint = ATTACHED_ONLY, None
    if question:
        turn = dataclasses.replace(turn, text=question)
        result = await intake.accept(turn, delivery_id=event_id, message_ts=message_ts)
        if isinstance(result, Refused):
            notices.tell(client, turn, result, _existing_thread(turn, delivery))
        accepted = isinstance(result, Accepted)
    else:
        accepted = await intake.claim(event_id, turn.channel_id, message_ts, turn.conversation_key)
    if hint and accepted:  # said once, however often Slack delivers the message
        background.spawn(
            client.chat_postEphemeral(
                channel=turn.channel_id, user=turn.user_id, thread_ts=turn.thread_ts, text=hint
            )
        )
    return accepted


def _existing_thread(turn: Turn, delivery: Delivery) -> str | None:
    """The thread the message was written in; None for a message at the top level (its
    reply thread does not exist yet)."""
    return turn.thread_ts if turn.thread_ts != delivery.message_ts else None


def _understood(text: str) -> tuple[str, str | None]:
    """The question in a message, and a kind hint (shown only to its author) if it needs one.

    A `/tutor` typed in a thread arrives as a plain message ("send as a message"): its
    question is answered anyway, with a word on how to ask there next time.
    """
    if text.lower().startswith(COMMAND_PREFIX) and text[len(COMMAND_PREFIX) :][:1] in ("", " "):
        rest = text[len(COMMAND_PREFIX) :].strip()
        if rest.lower() == "forget":
            return "", FORGET_IN_THREAD
        question = "" if rest.lower() in ("", "help", "new") else rest
        return question, COMMAND_IN_THREAD
    return text, None if text else EMPTY_MENTION
