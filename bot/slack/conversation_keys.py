"""Which Slack messages form one conversation, and where a reply goes.

A channel thread is one conversation; all top-level DMs of a DM channel are one; a DM
thread is its own. The key is stable across restarts, so the Redis map finds the backend
conversation again.
"""

from __future__ import annotations

import re
from typing import Any

TOP_LEVEL = "top"


def thread_key(team_id: str, channel_id: str, thread_ts: str) -> str:
    return f"{team_id}:{channel_id}:{thread_ts}"


def mention_place(team_id: str, event: dict[str, Any]) -> tuple[str, str]:
    """(conversation key, reply thread) for an @mention: the thread of the message."""
    thread_ts = event.get("thread_ts") or event["ts"]
    return thread_key(team_id, event["channel"], thread_ts), thread_ts


def direct_message_place(team_id: str, event: dict[str, Any]) -> tuple[str, str | None]:
    """(conversation key, reply thread) for a DM: top level stays top level."""
    thread_ts = event.get("thread_ts")
    if thread_ts and thread_ts != event.get("ts"):
        return thread_key(team_id, event["channel"], thread_ts), thread_ts
    return thread_key(team_id, event["channel"], TOP_LEVEL), None


def without_mention(text: str, bot_user_id: str | None) -> str:
    """The user's text with mentions of the bot itself removed (`<@U123>`, `<@U123|tutor>`)."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()
