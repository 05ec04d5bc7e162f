"""What the "Thinking…" placeholder says and carries: status words, the Stop button, the
metadata that ties it to its turn, and the header of a /tutor thread root."""

from __future__ import annotations

from bot.backends.base import RunStatus
from bot.slack.render import escape_mrkdwn
from bot.turns.models import Turn
from bot.turns.surface import Waiting

THINKING = "_Thinking…_"
# A placeholder shown as soon as a question arrives, before a worker is free for it.
WAITING_TEXT: dict[Waiting, str] = {
    Waiting.BEHIND: "_Thinking… (I'll answer your earlier question first)_",
    Waiting.BUSY: "_Thinking… (lots of questions right now; yours is in line)_",
}
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


def placeholder_metadata(turn: Turn) -> dict[str, object]:
    return {"event_type": PLACEHOLDER_EVENT, "event_payload": {"turn_id": turn.turn_id}}


def turn_of_message(message: dict[str, object]) -> str | None:
    """The turn id a message's metadata names, if it is one of our placeholders."""
    metadata = message.get("metadata")
    payload = metadata.get("event_payload") if isinstance(metadata, dict) else None
    turn_id = payload.get("turn_id") if isinstance(payload, dict) else None
    return turn_id if isinstance(turn_id, str) else None


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
