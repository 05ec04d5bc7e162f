"""Forgetting a conversation from Slack: `/tutor forget` (and `/tutor new`) in a DM with the
bot, and the message shortcut *Forget this conversation* on any message of a thread or DM
the bot has a conversation for (slash commands do not work in threads). The work itself is
bot.turns.forget's; this module chooses the conversation and the words.

A command's ack waits up to ACK_WAIT_SECONDS for the whole thing and says how it ended,
which it nearly always can. If not, the ack says it is under way and the outcome follows
once, through the command's `response_url`. A shortcut's ack carries no text: its outcome
comes through `response_url` alone. Every answer is ephemeral.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.background import BackgroundTasks
from bot.slack.command_threads import CommandThreads
from bot.slack.conversation_keys import TOP_LEVEL, thread_key
from bot.slack.interactions import send_ephemeral
from bot.turns.forget import ConversationForgetter, ForgetOutcome

if TYPE_CHECKING:
    from bot.slack.listeners.commands import Subcommand

log = logging.getLogger(__name__)

FORGET_SHORTCUT = "forget_conversation"  # the callback_id in manifest.yml
ACK_WAIT_SECONDS = 2.0  # Slack waits 3 s for a command's ack

FORGOTTEN = (
    "Done: I've deleted this conversation and everything I kept of it. "
    "My next answer here starts afresh."
)
PENDING = (
    "I've deleted this conversation from my memory, but the model provider hasn't confirmed "
    "deleting its copy yet. I'll keep trying until it does."
)
NOTHING = "There's nothing for me to forget here: I have no conversation in these messages."
BUSY = (
    "I'm still answering a question in this conversation. Once the answer is in (or you "
    "press *Stop* under it), ask me again to forget it."
)
UNAVAILABLE = (
    "I couldn't forget this conversation right now (my storage is unavailable). "
    "Please try again in a minute."
)
UNDER_WAY = "Forgetting this conversation… I'll tell you here once it's done."
ONLY_IN_DM = (
    "`/tutor forget` works in our direct messages. To forget a thread, use "
    "*Forget this conversation* in the menu (⋮) of any of its messages."
)
NOT_YOURS = "Only the people who asked in this conversation can make me forget it."

STARTED_OVER = "Done: my next answer here starts a fresh conversation, without the earlier one."
STARTING_OVER = "Starting over… I'll tell you here once the earlier conversation is forgotten."
NEW_BUSY = (
    "I'm still answering a question here. Once the answer is in (or you press *Stop* under "
    "it), `/tutor new` starts a fresh conversation."
)
NOTHING_TO_RESET = (
    "Nothing to reset here: every `/tutor` question starts its own thread. "
    "`/tutor new` starts over in our direct messages."
)

START_OVER_WORDS: Mapping[ForgetOutcome, str] = {
    **dict.fromkeys(ForgetOutcome, STARTED_OVER),  # nothing to forget: it starts fresh anyway
    ForgetOutcome.BUSY: NEW_BUSY,
}
WORDS: Mapping[ForgetOutcome, str] = {
    ForgetOutcome.FORGOTTEN: FORGOTTEN,
    ForgetOutcome.PENDING: PENDING,
    ForgetOutcome.NOTHING: NOTHING,
    ForgetOutcome.BUSY: BUSY,
}


def top_level_dm_key(command: dict[str, Any]) -> str | None:
    """The conversation of the top-level DMs where the command was typed; None elsewhere."""
    channel_id = command["channel_id"]
    if not channel_id.startswith("D"):
        return None
    return thread_key(command.get("team_id") or "", channel_id, TOP_LEVEL)


def forget_command(forgetter: ConversationForgetter, background: BackgroundTasks) -> Subcommand:
    """`/tutor forget`: forget the top-level DM conversation, and say so once it is done."""

    async def forget(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        key = top_level_dm_key(command)
        if key is None:
            await ack(response_type="ephemeral", text=ONLY_IN_DM)
            return
        log.info("forget asked in a DM (conversation %s)", key)
        words = safely(_in_words(lambda: forgetter.forget(key), WORDS))
        await answer_when_done(ack, background, words, command.get("response_url"), UNDER_WAY)

    return forget


def start_over_command(forgetter: ConversationForgetter, background: BackgroundTasks) -> Subcommand:
    """`/tutor new`: forget the top-level DM conversation so that the next message starts a
    fresh one. The ack waits only for it to leave Redis; the backend's copy is deleted after."""

    async def start_over(ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient) -> None:
        key = top_level_dm_key(command)
        if key is None:
            await ack(response_type="ephemeral", text=NOTHING_TO_RESET)
            return

        async def detach() -> ForgetOutcome:
            detached = await forgetter.detach(key)
            if detached.job is not None:  # retried by the sweep should this fail
                background.spawn(forgetter.finish(detached.job))
            return detached.outcome

        words = safely(_in_words(detach, START_OVER_WORDS))
        await answer_when_done(ack, background, words, command.get("response_url"), STARTING_OVER)

    return start_over


def register_forget_shortcut(
    app: AsyncApp,
    forgetter: ConversationForgetter,
    command_threads: CommandThreads,
    background: BackgroundTasks,
) -> None:
    """The message shortcut *Forget this conversation*, for the people who asked in it."""

    @app.message_shortcut(FORGET_SHORTCUT)
    async def on_forget(ack: AsyncAck, shortcut: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        team_id = context.team_id or (shortcut.get("team") or {}).get("id") or ""
        work = _forget_from_shortcut(forgetter, command_threads, team_id, shortcut)
        background.spawn(_tell(shortcut.get("response_url"), safely(work)))


async def _forget_from_shortcut(
    forgetter: ConversationForgetter,
    command_threads: CommandThreads,
    team_id: str,
    shortcut: dict[str, Any],
) -> str:
    key = await shortcut_conversation(forgetter, command_threads, team_id, shortcut)
    if key is None:
        return NOTHING
    user_id = shortcut["user"]["id"]
    if not await forgetter.asked_in(key, user_id):
        log.info("forget refused to %s, who did not ask in conversation %s", user_id, key)
        return NOT_YOURS
    log.info("forget asked by shortcut (conversation %s)", key)
    return WORDS[await forgetter.forget(key)]


async def shortcut_conversation(
    forgetter: ConversationForgetter,
    command_threads: CommandThreads,
    team_id: str,
    shortcut: dict[str, Any],
) -> str | None:
    """The conversation the shortcut's message belongs to, if the bot has one there.

    A reply belongs to its thread; a thread's root (or a lone message) to the thread it
    starts, or in a DM, where that thread is not the bot's, to the top-level DMs. A /tutor
    thread continues its command's conversation.
    """
    channel_id = shortcut["channel"]["id"]
    message = shortcut["message"]
    ts, thread_ts = message["ts"], message.get("thread_ts")
    if thread_ts and thread_ts != ts:
        candidates = [thread_key(team_id, channel_id, thread_ts)]
    else:
        candidates = [thread_key(team_id, channel_id, ts)]
        if channel_id.startswith("D"):
            candidates.append(thread_key(team_id, channel_id, TOP_LEVEL))
    for candidate in candidates:
        key = await command_threads.resolve(candidate)
        if await forgetter.knows(key):
            return key
    return None


async def answer_when_done(
    ack: AsyncAck,
    background: BackgroundTasks,
    words: Coroutine[Any, Any, str],
    response_url: str | None,
    under_way: str,
) -> None:
    """Ack with `words` when they come within ACK_WAIT_SECONDS; else ack with `under_way`
    and send them through `response_url` once they come."""
    task = background.spawn(words)
    await asyncio.wait({task}, timeout=ACK_WAIT_SECONDS)
    if task.done():
        await ack(response_type="ephemeral", text=task.result())
        return
    await ack(response_type="ephemeral", text=under_way)
    background.spawn(_tell(response_url, task))


async def _in_words(
    work: Callable[[], Awaitable[ForgetOutcome]], words: Mapping[ForgetOutcome, str]
) -> str:
    return words[await work()]


async def safely(words: Awaitable[str]) -> str:
    """`words`, or UNAVAILABLE when getting them failed (Redis unreachable); never raises."""
    try:
        return await words
    except Exception as error:
        log.warning("could not forget a conversation (%s: %s)", type(error).__name__, error)
        return UNAVAILABLE


async def _tell(response_url: str | None, words: Awaitable[str]) -> None:
    """Send `words` through `response_url`, ephemerally (bounded; logged if it fails)."""
    await send_ephemeral(response_url, await words)
