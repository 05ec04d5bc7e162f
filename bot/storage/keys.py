"""Every Redis key the bot uses, built in one place under one prefix.

One Redis can serve several bots (or test runs) because every key starts with the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

# How long we remember a Slack delivery, to drop Slack's retries (it retries up to 5 min later).
DELIVERY_TTL_SECONDS = 24 * 60 * 60
# How long a turn's record is kept after it was accepted (long past any retry or recovery).
TURN_TTL_SECONDS = 7 * 24 * 60 * 60
# The consumer group every bot process reads the turn stream with.
WORKER_GROUP = "workers"


@dataclass(frozen=True)
class Keys:
    """Builds the bot's Redis keys; `prefix` is TUTOR_REDIS_PREFIX."""

    prefix: str = "tutor:"

    def conversation(self, backend: str, conversation_key: str) -> str:
        """Slack conversation → backend conversation id (thread_…, conv_…, or a chat history id)."""
        return f"{self.prefix}conv:{backend}:{conversation_key}"

    def event_seen(self, event_id: str) -> str:
        """Set once per Slack `event_id`: Slack's retries of that delivery are dropped."""
        return f"{self.prefix}seen:event:{event_id}"

    def message_seen(self, channel: str, ts: str) -> str:
        """Set once per Slack message: one mention arrives as `app_mention` and as `message`."""
        return f"{self.prefix}seen:msg:{channel}:{ts}"

    def assistant_id(self, name: str, model: str) -> str:
        """The assistant the bot created for these settings (assistants backend)."""
        return f"{self.prefix}assistant:{name}:{model}"

    def assistant_creation(self, name: str, model: str) -> str:
        """A lock held by the one process creating that assistant, so only one does."""
        return f"{self.prefix}assistant-creating:{name}:{model}"

    def chat_history(self, history_id: str) -> str:
        """A chat backend conversation's messages (a Redis list of JSON entries)."""
        return f"{self.prefix}chat:history:{history_id}"

    def chat_run(self, run_id: str) -> str:
        """A chat backend run's status, answer and usage (a Redis hash)."""
        return f"{self.prefix}chat:run:{run_id}"

    def turn(self, turn_id: str) -> str:
        """A turn's record: the turn itself and each step done so far (a Redis hash)."""
        return f"{self.prefix}turn:{turn_id}"

    def conversation_queue(self, conversation_key: str) -> str:
        """The turns of one Slack conversation still to answer, oldest first (a Redis list)."""
        return f"{self.prefix}queue:{conversation_key}"

    def conversation_lease(self, conversation_key: str) -> str:
        """Held by the one process answering this conversation's turns right now."""
        return f"{self.prefix}lease:{conversation_key}"

    @property
    def ready_stream(self) -> str:
        """A Redis Stream of "this conversation has turns waiting", read by a consumer group."""
        return f"{self.prefix}ready"

    def chat_turn_run(self, turn_id: str) -> str:
        """The chat run started for a turn, so a resumed turn can find it."""
        return f"{self.prefix}chat:turn-run:{turn_id}"

    def assistant_thread(self, channel_id: str, thread_ts: str) -> str:
        """Set for DM threads opened in Slack's assistant pane (legacy assistant_view)."""
        return f"{self.prefix}assistant-thread:{channel_id}:{thread_ts}"

    def command_thread(self, thread_key: str) -> str:
        """The conversation a /tutor thread root continues (its key was made before the root)."""
        return f"{self.prefix}command-thread:{thread_key}"

    def stop(self, turn_id: str) -> str:
        """Set when someone pressed Stop on this turn's placeholder."""
        return f"{self.prefix}stop:{turn_id}"

    def usage(self, day: str) -> str:
        """Token usage of one day (UTC): a hash of `<team>:turns`, `<team>:input_tokens`…"""
        return f"{self.prefix}usage:{day}"

    def conversation_usage(self, conversation_key: str) -> str:
        """Token totals of one Slack conversation (a hash); deleted when it is forgotten."""
        return f"{self.prefix}usage:conversation:{conversation_key}"

    def edit_budget(self, team_id: str) -> str:
        """A workspace's budget of placeholder status edits, shared by every process (a hash:
        tokens, when last refilled, paused until after a 429)."""
        return f"{self.prefix}edit-budget:{team_id}"

    def user_queued(self, team_id: str, user_id: str) -> str:
        """The turns one person asked that are not answered yet (a sorted set of turn ids,
        scored by when each was accepted): what TUTOR_MAX_QUEUED_PER_USER counts."""
        return f"{self.prefix}queued:{team_id}:{user_id}"

    def user_recent(self, team_id: str, user_id: str) -> str:
        """The questions one person asked in the last minute (a sorted set of turn ids,
        scored by when each was accepted): what TUTOR_USER_RATE counts."""
        return f"{self.prefix}recent:{team_id}:{user_id}"

    def refusal_notice(self, team_id: str, user_id: str, reason: str) -> str:
        """Set for a minute once a person was told a question was refused for `reason`."""
        return f"{self.prefix}refusal-notice:{team_id}:{user_id}:{reason}"
