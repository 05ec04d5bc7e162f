"""The one shape every model backend has: conversation, message, run, status, answer.

The turn engine only speaks this protocol, so it never depends on an SDK type, and a new
model API is one new module.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class RunStatus(StrEnum):
    """Where a run is; the names of the Assistants protocol, which the others map onto."""

    QUEUED = "queued"  # accepted, waiting for the model
    IN_PROGRESS = "in_progress"  # the model is working
    REQUIRES_ACTION = "requires_action"  # waiting for tool output (not used by the tutor)
    CANCELLING = "cancelling"  # a cancel was asked for, not yet done
    CANCELLED = "cancelled"  # stopped before it finished
    FAILED = "failed"  # the model server gave up with an error
    COMPLETED = "completed"  # finished; the answer is ready
    INCOMPLETE = "incomplete"  # stopped early (token limit): partial or no answer
    EXPIRED = "expired"  # took longer than the server allows

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        RunStatus.CANCELLED,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
        RunStatus.INCOMPLETE,
        RunStatus.EXPIRED,
    }
)


@dataclass(frozen=True)
class Usage:
    """Tokens one run used, as the server reports them (zero where it reports nothing).

    `estimated` marks figures the bot counted itself because the server reported none.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False


class StepKind(StrEnum):
    """The tools whose work a reply shows while the model waits on them."""

    WEB_SEARCH = "web_search"
    FILE_SEARCH = "file_search"
    READING_FILE = "reading_file"


class StepStatus(StrEnum):
    """A step's progress, in Slack's task words (`complete` is the final one)."""

    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    ERROR = "error"


@dataclass(frozen=True)
class Source:
    """A page or file a step found and the answer may cite."""

    title: str
    url: str


@dataclass(frozen=True)
class ToolStep:
    """One tool call of a run (a web search, a file search, reading an attachment), as the
    run's stream tells it: the reply shows it while it works (Slack's task updates)."""

    id: str
    kind: StepKind
    status: StepStatus = StepStatus.IN_PROGRESS
    sources: tuple[Source, ...] = ()
    detail: str = ""  # e.g. the attachment's name

    @property
    def title(self) -> str:
        working = self.status is StepStatus.IN_PROGRESS
        if self.kind is StepKind.WEB_SEARCH:
            return "Searching the web" if working else "Searched the web"
        if self.kind is StepKind.FILE_SEARCH:
            return "Searching the course materials" if working else "Searched the course materials"
        return f"Reading {self.detail}" if self.detail else "Reading the attached file"


@dataclass(frozen=True)
class RunState:
    """A run's status now; `error` is the server's reason for a failed/incomplete run.

    `partial_text` is the answer generated so far, from backends that stream it ("" when
    the backend cannot tell); the final answer still comes from `Backend.answer`.
    """

    status: RunStatus
    error: str | None = None
    usage: Usage | None = None
    partial_text: str = ""
    poll_after: float | None = None  # seconds the server asks us to wait before asking again
    steps: tuple[ToolStep, ...] = ()  # the run's tool calls so far, from its stream


@dataclass(frozen=True)
class Citation:
    """A source the answer cites, and where (character offsets in `Answer.text`).

    `start`/`end` is the cited passage, after which a footnote mark goes; with
    `replaces_span` it is a marker the server put in the text (Assistants' `【4:0†source】`),
    which the footnote mark replaces. No offsets: the source is only listed.
    """

    label: str
    url: str | None = None
    start: int | None = None
    end: int | None = None
    replaces_span: bool = False


@dataclass(frozen=True)
class Answer:
    """The assistant's reply to one turn: its text, parts joined in order, and its sources."""

    text: str
    usage: Usage | None = None
    citations: list[Citation] = field(default_factory=list)


class AttachmentKind(StrEnum):
    IMAGE = "image"
    PDF = "pdf"
    WORD = "word"  # .docx: its text goes to the model on every backend


@dataclass(frozen=True)
class Attachment:
    """A file shared with the question, read for this run (never kept in the turn's record:
    that holds the Slack file id only). `text` is a PDF's or Word document's extracted text
    ("" for images)."""

    name: str
    mimetype: str
    kind: AttachmentKind
    data: bytes = b""
    text: str = ""

    def data_url(self) -> str:
        return f"data:{self.mimetype};base64,{base64.b64encode(self.data).decode()}"

    def as_text(self) -> str:
        """The file as text for a model that takes no file input (PDFs, Word: their text)."""
        return f"[Attached file {self.name}]\n{self.text.strip() or '(no text could be read)'}"


@dataclass(frozen=True)
class UserMessage:
    """What the user said in one turn; `turn_id` tags every create so repeats are detectable.

    `instructions` replace the backend's own (TUTOR_INSTRUCTIONS, or the assistant's) for
    this turn's run, None keeping them; `additional_instructions` are added after either
    (the mode's guidance). Both are chosen per turn (a channel's course, the learner's mode).
    """

    text: str
    turn_id: str
    instructions: str | None = None
    additional_instructions: str = ""
    attachments: tuple[Attachment, ...] = ()
    # The Slack conversation it belongs to: files uploaded for it are listed under it.
    conversation_key: str = ""
    course: str = ""  # the course whose materials the run may search ("team:channel"; "": none)

    def instructions_over(self, default: str) -> str:
        """The whole instructions of this turn's run, over the backend's `default`."""
        base = default if self.instructions is None else self.instructions
        if not self.additional_instructions:
            return base
        return f"{base}\n\n{self.additional_instructions}" if base else self.additional_instructions


class BackendError(Exception):
    """The model server could not do what was asked.

    `reason` is a short phrase ("the model server had an internal error") that fits in a
    sentence; `user_message` is a whole sentence with advice, safe to show as it is.
    """

    def __init__(
        self, message: str, *, reason: str = "the model server had a problem", advice: str = ""
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.advice = advice or "Please try again."

    @property
    def user_message(self) -> str:
        return f"Sorry, {self.reason}. {self.advice}"


class ConversationBusy(BackendError):
    """Another run is still active on this conversation (Assistants 400, conversation_locked)."""


class Backend(Protocol):
    """A model API seen as conversations in which runs produce assistant messages."""

    name: str

    async def create_conversation(self, conversation_key: str) -> str:
        """Create an empty conversation on the server; return its id."""
        ...

    async def add_message(self, conversation_id: str, message: UserMessage) -> str:
        """Add the user's message (idempotent per turn_id); return its id ("" if deferred)."""
        ...

    async def start_run(self, conversation_id: str, message: UserMessage) -> str:
        """Start the model on the conversation; return the run id. Raises ConversationBusy."""
        ...

    async def run_state(self, conversation_id: str, run_id: str) -> RunState:
        """The run's status now."""
        ...

    async def find_message(self, conversation_id: str, message: UserMessage) -> str | None:
        """The id of this turn's message if an earlier attempt added it (by its turn_id)."""
        ...

    async def find_run(self, conversation_id: str, message: UserMessage) -> str | None:
        """The id of this turn's run if an earlier attempt started it and it can be followed."""
        ...

    async def answer(self, conversation_id: str, run_id: str, after_message_id: str) -> Answer:
        """The assistant messages the run added after the user's message, joined."""
        ...

    async def cancel_run(self, conversation_id: str, run_id: str) -> None:
        """Ask the server to stop the run; a run that already ended is left alone."""
        ...

    async def delete_conversation(self, conversation_id: str, run_ids: Sequence[str]) -> None:
        """Delete a forgotten conversation with everything stored of it: its history and the
        runs the bot started on it (`run_ids`: stored responses, chat run records), and files
        added to it where the bot added any. What is already gone is no error."""
        ...

    async def delete_file(self, file_id: str) -> None:
        """Delete a file uploaded for a conversation's attachments (it is being forgotten);
        a file already gone is no error."""
        ...

    async def delete_vector_store(self, vector_store_id: str) -> None:
        """Delete a forgotten course's vector store (its files are deleted one by one);
        one already gone is no error."""
        ...

    async def forget_run(self, conversation_id: str, run_id: str) -> None:
        """The run's turn is over and delivered: drop what the bot itself keeps of the run
        beyond the conversation's history (the `chat` backend's record of it, with the
        answer's text). What is kept at the provider stays until the conversation goes."""
        ...

    def streamed_state(self, run_id: str) -> RunState | None:
        """What the run's event stream says now, without a request; None when this process
        does not stream the run (or its stream broke off): then `run_state` must be asked."""
        ...

    def stream_changed(self, run_id: str) -> asyncio.Event | None:
        """Set whenever the run's stream says something new (text, a status, its end), for
        the engine to wait on instead of polling; None when nothing here streams the run."""
        ...

    def release(self, run_id: str) -> None:
        """This process follows the run no more (its turn ended, or was handed over): drop
        what it kept in memory for it (streamed text, a finished state)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
