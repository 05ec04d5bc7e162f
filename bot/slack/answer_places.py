"""The places a turn's answer can live in Slack, one class each: a message the bot edits
(the placeholder) and a /tutor command's `response_url`. The third, a natively streamed
message, is `bot.slack.answer_stream.NativeAnswerStream`.

Slack's errors are sorted here: transient ones (rate limits after the client's retries,
Slack's own failures) are raised as they are, so the turn is tried again later; anything
else means Slack will never take this reply and becomes `ReplyImpossible`.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack.client import slack_error_code
from bot.slack.placeholder import THINKING, with_header
from bot.turns.models import Turn
from bot.turns.surface import ReplyImpossible

log = logging.getLogger(__name__)

Block = dict[str, object]

# Slack errors that may pass: the same call can succeed later.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Errors meaning "the bot may not post in this channel": a command answers via response_url.
CANNOT_POST_HERE = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


def refused(error: SlackApiError) -> ReplyImpossible | None:
    """The ReplyImpossible this error means, or None when it may pass."""
    code = slack_error_code(error)
    return None if code in TRANSIENT_ERRORS else ReplyImpossible(code)


class SlackMessage:
    """A message of the bot's in a channel or thread, posted, edited and deleted."""

    def __init__(self, client: AsyncWebClient, turn: Turn, thread_ts: str | None) -> None:
        self._client = client
        self._turn = turn
        self.thread_ts = thread_ts
        self.ts: str | None = None

    async def post(self, text: str, blocks: list[Block] | None, **extra: Any) -> str:
        """Post it; raises ReplyImpossible when Slack refuses for good."""
        try:
            response = await self._client.chat_postMessage(
                channel=self._turn.channel_id,
                thread_ts=self.thread_ts,
                text=text,
                blocks=blocks or None,
                **extra,
            )
        except SlackApiError as error:
            impossible = refused(error)
            if impossible is not None:
                raise impossible from error
            raise
        return str(response["ts"])

    async def edit(self, text: str, blocks: list[Block]) -> bool:
        """Edit the message; False when Slack would not (it is then best deleted)."""
        if self.ts is None:
            return False
        try:
            await self._client.chat_update(
                channel=self._turn.channel_id, ts=self.ts, text=text, blocks=blocks
            )
        except SlackApiError as error:
            log.warning("edit failed (%s) %s", slack_error_code(error), self._turn.log_context())
            return False
        return True

    async def delete(self) -> bool:
        """Delete the message; True when it is gone (also when it was gone already)."""
        if self.ts is None:
            return True
        try:
            await self._client.chat_delete(channel=self._turn.channel_id, ts=self.ts)
        except SlackApiError as error:
            code = slack_error_code(error)
            if code != "message_not_found":
                log.warning("delete failed (%s) %s", code, self._turn.log_context())
                return False
        self.ts = None
        return True


class ResponseUrlReply:
    """The reply to a /tutor command in a channel the bot cannot post in.

    `response_url` accepts 5 messages in 30 minutes: one "Thinking…" (ephemeral), one to
    delete it, and up to three for the answer, which is shown to the channel.
    """

    MAX_ANSWER_MESSAGES = 3

    def __init__(self, response_url: str, header: str) -> None:
        self._webhook = AsyncWebhookClient(response_url)
        self._header = header

    async def show_placeholder(self) -> None:
        await self._webhook.send(
            text=with_header(self._header, THINKING), response_type="ephemeral"
        )

    async def deliver(self, messages: list[tuple[str, list[Block]]]) -> None:
        """Show the reply's messages, each (text, blocks) as it would be posted."""
        await self._webhook.send(delete_original=True)
        if len(messages) > self.MAX_ANSWER_MESSAGES:
            kept = messages[: self.MAX_ANSWER_MESSAGES]
            text, blocks = kept[-1]
            note = "_(The rest of this answer did not fit; invite me to the channel.)_"
            cut: list[Block] = [{"type": "context", "elements": [{"type": "mrkdwn", "text": note}]}]
            # Under the text, above the feedback buttons that end an answer's blocks.
            kept[-1] = (f"{text}\n\n{note}", [*blocks[:-1], *cut, blocks[-1]] if blocks else [])
            messages = kept
        for text, blocks in messages:
            await self._webhook.send(text=text, blocks=blocks or None, response_type="in_channel")
