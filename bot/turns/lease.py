"""One process at a time per conversation: a lease in Redis, renewed while it works.

Two runs on one conversation would collide, and answers must come in order; a lease (rather
than a lock held forever) expires by itself when its holder dies, so another process can
take the conversation over.
"""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from bot.storage.keys import Keys

# Renew our lease; one that expired while Redis was away (nobody took it) is ours again.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ConversationLeases:
    def __init__(self, redis: Redis, keys: Keys, *, seconds: float) -> None:
        self._redis = redis
        self._keys = keys
        self.milliseconds = int(seconds * 1000)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, conversation_key: str) -> str | None:
        """A token proving we hold the conversation, or None if someone else does."""
        token = uuid.uuid4().hex
        key = self._keys.conversation_lease(conversation_key)
        if await self._redis.set(key, token, nx=True, px=self.milliseconds):
            return token
        return None

    async def renew(self, conversation_key: str, token: str) -> bool:
        """Extend our lease (or take it back if it expired untaken, say while Redis was
        away); False if it was lost to another process."""
        key = self._keys.conversation_lease(conversation_key)
        return bool(await self._renew(keys=[key], args=[token, self.milliseconds]))

    async def release(self, conversation_key: str, token: str) -> None:
        key = self._keys.conversation_lease(conversation_key)
        await self._release(keys=[key], args=[token])
