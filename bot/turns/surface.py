"""What the engine needs from the place a reply is shown (Slack, a terminal, a test)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bot.backends.base import RunStatus
from bot.turns.models import Turn


class ReplySurface(Protocol):
    """One turn's reply: a placeholder first, status changes, then an answer or an error.

    Implementations must never raise out of `show_answer`/`show_error` for a problem they
    can report another way, since those are the user's last chance to hear back.
    """

    @property
    def placeholder_ref(self) -> str | None:
        """Where the placeholder is (a Slack ts), once shown; recorded so a resumed turn
        completes the same placeholder instead of posting a second one."""
        ...

    async def find_placeholder(self) -> bool:
        """Look for a placeholder an interrupted attempt of this turn posted; True if found
        (it is then this surface's placeholder)."""
        ...

    async def remove_strays(self) -> None:
        """After a resumed turn: remove placeholders an interrupted attempt of it posted
        that are not this surface's (a post that landed after its process lost the turn)."""
        ...

    async def show_placeholder(self) -> None:
        """Show that the question was received and is being worked on (once per turn)."""
        ...

    async def show_status(
        self, status: RunStatus, elapsed_seconds: float, *, retrying: bool = False
    ) -> None:
        """The run's status changed (or is still the same after a long time); `retrying`:
        checking on it failed for now and is being tried again."""
        ...

    async def show_partial(self, text: str) -> bool:
        """The answer so far (Markdown), while it is being written; False if not shown
        (streaming off, or nowhere to show it), so the engine keeps showing statuses."""
        ...

    async def show_answer(self, text: str, *, note: str | None = None) -> None:
        """Replace the placeholder with the answer; `note` is a short remark shown after it."""
        ...

    async def show_error(self, message: str) -> None:
        """Replace the placeholder with a plain-language explanation of what went wrong."""
        ...


SurfaceFactory = Callable[[Turn], ReplySurface]
