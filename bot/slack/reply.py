"""Showing one turn in Slack: the "Thinking…" placeholder, its status edits, the answer.

The placeholder is edited in place (same `ts`) so the conversation stays tidy; an answer
longer than one message continues in further messages in the same place. If the placeholder
cannot be edited (deleted, Slack error), the answer is posted as a new message instead:
the user always gets it.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.backends.base import RunStatus
from bot.settings import StreamingMode
from bot.slack.answer_stream import NativeAnswerStream, can_stream_natively
from bot.slack.edit_budget import EditBudget
from bot.slack.render import (
    MESSAGE_LIMIT,
    SECTION_LIMIT,
    escape_mrkdwn,
    markdown_to_mrkdwn,
    neutralise_markdown,
    render_partial,
    split_message,
)
from bot.turns.models import Turn, TurnSource

log = logging.getLogger(__name__)

Block = dict[str, object]

THINKING = "_Thinking…_"
STATUS_TEXT: dict[RunStatus, str] = {
    RunStatus.QUEUED: "_Thinking… (waiting for the model)_",
    RunStatus.IN_PROGRESS: "_Thinking… (writing an answer)_",
    RunStatus.REQUIRES_ACTION: "_Thinking… (looking something up)_",
    RunStatus.CANCELLING: "_Stopping…_",
}
STILL_WORKING_AFTER_SECONDS = 10
RETRYING = "_Thinking… (the model server didn't answer just now; trying again)_"
# Under a partial answer in the placeholder, until the whole answer replaces it.
STILL_WRITING = "_Thinking… (still writing)_"
STOP_ACTION = "tutor_stop"
# assistant.threads.setStatus shows "<App> <status>".
PANE_STATUS: dict[RunStatus, str] = {
    RunStatus.QUEUED: "is waiting for the model…",
    RunStatus.IN_PROGRESS: "is writing an answer…",
    RunStatus.REQUIRES_ACTION: "is looking something up…",
    RunStatus.CANCELLING: "is stopping…",
}
# Message metadata tying a placeholder to its turn, so a resumed turn can find it again.
PLACEHOLDER_EVENT = "tutor_placeholder"
# Errors meaning "the bot may not post in this channel": answer through response_url.
CANNOT_POST_HERE = frozenset({"not_in_channel", "channel_not_found", "is_archived"})


def status_text(status: RunStatus, elapsed_seconds: float) -> str | None:
    """Friendly words for a run's status; after a while, how long it has been going."""
    if status is RunStatus.IN_PROGRESS and elapsed_seconds >= STILL_WORKING_AFTER_SECONDS:
        return f"_Thinking… (still working on it, {int(elapsed_seconds)} s so far)_"
    return STATUS_TEXT.get(status)


def placeholder_blocks(text: str, turn: Turn) -> list[dict[str, object]]:
    """The placeholder: its text, and a Stop button only the asker may use."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": STOP_ACTION,
                    "text": {"type": "plain_text", "text": "Stop"},
                    "value": stop_value(turn.turn_id, turn.user_id),
                }
            ],
        },
    ]


def stop_value(turn_id: str, user_id: str) -> str:
    return f"{turn_id}|{user_id}"


def parse_stop_value(value: str) -> tuple[str, str]:
    """(turn id, asker's user id) from a Stop button's value."""
    turn_id, _, user_id = value.partition("|")
    return turn_id, user_id


def command_header(user_id: str, question: str) -> str:
    """The first line of a /tutor thread: who asked what, shown above the answer."""
    return f"<@{user_id}> asked: {escape_mrkdwn(question)}"


def with_header(header: str, body: str) -> str:
    return f"{header}\n\n{body}" if header else body


async def post_command_root(
    client: AsyncWebClient, channel_id: str, user_id: str, question: str
) -> str | None:
    """Post the root of a /tutor thread (question + "Thinking…"); None if we may not post.

    The root is the turn's placeholder: it becomes the question and its answer.
    """
    try:
        response = await client.chat_postMessage(
            channel=channel_id, text=with_header(command_header(user_id, question), THINKING)
        )
    except SlackApiError as error:
        if _error_code(error) in CANNOT_POST_HERE:
            return None
        raise
    return str(response["ts"])


class SlackReplySurface:
    """A turn's reply in a Slack channel or thread (see `bot.turns.surface.ReplySurface`)."""

    def __init__(
        self,
        client: AsyncWebClient,
        turn: Turn,
        budget: EditBudget,
        streaming: StreamingMode = StreamingMode.OFF,
    ) -> None:
        self._client = client
        self._turn = turn
        self._budget = budget
        self._streaming = streaming
        self._placeholder_ts = turn.placeholder_ts
        self._header = ""
        self._fallback: ResponseUrlReply | None = None
        if turn.source is TurnSource.COMMAND:
            self._header = command_header(turn.user_id, turn.text)
            if turn.placeholder_ts is None and turn.response_url:
                self._fallback = ResponseUrlReply(turn.response_url, self._header)
        self._stream: NativeAnswerStream | None = None
        if streaming is StreamingMode.NATIVE and can_stream_natively(turn):
            self._stream = NativeAnswerStream(client, turn)

    @property
    def placeholder_ref(self) -> str | None:
        """The placeholder, or the streamed message that replaced it."""
        if self._stream is not None and self._stream.started:
            return self._stream.ts
        return self._placeholder_ts

    async def show_placeholder(self) -> None:
        if self._fallback is not None:
            await self._fallback.show_placeholder()
        elif self._placeholder_ts is None:
            text = with_header(self._header, THINKING)
            response = await self._client.chat_postMessage(
                channel=self._turn.channel_id,
                thread_ts=self._turn.thread_ts,
                text=text,
                blocks=placeholder_blocks(text, self._turn),
                metadata={
                    "event_type": PLACEHOLDER_EVENT,
                    "event_payload": {"turn_id": self._turn.turn_id},
                },
            )
            self._placeholder_ts = response["ts"]

    async def find_placeholder(self) -> bool:
        """Search recent messages for this turn's placeholder (by its metadata).

        Only used after a crash between posting it and recording it; a failed search
        (rate limit, missing scope) means a new placeholder is posted.
        """
        if self._fallback is not None or self._placeholder_ts is not None:
            return self._placeholder_ts is not None
        found = await self._placeholders_of_turn()
        if found:
            self._placeholder_ts = found[0]
        return bool(found)

    async def remove_strays(self) -> None:
        if self._fallback is not None:
            return
        keep = {self._placeholder_ts, self.placeholder_ref}
        for ts in await self._placeholders_of_turn():
            if ts in keep:
                continue
            log.info("removing a stray placeholder %s", self._context)
            try:
                await self._client.chat_delete(channel=self._turn.channel_id, ts=ts)
            except SlackApiError as error:
                log.warning("stray delete failed (%s) %s", _error_code(error), self._context)

    async def _placeholders_of_turn(self) -> list[str]:
        """The ts of recent messages tagged with this turn's id ([] if the search fails).

        conversations.replies is heavily rate limited for some apps: only resumed turns
        search, so this stays rare.
        """
        channel, thread_ts = self._turn.channel_id, self._turn.thread_ts
        try:
            if thread_ts:
                response = await self._client.conversations_replies(
                    channel=channel, ts=thread_ts, include_all_metadata=True, limit=200
                )
            else:
                response = await self._client.conversations_history(
                    channel=channel, include_all_metadata=True, limit=100
                )
        except SlackApiError as error:
            log.warning("placeholder search failed (%s) %s", _error_code(error), self._context)
            return []
        found = []
        for message in response.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("turn_id") == self._turn.turn_id:
                found.append(str(message["ts"]))
        return found

    async def show_status(
        self, status: RunStatus, elapsed_seconds: float, *, retrying: bool = False
    ) -> None:
        text = RETRYING if retrying else status_text(status, elapsed_seconds)
        if text is None or self._fallback is not None or self._placeholder_ts is None:
            return
        await self._set_pane_status(PANE_STATUS.get(status, "is working on it…"))
        await self._show_in_placeholder(text)

    async def show_partial(self, text: str) -> bool:
        """Stream the answer so far, or edit it into the placeholder (throttled)."""
        if self._streaming is StreamingMode.OFF or self._fallback is not None:
            return False
        if self._stream is not None:
            if self._stream.started:
                # Deleted only now, so the stream was recorded as this turn's message first.
                await self._retire_placeholder()
            if await self._stream.show(text):
                return True
            self._stream = None  # Slack would not stream here: edit the placeholder instead
        if self._placeholder_ts is None:
            return False
        room = SECTION_LIMIT - len(self._header) - len(STILL_WRITING) - 4
        await self._show_in_placeholder(f"{render_partial(text, room)}\n\n{STILL_WRITING}")
        return True

    async def _show_in_placeholder(self, text: str) -> None:
        """Edit a status or a partial answer into the placeholder, keeping its Stop button.

        Within the edit budget only: a skipped edit is replaced by the next one, or by the
        answer, which is always delivered.
        """
        if self._placeholder_ts is None:
            return
        if not self._budget.allow_status_edit(self._turn.team_id, self._placeholder_ts):
            return
        shown = with_header(self._header, text)
        try:
            await self._client.chat_update(
                channel=self._turn.channel_id,
                ts=self._placeholder_ts,
                text=shown,
                blocks=placeholder_blocks(shown, self._turn),
            )
        except SlackApiError as error:  # cosmetic: the answer still replaces it
            log.warning("placeholder edit failed (%s) %s", _error_code(error), self._context)

    async def show_answer(self, text: str, *, note: str | None = None) -> None:
        markdown = f"{text}\n\n_{note}_" if note else text
        if self._stream is not None and self._stream.started:
            await self._retire_placeholder()
            if await self._stream.finish(markdown):
                return
            self._placeholder_ts = self._stream.ts  # too long to stream: replace it instead
        await self._deliver(markdown, markdown=True)

    async def show_error(self, message: str) -> None:
        if self._stream is not None and self._stream.started:
            await self._retire_placeholder()
            if await self._stream.fail(message):
                return
            self._placeholder_ts = self._stream.ts
        await self._deliver(f":warning: {message}", markdown=False)

    async def _end_interrupted_stream(self) -> None:
        """A resumed turn's recorded message may be a stream a dead process left open."""
        resumed = self._turn.placeholder_ts
        if resumed is None or self._stream is None or self._placeholder_ts != resumed:
            return
        try:
            await self._client.chat_stopStream(channel=self._turn.channel_id, ts=resumed)
        except SlackApiError:
            pass  # an ordinary placeholder, or a stream Slack already ended

    async def _retire_placeholder(self) -> None:
        """The answer now streams into its own message: the placeholder goes."""
        if self._placeholder_ts is None or self._stream is None:
            return
        if self._placeholder_ts == self._stream.ts:
            return  # a resumed turn: the recorded message is the stream itself
        try:
            await self._client.chat_delete(channel=self._turn.channel_id, ts=self._placeholder_ts)
        except SlackApiError as error:  # left behind, it would say "Thinking…": say it moved
            log.warning("placeholder delete failed (%s) %s", _error_code(error), self._context)
            await self._edit_placeholder("_Answer below._")
        self._placeholder_ts = None

    async def _set_pane_status(self, status: str) -> None:
        """In Slack's assistant pane, show the status beside the app's name too ("" clears)."""
        if not self._turn.assistant_thread or not self._turn.thread_ts:
            return
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=self._turn.channel_id, thread_ts=self._turn.thread_ts, status=status
            )
        except SlackApiError as error:  # cosmetic
            log.info("setStatus failed (%s) %s", _error_code(error), self._context)

    async def _deliver(self, body: str, *, markdown: bool) -> None:
        """Put `body` in place of the placeholder, continuing in further messages if long.

        An answer (`markdown`) is shown with Slack's markdown block, neutralised, with its
        mrkdwn rendering as the notification text; anything else is mrkdwn already.
        """
        await self._set_pane_status("")
        await self._end_interrupted_stream()
        header_room = len(self._header) + 2 if self._header else 0
        parts = split_message(body, MESSAGE_LIMIT - header_room)
        messages = [self._message(part, index == 0, markdown) for index, part in enumerate(parts)]
        if self._fallback is not None:
            await self._fallback.deliver([text for text, _ in messages])
            return
        for index, (text, blocks) in enumerate(messages):
            if index == 0 and await self._edit_placeholder(text, blocks):
                continue
            await self._client.chat_postMessage(
                channel=self._turn.channel_id,
                thread_ts=self._turn.thread_ts,
                text=text,
                blocks=blocks or None,
            )

    def _message(self, part: str, first: bool, markdown: bool) -> tuple[str, list[Block]]:
        """(text, blocks) of one message of a reply; the first carries a /tutor header."""
        header = self._header if first else ""
        if not markdown:
            return with_header(header, part), []
        blocks: list[Block] = [{"type": "markdown", "text": neutralise_markdown(part)}]
        if header:
            blocks.insert(0, {"type": "section", "text": {"type": "mrkdwn", "text": header}})
        return with_header(header, markdown_to_mrkdwn(part)), blocks

    async def _edit_placeholder(self, text: str, blocks: list[Block] | None = None) -> bool:
        if self._placeholder_ts is None:
            return False
        self._budget.count_final_edit(self._turn.team_id, self._placeholder_ts)
        try:
            await self._client.chat_update(
                channel=self._turn.channel_id,
                ts=self._placeholder_ts,
                text=text,
                blocks=blocks or [],
            )  # the placeholder's own blocks (its Stop button) go
            return True
        except SlackApiError as error:
            log.warning("placeholder edit failed (%s) %s", _error_code(error), self._context)
            return False

    @property
    def _context(self) -> dict[str, str]:
        return self._turn.log_context()


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

    async def deliver(self, chunks: list[str]) -> None:
        await self._webhook.send(delete_original=True)
        if len(chunks) > self.MAX_ANSWER_MESSAGES:
            kept = chunks[: self.MAX_ANSWER_MESSAGES]
            kept[-1] += "\n\n_(The rest of this answer did not fit; invite me to the channel.)_"
            chunks = kept
        for chunk in chunks:
            await self._webhook.send(text=chunk, response_type="in_channel")


def _error_code(error: SlackApiError) -> str:
    return str(error.response.get("error", "unknown")) if error.response is not None else "?"
