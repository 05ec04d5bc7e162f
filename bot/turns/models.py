"""A turn: one user message and the reply it is owed, independent of where it came from."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class TurnSource(StrEnum):
    """How the message reached the bot; the reply surface words things accordingly."""

    MENTION = "mention"  # @Tutor in a channel: answered in the message's thread
    DIRECT_MESSAGE = "dm"  # a DM, top level or in a DM thread
    COMMAND = "command"  # /tutor <question>: a new thread in the command's channel


def new_turn_id() -> str:
    return "turn_" + uuid.uuid4().hex


@dataclass(frozen=True)
class Turn:
    """Who asked what, and where the answer goes.

    `conversation_key` names the Slack conversation (thread or top-level DM channel); every
    turn with the same key goes to the same backend conversation. `thread_ts` is where the
    reply is posted (None: top level of the channel).
    """

    conversation_key: str
    team_id: str
    channel_id: str
    thread_ts: str | None
    user_id: str
    text: str
    source: TurnSource
    response_url: str | None = None
    assistant_thread: bool = False  # a thread of Slack's AI app pane: status shown there too
    # "direct" for a "Show me the answer" turn: its mode whatever the course or learner says.
    mode_override: str | None = None
    # Slack file ids shared with the question (never their bytes: read when the run starts).
    files: tuple[str, ...] = ()
    turn_id: str = field(default_factory=new_turn_id)
    accepted_at: float = field(default_factory=time.time)  # epoch seconds it arrived

    def log_context(self) -> dict[str, str]:
        """Identifiers for log lines (never the text)."""
        return {
            "turn": self.turn_id,
            "team": self.team_id,
            "channel": self.channel_id,
            "thread": self.thread_ts or "-",
        }
