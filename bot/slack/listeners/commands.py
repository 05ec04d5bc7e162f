"""The /tutor slash command: ask in a channel, or get help.

The question and its answer become a thread in the command's channel (the root shows the
question and, once ready, the answer); mentioning the bot in that thread continues it.
Slack does not redeliver commands, so the question is recorded before the ack (Slack needs
it within 3 seconds), or the ack says plainly that it could not be taken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.slack.background import BackgroundTasks
from bot.slack.command_threads import command_key
from bot.slack.conversation_keys import TOP_LEVEL, thread_key
from bot.slack.refusals import refusal_text
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
instructions, default mode, answer length).
• My *Home* tab: your courses, your mode, your recent topics (and, for admins, each course's \
figures).
• `/tutor help`: this help."""
STARTED_OVER = "Done: my next answer here starts a fresh conversation, without the earlier one."
NOTHING_TO_RESET = (
    "Nothing to reset here: every `/tutor` question starts its own thread. "
    "`/tutor new` starts over in our direct messages."
)
NOT_ACCEPTING = "I can't take questions right now (my storage is unavailable). Try again soon."
# The question must be recorded within Slack's 3 s, before the ack.
ACCEPT_SECONDS = 2.0


# Subcommands whose word may be followed by more text (`/tutor quiz Roman roads`); for the
# others the whole text is the word, so `/tutor new ideas?` is a question.
TAKES_TEXT = frozenset({"quiz"})


# A subcommand gets the command's payload and its ack; it acks itself (within 3 s).
Subcommand = Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]


def register_command_listeners(
    app: AsyncApp,
    intake: TurnIntake,
    background: BackgroundTasks,
    *,
    usage: Subcommand,
    quiz: Subcommand,
) -> None:
    subcommands = tutor_subcommands(intake, background, usage=usage, quiz=quiz)

    @app.command("/tutor")
    async def on_tutor(ack: AsyncAck, command: dict[str, Any]) -> None:
        question = clean_text(command.get("text") or "").strip()
        subcommand = subcommands.get(subcommand_word(question))
        if subcommand is not None:
            await subcommand(ack, command)
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
    """The subcommand `text` names, if it names one: the whole text, or its first word for
    those in TAKES_TEXT ("help" for no text)."""
    words = text.lower().split(maxsplit=1)
    if not words:
        return "help"
    return words[0] if words[0] in TAKES_TEXT else text.lower()


def tutor_subcommands(
    intake: TurnIntake, background: BackgroundTasks, *, usage: Subcommand, quiz: Subcommand
) -> dict[str, Subcommand]:
    """`/tutor <word>` → what it does; any other text is a question."""

    async def show_help(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack(response_type="ephemeral", text=HELP)

    async def new(ack: AsyncAck, command: dict[str, Any]) -> None:
        # Slack does not redeliver commands, but a replayed request carries the same trigger.
        if await _first_delivery(intake, command_delivery_id(command)):
            text = await start_over(intake, command, background)
            await ack(response_type="ephemeral", text=text)
        else:
            await ack()

    return {"help": show_help, "new": new, "usage": usage, "quiz": quiz}


def command_delivery_id(command: dict[str, Any]) -> str | None:
    trigger_id = command.get("trigger_id")
    return f"command:{trigger_id}" if trigger_id else None


async def _first_delivery(intake: TurnIntake, delivery_id: str | None) -> bool:
    return await intake.claim(delivery_id, "", None)


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


async def start_over(
    intake: TurnIntake, command: dict[str, Any], background: BackgroundTasks
) -> str:
    """`/tutor new`: forget the conversation of the top-level DMs with the bot.

    Its history is deleted at the backend after the ack (Slack waits 3 s at most).
    """
    channel_id = command["channel_id"]
    if not channel_id.startswith("D"):
        return NOTHING_TO_RESET
    key = thread_key(command.get("team_id") or "", channel_id, TOP_LEVEL)
    forgotten = await intake.start_over(key)
    if forgotten is not None:
        background.spawn(intake.discard(forgotten))
    return STARTED_OVER
