"""Slack's AI app surfaces: which DM threads are assistant threads, and what to suggest.

Legacy `assistant_view` apps get `assistant_thread_started` for each new thread; the bot
remembers those threads (Redis) to title them from the first question and to show its
status there. New `agent_view` apps get `app_home_opened` on the Messages tab instead.
"""

from __future__ import annotations

from redis.asyncio import Redis

from bot.storage.keys import Keys

THREAD_TTL_SECONDS = 90 * 24 * 60 * 60
TITLE_LENGTH = 60
PROMPTS_TITLE = "Try asking"
SUGGESTED_PROMPTS: list[dict[str, str]] = [
    {"title": "Who was…?", "message": "Who was Ibn Battuta, and why does he matter?"},
    {"title": "Explain a turning point", "message": "Why was the printing press a turning point?"},
    {"title": "Compare", "message": "Compare the Roman and Han empires in three sentences."},
    {
        "title": "Quiz me",
        "message": "Ask me three questions about the French Revolution, one at a time.",
    },
]


def thread_title(question: str) -> str:
    """A short title for an assistant thread, from its first question."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


class AssistantThreads:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def remember(self, channel_id: str, thread_ts: str) -> None:
        key = self._keys.assistant_thread(channel_id, thread_ts)
        await self._redis.set(key, "1", ex=THREAD_TTL_SECONDS)

    async def is_assistant_thread(self, channel_id: str, thread_ts: str | None) -> bool:
        if not thread_ts:
            return False
        return bool(await self._redis.exists(self._keys.assistant_thread(channel_id, thread_ts)))
