""" "Show me the answer" under a guided answer: the same question, answered directly, in the
same place, as a new turn of that conversation.

Only the person who asked may reveal their answer; anyone else is told so, only to them.
The turn goes through the intake like any other (queued after the conversation's earlier
turns), with its mode set to direct for that turn only. Its delivery id is the revealed
turn's, so a second click (or Slack's replay) asks nothing twice. Listeners run before the
ack: the turn is recorded before it, and the notes only the clicker sees go out after it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond

from bot.slack.background import BackgroundTasks
from bot.slack.interactions import clicker_of, tell_clicker
from bot.slack.listeners.recording import ACK_PATH_SECONDS
from bot.slack.reveal_blocks import REVEAL_ACTION, parse_reveal_value
from bot.turns.intake import TurnIntake
from bot.turns.models import Turn, TurnSource
from bot.tutor.activity import GuidedQuestion, LearnerActivity
from bot.tutor.courses import Mode
from bot.tutor.instructions import reveal_request

log = logging.getLogger(__name__)

NOT_YOURS = (
    "Only <@{asker}> can ask for the answer to their question. Ask me yourself to get "
    "answers of your own."
)
GONE = (
    "I no longer have that question (it was asked too long ago, or the conversation was "
    "forgotten). Please ask it again."
)
ALREADY = "The answer to this question is already on its way (or above)."
NOT_TAKEN = "Sorry, I couldn't take that just now (my storage is unavailable). Please click again."


def register_reveal_listeners(
    app: AsyncApp, intake: TurnIntake, activity: LearnerActivity, background: BackgroundTasks
) -> None:
    @app.action(REVEAL_ACTION)
    async def on_reveal(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        parsed = parse_reveal_value(str(action.get("value") or ""))
        clicker = clicker_of(body).user_id
        if parsed is None or not clicker:
            log.info("a reveal click without a turn of ours was ignored")
            return
        turn_id, conversation_key = parsed
        try:
            async with asyncio.timeout(ACK_PATH_SECONDS):
                question = await activity.guided_question(conversation_key, turn_id)
                if question is None:
                    note: str | None = GONE
                elif question.user_id != clicker:
                    note = NOT_YOURS.format(asker=question.user_id)
                else:
                    turn = reveal_turn(question, body)
                    accepted = await intake.accept(
                        turn, delivery_id=f"reveal:{turn_id}", message_ts=None
                    )
                    note = None if accepted else ALREADY
        except Exception as error:  # Redis away or slow: nothing was recorded
            log.warning("reveal of %s not taken (%s)", turn_id, type(error).__name__)
            note = NOT_TAKEN
        if note is not None:
            background.spawn(tell_clicker(respond, note))


def guided_reply(body: dict[str, Any]) -> str:
    """The text of the clicked guided answer (its fallback text, or its blocks' text where a
    streamed answer has none)."""
    message = value if isinstance(value := body.get("message"), dict) else {}
    text = str(message.get("text") or "")
    if text.strip():
        return text
    parts = []
    for block in message.get("blocks") or []:
        if isinstance(block, dict):
            inner = block.get("text")
            parts.append(str(inner.get("text") if isinstance(inner, dict) else inner or ""))
    return " ".join(part for part in parts if part)


def reveal_turn(question: GuidedQuestion, body: dict[str, Any]) -> Turn:
    """The turn that answers a guided answer's question directly, where it was asked.

    A /tutor thread is answered in the thread of the message clicked (its root's thread):
    the command's own turn had no thread yet when it was asked.
    """
    source, thread_ts = question.source, question.thread_ts
    if source is TurnSource.COMMAND:
        message = body.get("message") or {}
        container = body.get("container") or {}
        source = TurnSource.MENTION
        thread_ts = message.get("thread_ts") or container.get("message_ts") or message.get("ts")
    return Turn(
        conversation_key=question.conversation_key,
        team_id=question.team_id,
        channel_id=question.channel_id,
        thread_ts=thread_ts,
        user_id=question.user_id,
        text=reveal_request(guided_reply(body)),
        source=source,
        response_url=body.get("response_url"),
        assistant_thread=question.assistant_thread,
        mode_override=Mode.DIRECT.value,
    )
