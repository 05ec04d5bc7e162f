"""Showing one turn in Slack: the "Thinking…" placeholder, its status edits, the answer.

The answer lives in one place at a time (`bot.turns.records.AnswerPlace`), recorded in the
turn's journal whenever it changes: the placeholder message, edited in place; a native
stream that replaced it; or, for a /tutor command in a channel the bot may not post in, the
command's `response_url`. An answer longer than one message continues in further messages
in the same place, each recorded once shown. If the placeholder cannot be edited it is
deleted and the answer posted in its place: nothing is left saying "Thinking…".
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.backends.base import RunStatus, StepStatus, ToolStep
from bot.settings import StreamingMode
from bot.slack.agent_sessions import AgentSessions, SessionStatus, session_thread, status_after
from bot.slack.answer_places import (
    CANNOT_POST_HERE,
    Block,
    ResponseUrlReply,
    SlackMessage,
)
from bot.slack.answer_stream import NativeAnswerStream, can_stream_natively
from bot.slack.client import slack_error_code
from bot.slack.command_threads import CommandThreads
from bot.slack.edit_budget import StatusEdits
from bot.slack.feedback_blocks import feedback_block
from bot.slack.placeholder import (
    PANE_STATUS,
    RETRYING,
    STILL_WRITING,
    THINKING,
    WAITING_TEXT,
    command_header,
    placeholder_blocks,
    placeholder_metadata,
    status_text,
    turn_of_message,
    with_header,
)
from bot.slack.render import (
    MESSAGE_LIMIT,
    SECTION_LIMIT,
    markdown_to_mrkdwn,
    neutralise_markdown,
    render_partial,
    split_message,
)
from bot.slack.reveal_blocks import reveal_block
from bot.slack.usage_text import usage_line
from bot.turns.models import Turn, TurnSource
from bot.turns.post_lanes import PostLanes, channel_lane
from bot.turns.records import AnswerPlace, Journal, PlaceKind
from bot.turns.surface import ReplyImpossible, Waiting
from bot.tutor.usage import UsageFigures

log = logging.getLogger(__name__)

ANSWER_BELOW = "_Answer below._"


class SlackReplySurface:
    """A turn's reply in a Slack channel or thread (see `bot.turns.surface.ReplySurface`)."""

    def __init__(
        self,
        client: AsyncWebClient,
        turn: Turn,
        journal: Journal,
        budget: StatusEdits,
        streaming: StreamingMode,
        command_threads: CommandThreads,
        sessions: AgentSessions | None = None,
        *,
        show_usage: bool = False,
        lanes: PostLanes | None = None,
    ) -> None:
        self._client = client
        self._lanes = lanes or PostLanes()  # placeholders into one channel, people in turn
        self._turn = turn
        self._journal = journal
        self._budget = budget
        self._streaming = streaming
        self._command_threads = command_threads
        self._show_usage = show_usage
        is_command = turn.source is TurnSource.COMMAND
        self._header = command_header(turn.user_id, turn.text) if is_command else ""
        # A command's root is posted at the top level; its answer continues in its thread.
        self._message = SlackMessage(client, turn, None if is_command else turn.thread_ts)
        self._response_url: ResponseUrlReply | None = None
        self._stream: NativeAnswerStream | None = None
        if streaming is StreamingMode.NATIVE and can_stream_natively(turn):
            self._stream = NativeAnswerStream(client, turn)
        self._sessions = sessions
        self._session_ts = session_thread(turn)  # the thread of its agent session, if any
        self._session_begun = False
        self._steps: dict[str, ToolStep] = {}  # tools at work (and done), by step id

    # Where the answer lives ---------------------------------------------------------------

    async def show_placeholder(self, waiting: Waiting | None = None) -> AnswerPlace:
        text = with_header(self._header, WAITING_TEXT[waiting] if waiting else THINKING)
        try:
            async with self._lanes.turn(channel_lane(self._turn), self._turn.user_id):
                ts = await self._message.post(
                    text,
                    placeholder_blocks(text, self._turn),
                    metadata=placeholder_metadata(self._turn),
                )
        except ReplyImpossible as error:
            if self._turn.response_url and str(error) in CANNOT_POST_HERE:
                return await self._answer_through_response_url()
            raise
        await self._use_message(ts)
        return AnswerPlace(PlaceKind.MESSAGE, ts)

    async def restore(self, place: AnswerPlace) -> None:
        if place.kind is PlaceKind.RESPONSE_URL:
            self._use_response_url()
            return
        if place.kind is PlaceKind.STREAM:
            await self._end_interrupted_stream(place.ref)
        await self._use_message(place.ref)
        await self._begin_session()  # a worker takes the turn up now

    async def find_placeholder(self) -> AnswerPlace | None:
        """Search recent messages for this turn's placeholder (by its metadata).

        Only used after a crash between posting it and recording it; a failed search
        (rate limit, missing scope) means a new placeholder is posted.
        """
        found = await self._placeholders_of_turn()
        if not found:
            return None
        await self._use_message(found[0])
        return AnswerPlace(PlaceKind.MESSAGE, found[0])

    async def remove_strays(self) -> None:
        if self._response_url is not None:
            return
        keep = {self._message.ts, self._stream.ts if self._stream else None}
        for ts in await self._placeholders_of_turn():
            if ts not in keep:
                log.info("removing a stray placeholder %s", self._context)
                stray = SlackMessage(self._client, self._turn, self._message.thread_ts)
                stray.ts = ts
                await stray.delete()

    async def _use_message(self, ts: str) -> None:
        self._message.ts = ts
        if self._turn.source is TurnSource.COMMAND:
            self._message.thread_ts = ts  # the root: the rest of a long answer goes below it
            self._stream = None
            await self._command_threads.link(
                self._turn.team_id, self._turn.channel_id, ts, self._turn.conversation_key
            )

    def _use_response_url(self) -> None:
        assert self._turn.response_url is not None
        self._response_url = ResponseUrlReply(self._turn.response_url, self._header)
        self._stream = None

    async def _answer_through_response_url(self) -> AnswerPlace:
        self._use_response_url()
        assert self._response_url is not None
        await self._response_url.show_placeholder()
        return AnswerPlace(PlaceKind.RESPONSE_URL)

    async def _end_interrupted_stream(self, ts: str) -> None:
        """A dead process may have left this stream open: end it, then edit it like a message."""
        try:
            await self._client.chat_stopStream(channel=self._turn.channel_id, ts=ts)
        except SlackApiError:
            pass  # a stream Slack already ended
        self._stream = None

    async def _placeholders_of_turn(self) -> list[str]:
        """The ts of recent messages tagged with this turn's id ([] if the search fails).

        conversations.replies is heavily rate limited for some apps: only resumed turns
        search, so this stays rare.
        """
        channel, thread_ts = self._turn.channel_id, self._message.thread_ts
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
            code = slack_error_code(error)
            log.warning("placeholder search failed (%s) %s", code, self._context)
            return []
        messages = response.get("messages") or []
        return [str(m["ts"]) for m in messages if turn_of_message(m) == self._turn.turn_id]

    # While the run works ------------------------------------------------------------------

    async def show_status(
        self, status: RunStatus, elapsed_seconds: float, *, retrying: bool = False
    ) -> None:
        await self._begin_session()
        text = RETRYING if retrying else status_text(status, elapsed_seconds)
        if text is None or self._message.ts is None:
            return
        await self._set_pane_status(PANE_STATUS.get(status, "is working on it…"))
        await self._show_in_placeholder(text)

    async def show_steps(self, steps: tuple[ToolStep, ...]) -> bool:
        """Tools at work: task updates in a native stream, else a status line in the
        placeholder ("Searching the web…"); False when that edit was held back."""
        await self._begin_session()
        self._steps.update({step.id: step for step in steps})
        if self._stream is not None and self._response_url is None:
            was_started = self._stream.started
            if await self._stream.show_steps(list(self._steps.values())):
                if not was_started and self._stream.ts is not None:
                    await self._journal.answer_placed(
                        AnswerPlace(PlaceKind.STREAM, self._stream.ts)
                    )
                    await self._retire_placeholder()
                return True
            self._stream = None  # Slack would not stream here: the placeholder says it
        working = [s for s in self._steps.values() if s.status is StepStatus.IN_PROGRESS]
        if not working or self._message.ts is None:
            return True
        title = working[-1].title
        await self._set_pane_status(f"is {title[0].lower()}{title[1:]}…")
        return await self._show_in_placeholder(f"_{title}…_")

    async def show_partial(self, text: str) -> bool:
        """Stream the answer so far, or edit it into the placeholder (throttled)."""
        await self._begin_session()
        if self._streaming is StreamingMode.OFF or self._response_url is not None:
            return False
        if self._stream is not None:
            was_started = self._stream.started
            if await self._stream.show(text):
                if not was_started and self._stream.ts is not None:
                    await self._journal.answer_placed(
                        AnswerPlace(PlaceKind.STREAM, self._stream.ts)
                    )
                    await self._retire_placeholder()
                return True
            self._stream = None  # Slack would not stream here: edit the placeholder instead
        if self._message.ts is None:
            return False
        room = SECTION_LIMIT - len(self._header) - len(STILL_WRITING) - 4
        await self._show_in_placeholder(f"{render_partial(text, room)}\n\n{STILL_WRITING}")
        return True

    async def _show_in_placeholder(self, text: str) -> bool:
        """Edit a status or a partial answer into the placeholder, keeping its Stop button;
        True when shown.

        Within the edit budget only: a skipped or failed edit is replaced by the next one,
        or by the answer, which is always delivered.
        """
        ts = self._message.ts
        if ts is None:
            return False
        shown = with_header(self._header, text)
        return await self._budget.edit(self._turn, ts, shown, placeholder_blocks(shown, self._turn))

    async def _retire_placeholder(self) -> None:
        """The answer now streams into its own message (recorded first): the placeholder goes."""
        if not await self._message.delete():
            await self._message.edit(ANSWER_BELOW, [])  # left, it would say "Thinking…"
        self._message.ts = None

    async def _set_pane_status(self, status: str) -> None:
        """In Slack's assistant pane, show the status beside the app's name too ("" clears)."""
        if not self._turn.assistant_thread or not self._turn.thread_ts:
            return
        try:
            await self._client.assistant_threads_setStatus(
                channel_id=self._turn.channel_id, thread_ts=self._turn.thread_ts, status=status
            )
        except SlackApiError as error:  # cosmetic
            log.info("setStatus failed (%s) %s", slack_error_code(error), self._context)

    def _in_session(self) -> bool:
        """Whether this turn's thread is an agent session the bot keeps up to date."""
        return (
            self._sessions is not None
            and self._session_ts is not None
            and self._sessions.enabled(self._turn.team_id)
        )

    async def _begin_session(self) -> None:
        """The thread's session is processing (Slack shows its Stop button); the first
        question of the conversation gives it its title. Once per turn and worker."""
        if self._session_begun or not self._in_session():
            return
        self._session_begun = True
        assert self._sessions is not None and self._session_ts is not None
        turn = self._turn
        if await self._sessions.set_status(
            turn.team_id,
            turn.channel_id,
            self._session_ts,
            SessionStatus.PROCESSING,
            initiator=turn.user_id,
        ):
            await self._sessions.give_title(turn, self._session_ts)

    def _final_session_status(self, status: SessionStatus) -> str | None:
        """The status a stream's end gives the session (chat.stopStream's session_status)."""
        return status.value if self._session_begun and self._in_session() else None

    async def _end_session(self, status: SessionStatus) -> None:
        """The reply is there: the session leaves processing."""
        if not self._session_begun or not self._in_session():
            return
        assert self._sessions is not None and self._session_ts is not None
        turn = self._turn
        await self._sessions.set_status(turn.team_id, turn.channel_id, self._session_ts, status)

    # The end ------------------------------------------------------------------------------

    async def show_answer(
        self, text: str, *, note: str | None = None, usage: UsageFigures | None = None
    ) -> None:
        markdown = f"{text}\n\n_{note}_" if note else text
        after = status_after(text)
        footer = usage_line(usage) if self._show_usage and usage is not None else None
        if self._stream is not None and self._stream.started:
            blocks = [*self._reveal_blocks(), feedback_block(self._turn.turn_id)]
            blocks += _footer_blocks(footer)
            if await self._stream.finish(markdown, blocks, self._final_session_status(after)):
                return
            self._message.ts = self._stream.ts  # too long to stream: replace it instead
        await self._deliver(markdown, markdown=True, footer=footer)
        await self._end_session(after)

    async def show_error(self, message: str) -> None:
        after = SessionStatus.ACTIVE
        if self._stream is not None and self._stream.started:
            if await self._stream.fail(message, self._final_session_status(after)):
                return
            self._message.ts = self._stream.ts
        await self._deliver(f":warning: {message}", markdown=False)
        await self._end_session(after)

    async def _deliver(self, body: str, *, markdown: bool, footer: str | None = None) -> None:
        """Put `body` in place of the placeholder, continuing in further messages if long.

        An answer (`markdown`) is shown with Slack's markdown block, neutralised, with its
        mrkdwn rendering as the notification text; anything else is mrkdwn already. Each
        message is recorded once shown, so a resumed turn posts only the rest. `footer` is a
        small context line under the last message (the turn's usage).
        """
        await self._set_pane_status("")
        header_room = len(self._header) + 2 if self._header else 0
        parts = split_message(body, MESSAGE_LIMIT - header_room)
        messages = [
            self._message_of(part, index == 0, markdown) for index, part in enumerate(parts)
        ]
        if markdown and self._offers_reveal():  # above the last message's feedback buttons
            text, blocks = messages[-1]
            messages[-1] = (text, [*blocks[:-1], *self._reveal_blocks(), *blocks[-1:]])
        if footer:
            text, blocks = messages[-1]
            messages[-1] = (text, [*blocks, *_footer_blocks(footer)] if blocks else blocks)
        if self._response_url is not None:
            await self._response_url.deliver(messages)
            return
        shown = self._journal.progress.chunks_delivered
        for index, (text, blocks) in enumerate(messages):
            if index < shown:
                continue
            if index == 0 and not await self._replace_placeholder(text, blocks):
                await self._post_in_place_of_placeholder(text, blocks)
            elif index > 0:
                await self._message.post(text, blocks)
            await self._journal.chunks_shown(index + 1)

    async def _replace_placeholder(self, text: str, blocks: list[Block]) -> bool:
        """Edit the placeholder into `text`; if Slack will not, delete it. True if edited."""
        ts = self._message.ts
        if ts is None:
            return False
        await self._budget.count_final_edit(self._turn.team_id, ts)
        # The placeholder's own blocks (its Stop button) go with an empty list.
        if await self._message.edit(text, blocks):
            return True
        if not await self._message.delete():
            log.warning("a placeholder could be neither edited nor deleted %s", self._context)
        return False

    async def _post_in_place_of_placeholder(self, text: str, blocks: list[Block]) -> None:
        """The first message of the reply, posted where the placeholder was."""
        if self._turn.source is TurnSource.COMMAND:
            self._message.thread_ts = None  # a new root; the rest goes into its thread
            self._message.thread_ts = await self._message.post(text, blocks)
        else:
            await self._message.post(text, blocks)

    def _message_of(self, part: str, first: bool, markdown: bool) -> tuple[str, list[Block]]:
        """(text, blocks) of one message of a reply; the first carries a /tutor header, and
        every message of an answer Slack's feedback buttons."""
        header = self._header if first else ""
        if not markdown:
            return with_header(header, part), []
        blocks: list[Block] = [
            {"type": "markdown", "text": neutralise_markdown(part)},
            feedback_block(self._turn.turn_id),
        ]
        if header:
            blocks.insert(0, {"type": "section", "text": {"type": "mrkdwn", "text": header}})
        return with_header(header, markdown_to_mrkdwn(part)), blocks

    def _offers_reveal(self) -> bool:
        """A guided answer carries "Show me the answer" (its mode is in the journal)."""
        teaching = self._journal.progress.teaching
        return teaching is not None and teaching.guided

    def _reveal_blocks(self) -> list[Block]:
        if not self._offers_reveal():
            return []
        return [reveal_block(self._turn.turn_id, self._turn.conversation_key)]

    @property
    def _context(self) -> dict[str, str]:
        return self._turn.log_context()


def _footer_blocks(footer: str | None) -> list[Block]:
    """A context block (small grey text) under an answer; none without a footer."""
    if not footer:
        return []
    return [{"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]}]
