"""The "Show me the answer" button under a guided answer (`action_id` `reveal_answer`).

Its value names the turn whose question it asks again and that turn's conversation (ids
only, no text); who asked it, and where, is kept in Redis (`bot.tutor.activity`), the
question itself only in the backend's conversation.
"""

from __future__ import annotations

from bot.tutor.feedback import is_turn_id

Block = dict[str, object]

REVEAL_ACTION = "reveal_answer"
REVEAL_LABEL = "Show me the answer"


def reveal_block(turn_id: str, conversation_key: str) -> Block:
    """An actions block with the button, placed above the feedback buttons."""
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": REVEAL_ACTION,
                "text": {"type": "plain_text", "text": REVEAL_LABEL},
                "value": reveal_value(turn_id, conversation_key),
                "accessibility_label": "Show me the full answer to this question now",
            }
        ],
    }


def reveal_value(turn_id: str, conversation_key: str) -> str:
    return f"{turn_id}|{conversation_key}"


def parse_reveal_value(value: str) -> tuple[str, str] | None:
    """(turn id, conversation key) from the button's value; None for anything else."""
    turn_id, _, conversation_key = value.partition("|")
    if not is_turn_id(turn_id) or conversation_key.count(":") < 2:
        return None
    return turn_id, conversation_key
