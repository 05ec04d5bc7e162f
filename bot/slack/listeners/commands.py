"""The /tutor slash command: ask in a channel, or get help.

The question and its answer become a thread in the command's channel (the root shows the
question and, once ready, the answer); mentioning the bot in that thread continues it.
Slack does not redeliver commands, so the question is recorded before the ack (Slack needs
it within 3 seconds), or the ack says plainly that it could not be taken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.background import BackgroundTasks
from bot.slack.command_threads import command_key
from bot.slack.listeners.forget import forget_command, start_over_command
from bot.slack.refusals import refusal_text
from bot.turns.forget import ConversationForgetter
from bot.turns.guards import Refused
from bot.turns.intake import TurnIntake
from bot.turns.models import Turn, TurnSource, new_turn_id
from bot.turns.text import clean_text

log = logging.getLogger(__name__)

HELP = """*Tutor* answers your questions. Ways to ask:
• `/tutor <question>`: ask here; the question and the answer appear as a new thread in this \
channel. Mention me in that thread to follow up.
• Mention me in a channel (`@Tutor …`): I answer in the thread of your message, and remember \
the whole thread.
• Write to me in a direct message: your top-level messages are one conversation, and each \
thread is its own.
Subcommands:
• The *Stop* button under my _Thinking…_ message stops an answer you asked for.
• `/tutor new`: in our direct messages, start a fresh conversation (I forget the earlier one).
• `/tutor quiz [topic]`: a short quiz only you see, answered with buttons and scored; or \
*Quiz me on this* in a message's ⋮ menu for a quiz on that message.
• `/tutor usage`: the tokens your questions used today and this month (the workspace's too, \
for admins).
• `/tutor mode guided` or `/tutor mode direct`: how I answer you. Guided: I ask what you know \
and give hints first, and *Show me the answer* under an answer gives it in full. \
`/tutor mode` says which one you have.
• `/tutor course`: in a channel, for admins: set up this channel's course (its tutor's \
instructions, default mode, answer length, materials), or delete it.
• My *Home* tab: your courses, your mode, your recent conversations (and, for admins, each \
course's figures).
• `/tutor forget`: in our direct messages, delete our conversation there, from my memory and \
at the model provider.
• *Forget this conversation*, in the menu (⋮) of any message of a thread I answered in: the \
same for that thread, for whoever asked in it.
• `/tutor help`: this help."""
NOT_ACCEPTING = "I can't take questions right now (my storage is unavailable). Try again soon."
# The question must be recorded within Slack's 3 s, before the ack.
ACCEPT_SECONDS = 2.0


# Subcommands whose word may be followed by more text (`/tutor quiz Roman roads`); for the
# others the whole text is the word, so `/tutor new ideas?` is a question.
TAKES_TEXT = frozenset({"quiz"})


# A subcommand gets the command's ack, its payload and the workspace's Slack client; it acks
# itself (within 3 s).
Subcommand = Callable[[AsyncAck, dict[str, Any], AsyncWebClient], Awaitable[None]]


def register_command_listeners(
    app: AsyncApp,
    intake: TurnIntake,
    forgetter: ConversationForgetter,
    background: BackgroundTasks,
    *,
    usage: Subcommand,
    quiz: Subcommand,
    teaching: Mapping[str, Subcommand],
) -> None:
    """The one /tutor listener: a subcommand, or a question. `teaching` are `course` and
    `mode` (bot.slack.listeners.teaching)."""
    subcommands = {
        **tutor_subcommands(intake, forgetter, background, usage=usage, quiz=quiz),
        **teaching,
    }

    @app.command("/tutor")
    async def on_tutor(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        question = clean_text(command.get("text") or "").strip()
        subcommand = subcommands.get(subcommand_word(question))
        if subcommand is not None:
            await subcommand(ack, command, client)
            return
        try:
            async with asyncio.timeout(ACCEPT_SECONDS):
                result = await intake.accept(
                    command_turn(command, question),
                    delivery_id=command_delivery_id(command),
                    message_ts=None,
                )
        except Exception as error:  # Redis unreachable: say so, nothing was recorded
            log.warning("could not accept a command (%s)", type(error).__name__)
            await ack(response_type="ephemeral", text=NOT_ACCEPTING)
            return
        note = refusal_text(result, command["channel_id"]) if isinstance(result, Refused) else None
        if note is not None:  # the ack carries the note: no Slack call, nothing to bound
            await ack(response_type="ephemeral", text=note)
            return
        await ack()


def subcommand_word(text: str) -> str:
    """The subcommand `text` names, if it names one: the whole text (its words, lower case,
    one space apart: `mode guided`), or its first word for those in TAKES_TEXT ("help" for
    no text)."""
    words = text.lower().split()
    if not words:
        return "help"
    return words[0] if words[0] in TAKES_TEXT else " ".join(words)


def tutor_subcommands(
    intake: TurnIntake,
    forgetter: ConversationForgetter,
    background: BackgroundTasks,
    *,
    usage: Subcommand,
    quiz: Subcommand,
) -> dict[str, Subcommand]:
    """`/tutor <word>` → what it does; any other text is a question."""

    async def show_help(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        await ack(response_type="ephemeral", text=HELP)

    return {
        "help": show_help,
        "new": once_per_trigger(intake, start_over_command(forgetter, background)),
        "forget": once_per_trigger(intake, forget_command(forgetter, background)),
        "usage": usage,
        "quiz": quiz,
    }


def once_per_trigger(intake: TurnIntake, subcommand: Subcommand) -> Subcommand:
    """Slack does not redeliver commands, but a replayed request carries the same trigger:
    it is only acked."""

    async def first_time_only(
        ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient
    ) -> None:
        if await intake.claim(command_delivery_id(command), "", None):
            await subcommand(ack, command, client)
        else:
            await ack()

    return first_time_only


def command_delivery_id(command: dict[str, Any]) -> str | None:
    trigger_id = command.get("trigger_id")
    return f"command:{trigger_id}" if trigger_id else None


def command_turn(command: dict[str, Any], question: str) -> Turn:
    """The turn a `/tutor <question>` starts: a new thread in the command's channel.

    It is recorded before the ack, so its thread root does not exist yet: the worker posts
    it as the turn's placeholder (or answers through `response_url` where it may not post).
    """
    team_id = command.get("team_id") or ""
    channel_id = command["channel_id"]
    turn_id = new_turn_id()
    return Turn(
        conversation_key=command_key(team_id, channel_id, turn_id),
        team_id=team_id,
        channel_id=channel_id,
        thread_ts=None,
        user_id=command["user_id"],
        text=question,
        source=TurnSource.COMMAND,
        response_url=command.get("response_url"),
        turn_id=turn_id,
    )
