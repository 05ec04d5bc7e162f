"""Files the bot uploaded to the model server for a conversation (attachments), listed in
Redis so they are deleted at the server with the conversation (forgetting it reads the list
into its forget job: `bot.turns.forget`)."""

from __future__ import annotations

import logging
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
