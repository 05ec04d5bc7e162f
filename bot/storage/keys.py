"""Every Redis key the bot uses, built in one place under one prefix.

One Redis can serve several bots (or test runs) because every key starts with the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

# How long we remember a Slack delivery, to drop Slack's retries (it retries up to 5 min later).
DELIVERY_TTL_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class Keys:
    """Builds the bot's Redis keys; `prefix` is TUTOR_REDIS_PREFIX."""

    prefix: str = "tutor:"

    def conversation(self, backend: str, conversation_key: str) -> str:
        """Slack conversation → backend conversation id (thread_…, conv_…, or a chat history id)."""
        return f"{self.prefix}conv:{backend}:{conversation_key}"

    def conversation_lock(self, backend: str, conversation_key: str) -> str:
        """Held while the backend conversation for a Slack conversation is being created."""
        return f"{self.prefix}conv-lock:{backend}:{conversation_key}"

    def event_seen(self, event_id: str) -> str:
        """Set once per Slack `event_id`: Slack's retries of that delivery are dropped."""
        return f"{self.prefix}seen:event:{event_id}"

    def message_seen(self, channel: str, ts: str) -> str:
        """Set once per Slack message: one mention arrives as `app_mention` and as `message`."""
        return f"{self.prefix}seen:msg:{channel}:{ts}"

    def assistant_id(self, name: str, model: str) -> str:
        """The assistant the bot created for these settings (assistants backend)."""
        return f"{self.prefix}assistant:{name}:{model}"

    def chat_history(self, history_id: str) -> str:
        """A chat backend conversation's messages (a Redis list of JSON entries)."""
        return f"{self.prefix}chat:history:{history_id}"

    def chat_run(self, run_id: str) -> str:
        """A chat backend run's status, answer and usage (a Redis hash)."""
        return f"{self.prefix}chat:run:{run_id}"

    def usage(self, day: str) -> str:
        """Token usage per day (a Redis hash of counters)."""
        return f"{self.prefix}usage:{day}"
