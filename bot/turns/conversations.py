"""The map from a Slack conversation to its backend conversation, kept in Redis.

There is no way to list conversations on the server side, so this map is the only link
between a Slack thread and its history; it survives restarts because Redis does.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from bot.storage.keys import Keys

log = logging.getLogger(__name__)


class ConversationStore:
    """Finds or creates the backend conversation of a Slack conversation."""

    def __init__(self, redis: Redis, keys: Keys, backend_name: str) -> None:
        self._redis = redis
        self._keys = keys
        self._backend = backend_name

    async def find(self, conversation_key: str) -> str | None:
        """The backend conversation id, or None when this Slack conversation is new."""
        return await self._redis.get(self._keys.conversation(self._backend, conversation_key))

    async def find_or_create(
        self, conversation_key: str, create: Callable[[str], Awaitable[str]]
    ) -> str:
        """The existing id, or a new one from `create(conversation_key)`, stored.

        Only the worker holding the conversation's lease gets here, so two creations at
        once are not expected; should it happen anyway, the first id stored wins and is
        what every caller gets (the other server conversation stays unused). No lock: a
        lock left by a crashed process would stall the conversation.
        """
        existing = await self.find(conversation_key)
        if existing:
            return existing
        conversation_id = await create(conversation_key)
        key = self._keys.conversation(self._backend, conversation_key)
        if await self._redis.set(key, conversation_id, nx=True):
            log.info("new %s conversation %s", self._backend, conversation_id)
            return conversation_id
        return str(await self._redis.get(key))
