"""Files the bot uploaded to the model server for a conversation (attachments), listed in
Redis so they are deleted at the server with the conversation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.storage.keys import Keys

log = logging.getLogger(__name__)


@dataclass
class ProviderFiles:
    """Files uploaded to the model server per conversation, so they are deleted with it."""

    redis: Redis
    keys: Keys

    async def remember(self, conversation_key: str, file_id: str) -> None:
        await self.redis.sadd(self.keys.provider_files(conversation_key), file_id)

    async def of_conversation(self, conversation_key: str) -> set[str]:
        members = await self.redis.smembers(self.keys.provider_files(conversation_key))
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    async def forget_conversation(
        self, conversation_key: str, delete: Callable[[str], Awaitable[None]]
    ) -> None:
        """Delete each listed file at the model server (`delete(file_id)`), then the list.

        A file the server cannot delete now stays listed, so a later forget tries again."""
        key = self.keys.provider_files(conversation_key)
        for file_id in await self.of_conversation(conversation_key):
            try:
                await delete(file_id)
            except Exception as error:
                log.warning("uploaded file %s not deleted yet: %s", file_id, error)
                continue
            await self.redis.srem(key, file_id)
