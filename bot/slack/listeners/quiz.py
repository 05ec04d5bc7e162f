"""Quizzes in Slack: `/tutor quiz [topic]`, the *Quiz me on this* message shortcut, and the
clicks on a quiz's answers.

A quiz is only for the learner who asked for it: it is an ephemeral message in the channel
(or DM) where they asked, sent through the request's `response_url` (which also works where
the bot is not a member). Like every answer to a subcommand it is ephemeral; ephemeral
messages carry buttons, and a click's own `response_url` replaces the message with the
answer marked. Slack shows an ephemeral message to its learner only, so nobody else can
click it; a click that names another learner's quiz is refused with a note and not counted.
(An ephemeral message does not survive a reload of Slack: the answers already given are
kept, and `/tutor quiz` makes another.)

The ack comes at once ("Writing a quiz…"); the model writes the quiz after it
(`bot.slack.quiz_desk`), and the learner always gets the quiz or a plain message. A quiz being
written when the process stops is lost (the learner asks again): it is not a turn, and
nothing else depends on it.

Clicks are stored before the ack (one Redis transaction, bounded); the marked quiz goes out
after it, so the ack never waits for Slack.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.exceptions import RedisError
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.background import BackgroundTasks
from bot.slack.interactions import clicker_of, send_ephemeral, tell_clicker
from bot.slack.listeners.commands import command_delivery_id
from bot.slack.listeners.recording import ACK_PATH_SECONDS
from bot.slack.quiz_blocks import CHOICE_ACTION, parse_choice_value, quiz_message
from bot.slack.quiz_desk import QuizDesk, QuizRequest
from bot.slack.render import escape_mrkdwn
from bot.turns.intake import TurnIntake
from bot.tutor.quiz import quiz_topic
from bot.tutor.quiz_store import NotTheAsker, QuizGone, QuizStore

log = logging.getLogger(__name__)

QUIZ_SHORTCUT = "quiz_me"  # the message shortcut's callback_id (manifest.yml)
WRITING = "Writing a quiz on *{topic}* for you… it appears here in a few seconds."
WRITING_ANY = "Writing a quiz for you… it appears here in a few seconds."
WRITING_ON_MESSAGE = "Writing a quiz on that message for you… it appears here in a few seconds."
NOT_ACCEPTING = "I can't write quizzes right now (my storage is unavailable). Try again soon."
NO_TEXT = "That message has no text I could quiz you on."
NOT_YOURS = "This quiz is <@{asker}>'s. `/tutor quiz` writes one for you."
GONE = "This quiz has expired. `/tutor quiz` writes a new one."
NOT_SAVED = "Sorry, I couldn't save your answer just now. Please click it again in a moment."


class QuizCommand:
    """`/tutor quiz [topic]` (see `bot.slack.listeners.commands`): acks at once."""

    def __init__(self, desk: QuizDesk, intake: TurnIntake, background: BackgroundTasks) -> None:
        self._desk = desk
        self._intake = intake
        self._background = background

    async def __call__(
        self, ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient
    ) -> None:
        response_url = command.get("response_url") or ""
        try:  # Slack does not redeliver commands, but a replayed request has the same trigger
            async with asyncio.timeout(ACK_PATH_SECONDS):
                first = await self._intake.claim(command_delivery_id(command), "", None)
        except Exception as error:  # Redis unreachable: quizzes cannot be kept either
            log.warning("could not take a quiz command (%s)", type(error).__name__)
            await ack(response_type="ephemeral", text=NOT_ACCEPTING)
            return
        if not first or not response_url:
            await ack()
            return
        topic = quiz_topic(command.get("text") or "")
        text = WRITING.format(topic=_escaped(topic)) if topic else WRITING_ANY
        await ack(response_type="ephemeral", text=text)
        request = QuizRequest(
            command.get("team_id") or "", command["channel_id"], command["user_id"],
            response_url, topic=topic,
        )  # fmt: skip
        self._background.spawn(self._desk.make(request))


def register_quiz_listeners(
    app: AsyncApp, desk: QuizDesk, store: QuizStore, background: BackgroundTasks
) -> None:
    """The *Quiz me on this* shortcut and the quiz's answer buttons."""

    @app.shortcut(QUIZ_SHORTCUT)
    async def on_quiz_me(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        clicker = clicker_of(body)
        user, team, channel = clicker.user_id, clicker.team_id, clicker.channel_id
        response_url = str(body.get("response_url") or "")
        message = value if isinstance(value := body.get("message"), dict) else {}
        passage = str(message.get("text") or "").strip()
        if body.get("type") != "message_action" or not (user and channel and response_url):
            log.info("a quiz shortcut without a message of ours to answer was ignored")
            return
        if not passage:
            background.spawn(send_ephemeral(response_url, NO_TEXT))
            return
        request = QuizRequest(team, channel, user, response_url, passage=passage)
        background.spawn(desk.make(request, writing=WRITING_ON_MESSAGE))

    @app.action(CHOICE_ACTION)
    async def on_choice(
        ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        parsed = parse_choice_value(str(action.get("value") or ""))
        user = clicker_of(body).user_id
        if parsed is None or not user:
            log.info("a quiz click without a quiz of ours was ignored")
            return
        quiz_id, question, choice = parsed
        try:
            async with asyncio.timeout(ACK_PATH_SECONDS):
                marked = await store.answer(quiz_id, question, choice, user)
        except QuizGone:
            background.spawn(tell_clicker(respond, GONE))
            return
        except NotTheAsker as error:
            background.spawn(tell_clicker(respond, NOT_YOURS.format(asker=error.asker)))
            return
        except (RedisError, TimeoutError) as error:
            log.warning("a quiz answer on %s not stored (%s)", quiz_id, type(error).__name__)
            background.spawn(tell_clicker(respond, NOT_SAVED))
            return
        outcome = ("right" if marked.right else "wrong") + ("" if marked.counted else ", again")
        log.info("quiz %s question %d answered (%s)", quiz_id, question, outcome)
        text, blocks = quiz_message(marked.record, marked.progress, marked.score)
        background.spawn(tell_clicker(respond, text, blocks=blocks, replace=True))


def _escaped(text: str) -> str:
    """A topic shown in bold: escaped, without the asterisks that would end the bold."""
    return escape_mrkdwn(text.replace("*", ""))
