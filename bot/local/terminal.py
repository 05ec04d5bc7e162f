"""The local mode's terminal chat: you write to the bot as a Slack user in a direct message.

Every line goes to the bot the way Slack sends it (a signed `message` event, `channel_type`
im, to /slack/events); the bot answers through the Slack stand-in, and the chat prints each
message and edit the bot makes there (the "Thinking…" placeholder, its status, the answer)
as readable text. Lines starting with "/" are the chat's own commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TextIO

import aiohttp

from bot.local.bot_messages import BotMessages, Shown
from bot.local.slack_api import SlackStandIn
from bot.local.slack_events import SlackEventSender
from bot.local.terminal_text import Style, mrkdwn_to_terminal

HELP = """Commands:
  /new            start a fresh conversation (sends `/tutor new`, as you would in Slack)
  /tutor <text>   any /tutor command, e.g. `/tutor help`
  /help           this list
  /quit           end the chat once the answers on their way arrived (Ctrl-D too)
Ctrl-C stops at once. Anything else is sent to the bot as your direct message."""
QUIT_COMMANDS = frozenset({"quit", "exit", "q"})
SLOW_SETTLE_NOTE_AFTER = 3.0  # seconds before saying that the chat waits for answers
INDENT = "  "


class LineSource(Protocol):
    async def next_line(self) -> str | None: ...


@dataclass(frozen=True)
class DirectMessage:
    """Where the chat happens: the DM channel (its id starts with D) and who writes in it."""

    channel: str
    user: str


class Transcript:
    """Prints the conversation: one line (or indented block) per message or edit."""

    def __init__(self, out: TextIO, style: Style, *, echo_input: bool) -> None:
        self._out = out
        self._style = style
        self._echo_input = echo_input

    def user(self, text: str) -> None:
        """What the user sent; shown only when stdin is no terminal (which shows it already)."""
        if self._echo_input:
            self._print("you", text)

    def bot(self, shown: Shown) -> None:
        if shown.only_you:
            self.only_you(shown.text)
            return
        label = "tutor (edited)" if shown.edit else "tutor"
        self._print(label, mrkdwn_to_terminal(shown.text, self._style))

    def only_you(self, mrkdwn: str) -> None:
        """An ephemeral answer (only the user sees it in Slack)."""
        self._print("tutor (only you see this)", mrkdwn_to_terminal(mrkdwn, self._style))

    def note(self, text: str) -> None:
        self.plain(self._style.dim(f"({text})"))

    def plain(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def _print(self, label: str, text: str) -> None:
        first, *rest = text.split("\n")
        rest = [INDENT + line if line else "" for line in rest]
        lines = [f"{self._style.dim(label + ':')} {first}", *rest]
        self.plain("\n".join(lines))


class TerminalChat:
    """Reads lines, sends them as the user's DMs or commands, prints what the bot shows."""

    def __init__(
        self,
        *,
        slack: SlackStandIn,
        events: SlackEventSender,
        place: DirectMessage,
        lines: LineSource,
        transcript: Transcript,
        settle: Callable[[], Awaitable[None]],
        one_at_a_time: bool = False,
    ) -> None:
        """`one_at_a_time`: wait for the answers before the next line, as a person would
        (for piped input, which arrives all at once); `settle` waits for the answers."""
        self._slack = slack
        self._events = events
        self._place = place
        self._lines = lines
        self._transcript = transcript
        self._settle = settle
        self._one_at_a_time = one_at_a_time
        self._watched = BotMessages(slack, place.channel)

    async def run(self) -> None:
        """Until /quit or end of input; then wait for the answers still on their way."""
        watcher = asyncio.create_task(self._watch())
        try:
            while (line := await self._lines.next_line()) is not None:
                if not await self._handle(line.strip()):
                    break
                if self._one_at_a_time:
                    await self._wait_for_answers(ending=False)
            await self._wait_for_answers(ending=True)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self) -> None:
        while True:
            for shown in await self._watched.next_news():
                self._transcript.bot(shown)

    def _show_news(self) -> None:
        for shown in self._watched.news():
            self._transcript.bot(shown)

    async def _handle(self, line: str) -> bool:
        """Act on one line; False when the chat should end."""
        if not line:
            return True
        self._transcript.user(line)
        if line.startswith("/"):
            return await self._command(line)
        try:
            status, _, _ = await self._events.dm(self._place.channel, self._place.user, line)
        except aiohttp.ClientError as error:
            self._transcript.note(f"could not reach the bot: {error}")
            return True
        self._check(status)
        return True

    async def _command(self, line: str) -> bool:
        name, _, rest = line[1:].partition(" ")
        name = name.lower()
        if name in QUIT_COMMANDS:
            return False
        if name == "help":
            self._transcript.plain(HELP)
        elif name == "new":
            await self._slash_command("new")
        elif name == "tutor":
            await self._slash_command(rest.strip())
        else:
            self._transcript.note(f"unknown command /{name}; /help lists the commands")
        return True

    async def _slash_command(self, text: str) -> None:
        """`/tutor <text>` through the same signed path; print its ephemeral answer if any."""
        try:
            status, body = await self._events.slash_command(
                "/tutor",
                text,
                channel_id=self._place.channel,
                user_id=self._place.user,
                response_url=self._slack.new_response_url(),
                channel_name="directmessage",
            )
        except aiohttp.ClientError as error:
            self._transcript.note(f"could not reach the bot: {error}")
            return
        self._check(status)
        with contextlib.suppress(ValueError):
            answer = json.loads(body) if body else None
            if isinstance(answer, dict) and answer.get("text"):
                self._transcript.only_you(str(answer["text"]))

    def _check(self, status: int) -> None:
        if status != 200:
            self._transcript.note(f"the bot answered HTTP {status}")

    async def _wait_for_answers(self, *, ending: bool) -> None:
        """Until the bot answered everything sent; when ending, say so if that takes a while."""
        settling = asyncio.ensure_future(self._settle())
        try:
            done, _ = await asyncio.wait({settling}, timeout=SLOW_SETTLE_NOTE_AFTER)
            if not done and ending:
                self._transcript.note("waiting for the answers on their way; Ctrl-C stops at once")
            await settling
        except TimeoutError:
            self._transcript.note("gave up waiting for the answers")
        finally:
            settling.cancel()  # Ctrl-C: stop waiting too
        self._show_news()  # all of it before what comes next, whatever the watcher's pace
