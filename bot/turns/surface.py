"""What the engine needs from the place a reply is shown (Slack, a terminal, a test)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from bot.backends.base import RunStatus, ToolStep
from bot.turns.models import Turn
from bot.turns.records import AnswerPlace, Journal
from bot.tutor.usage import UsageFigures


class Waiting(StrEnum):
    """Why a question shown at once is not being answered yet."""

    BEHIND = "behind"  # earlier questions of its conversation are answered first
    BUSY = "busy"  # every slot is taken: it waits for free capacity


class ReplyImpossible(Exception):
    """The surface will never take this reply (channel gone, bot removed, message refused).

    Retrying cannot help: the engine ends the turn, logged once, and the conversation goes on.
    """


class ReplySurface(Protocol):
    """One turn's reply: a placeholder first, status changes, then an answer or an error.

    The surface records in the turn's journal where the answer lives whenever that changes
    (`Journal.answer_placed`) and how much of a long answer it has shown
    (`Journal.chunks_shown`), so a resumed turn continues in the same place and shows
    nothing twice. `show_answer`/`show_error` must not raise for a problem they can
    report another way; they raise ReplyImpossible when the reply cannot be shown at all.
    """

    async def restore(self, place: AnswerPlace) -> None:
        """Continue a resumed turn where an earlier attempt left its answer (ending a
        stream a dead process left open)."""
        ...

    async def find_placeholder(self) -> AnswerPlace | None:
        """The placeholder an interrupted attempt of this turn posted without recording it,
        if it can be found (it is then this surface's place)."""
        ...

    async def remove_strays(self) -> None:
        """After a resumed turn: remove placeholders an interrupted attempt of it posted
        that are not this surface's (a post that landed after its process lost the turn)."""
        ...

    async def show_placeholder(self, waiting: Waiting | None = None) -> AnswerPlace:
        """Show that the question was received and is being worked on (once per turn);
        `waiting` says why it is not answered yet, when it is shown before a worker is free."""
        ...

    async def show_status(
        self, status: RunStatus, elapsed_seconds: float, *, retrying: bool = False
    ) -> None:
        """The run's status changed (or is still the same after a long time); `retrying`:
        checking on it failed for now and is being tried again."""
        ...

    async def show_steps(self, steps: tuple[ToolStep, ...]) -> bool:
        """Tools at work (a web search, a file search, reading an attachment), as they
        change; steps are kept by id, so a later call updates an earlier one's status.
        False when they could not be shown just now (edits held back): ask again soon."""
        ...

    async def show_partial(self, text: str) -> bool:
        """The answer so far (Markdown), while it is being written; False if not shown
        (streaming off, or nowhere to show it), so the engine keeps showing statuses."""
        ...

    async def show_answer(
        self, text: str, *, note: str | None = None, usage: UsageFigures | None = None
    ) -> None:
        """Replace the placeholder with the answer; `note` is a short remark shown after it,
        `usage` the turn's tokens (shown under it where the surface is set to)."""
        ...

    async def show_error(self, message: str) -> None:
        """Replace the placeholder with a plain-language explanation of what went wrong."""
        ...


SurfaceFactory = Callable[[Turn, Journal], ReplySurface]
