"""The /tutor slash command: ask in a channel, or get help.

The question and its answer become a thread in the command's channel (the root shows the
question and, once ready, the answer); mentioning the bot in that thread continues it.
Slack needs the ack within 3 seconds, so it comes first.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.background import BackgroundTasks
from bot.slack.conversation_keys import TOP_LEVEL, thread_key
from bot.slack.reply import post_command_root
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
• `/tutor help`: this help."""
STARTED_OVER = "Done: my next answer here starts a fresh conversation, without the earlier one."
NOTHING_TO_RESET = (
    "Nothing to reset here: every `/tutor` question starts its own thread. "
    "`/tutor new` starts over in our direct messages."
)
NOT_ACCEPTING = "I can't take questions right now (my storage is unavailable). Try again soon."


def register_command_listeners(
    app: AsyncApp, intake: TurnIntake, background: BackgroundTasks
) -> None:
    @app.command("/tutor")
    async def on_tutor(
        ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        question = clean_text(command.get("text") or "").strip()
        if not question or question.lower() == "help":
            await ack(response_type="ephemeral", text=HELP)
            return
        if question.lower() == "new":
            await ack(response_type="ephemeral", text=await start_over(intake, command, background))
            return
        await ack()
        assert context.client is not None
        # Slack does not retry commands, and the root post is a Slack call that may wait
        # on a rate limit: it happens after the ack.
        background.spawn(ask(context.client, intake, command, question, respond))


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


async def ask(
    client: AsyncWebClient,
    intake: TurnIntake,
    command: dict[str, Any],
    question: str,
    respond: AsyncRespond,
) -> None:
    """Post the thread root (question + Thinking…) and queue the turn that answers it."""
    team_id = command.get("team_id") or ""
    channel_id = command["channel_id"]
    root_ts = await post_command_root(client, channel_id, command["user_id"], question)
    turn_id = new_turn_id()
    key = thread_key(team_id, channel_id, root_ts or f"command-{turn_id}")
    turn = Turn(
        conversation_key=key,
        team_id=team_id,
        channel_id=channel_id,
        thread_ts=root_ts,
        user_id=command["user_id"],
        text=question,
        source=TurnSource.COMMAND,
        response_url=command.get("response_url"),
        placeholder_ts=root_ts,
        turn_id=turn_id,
    )
    try:
        await intake.accept(turn, delivery_id=None, message_ts=None)
    except Exception:
        log.exception("could not accept a command turn %s", turn.log_context())
        await respond(text=NOT_ACCEPTING, response_type="ephemeral")
        if root_ts:
            await client.chat_update(channel=channel_id, ts=root_ts, text=NOT_ACCEPTING)
