"""What feedback looks like in Slack: the thumbs under every answer message (a
`context_actions` block with `feedback_buttons`), and the question a thumbs-down asks, only
for the person who clicked, with an optional text input.

The input sits in an `input` block of an ephemeral message: Slack sends its text as a
`block_actions` payload when the person presses Enter (`dispatch_action`), since a message
has no submit button. Its `block_id` names the turn; nothing in these blocks is secret.
"""

from __future__ import annotations

from bot.tutor.feedback import COMMENT_LIMIT, Rating, feedback_value, is_turn_id

Block = dict[str, object]

FEEDBACK_ACTION = "tutor_feedback"
COMMENT_ACTION = "tutor_feedback_comment"
_COMMENT_BLOCK_PREFIX = "tutor_feedback_comment:"

ASK_WHAT_WAS_WRONG = "Thanks for telling me. What was wrong with this answer? (optional)"
COMMENT_HINT = "Type what was wrong and press Enter"
THANKS = "Thanks, noted. It helps the tutor improve."
THANKS_FOR_COMMENT = "Thanks, your comment is noted."


def feedback_block(turn_id: str) -> Block:
    """Slack's feedback buttons for one turn's answer."""
    return {
        "type": "context_actions",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_ACTION,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "👍"},
                    "accessibility_label": "This answer helped",
                    "value": feedback_value(Rating.UP, turn_id),
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "👎"},
                    "accessibility_label": "This answer did not help",
                    "value": feedback_value(Rating.DOWN, turn_id),
                },
            }
        ],
    }


def comment_prompt_blocks(turn_id: str) -> list[Block]:
    """The ephemeral question after a thumbs-down: what was wrong, answered (or not) in a
    one-line input sent with Enter."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": ASK_WHAT_WAS_WRONG}},
        {
            "type": "input",
            "block_id": _COMMENT_BLOCK_PREFIX + turn_id,
            "dispatch_action": True,
            "optional": True,
            "label": {"type": "plain_text", "text": "What was wrong?"},
            "element": {
                "type": "plain_text_input",
                "action_id": COMMENT_ACTION,
                "max_length": COMMENT_LIMIT,
                "placeholder": {"type": "plain_text", "text": COMMENT_HINT},
                "dispatch_action_config": {"trigger_actions_on": ["on_enter_pressed"]},
            },
        },
    ]


def turn_of_comment_block(block_id: str) -> str | None:
    """The turn a comment input's block names; None for any other block."""
    if not block_id.startswith(_COMMENT_BLOCK_PREFIX):
        return None
    turn_id = block_id[len(_COMMENT_BLOCK_PREFIX) :]
    return turn_id if is_turn_id(turn_id) else None
