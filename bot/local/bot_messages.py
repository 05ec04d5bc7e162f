"""Watching the bot's messages in one channel of the Slack stand-in, as a person in it would.

Each message the bot posts, and each edit of it (the placeholder's status, then the answer),
is reported once, in order. A streamed message is reported when its stream ends. Ephemeral
messages to the channel (a refused question's note) are reported too, marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.local.slack_api import Message, SlackStandIn
from bot.slack.render import ZERO_WIDTH_SPACE, markdown_to_mrkdwn


@dataclass(frozen=True)
class Shown:
    """One thing that appeared: a new message, or a new text of one shown before."""

    ts: str
    text: str  # Slack mrkdwn, as Slack would render it
    edit: bool
    only_you: bool = False  # an ephemeral message: only its recipient sees it


class BotMessages:
    """The bot's messages in `channel` (threads included), each new text reported once."""

    def __init__(self, slack: SlackStandIn, channel: str) -> None:
        self._slack = slack
        self._channel = channel
        self._seen: dict[str, int] = {}  # ts -> how many of its texts were looked at
        self._last: dict[str, str] = {}  # ts -> the text last reported
        self._ephemerals_seen = 0  # of the stand-in's ephemeral messages, all channels

    def has_news(self) -> bool:
        return len(self._slack.ephemerals) > self._ephemerals_seen or any(
            len(m.edits) > self._seen.get(m.ts, 0) for m in self._messages()
        )

    def news(self) -> list[Shown]:
        """What appeared since the last call, oldest message first; repeats are left out."""
        found: list[Shown] = []
        for message in self._messages():
            start = self._seen.get(message.ts, 0)
            for index, text in enumerate(message.edits[start:], start=start):
                if index == len(message.edits) - 1 and shows_markdown(message):
                    text = markdown_to_mrkdwn(text.replace(ZERO_WIDTH_SPACE, ""))
                if text != self._last.get(message.ts):
                    found.append(Shown(message.ts, text, edit=message.ts in self._last))
                    self._last[message.ts] = text
            self._seen[message.ts] = len(message.edits)
        ephemerals = self._slack.ephemerals[self._ephemerals_seen :]
        self._ephemerals_seen += len(ephemerals)
        found.extend(
            Shown("", str(e.get("text", "")), edit=False, only_you=True)
            for e in ephemerals
            if e.get("channel") == self._channel
        )
        return found

    async def next_news(self) -> list[Shown]:
        """Wait for the bot to post or edit something here; return what appeared."""
        await self._slack.wait_for(self.has_news, timeout=None)
        return self.news()

    def _messages(self) -> list[Message]:
        mine = (
            m for (channel, _), m in self._slack.messages.items()
            if channel == self._channel and m.bot_id
        )  # fmt: skip
        return sorted(mine, key=lambda m: float(m.ts))


def shows_markdown(message: Message) -> bool:
    """Whether the message's current text is Markdown (a stream, or a markdown block)."""
    blocks = message.blocks or []
    return message.markdown_text is not None or any(b.get("type") == "markdown" for b in blocks)
