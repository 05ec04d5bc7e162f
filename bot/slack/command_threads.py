"""The threads that /tutor commands started, and the conversation each one continues.

A command's turn is recorded before Slack gets its ack, before its thread root exists, so
its conversation key names the command. Once the root is posted, replies in its thread are
mapped back to that key: they join the same queue and the same backend conversation.
"""

from __future__ import annotations

from redis.asyncio import Redis

from bot.slack.conversation_keys import thread_key
from bot.storage.keys import Keys

THREAD_TTL_SECONDS = 90 * 24 * 60 * 60


def command_key(team_id: str, channel_id: str, turn_id: str) -> str:
    """The conversation key of the thread a /tutor command starts."""
    return thread_key(team_id, channel_id, f"command-{turn_id}")


class CommandThreads:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def link(self, team_id: str, channel_id: str, root_ts: str, key: str) -> None:
        """Replies in the thread of `root_ts` belong to the conversation `key`; the alias is
        listed among the conversation's links, so that forgetting it deletes the alias."""
        alias = self._keys.command_thread(thread_key(team_id, channel_id, root_ts))
        links = self._keys.conversation_links(key)
        # Listed first, then set (two slots on Redis Cluster): an alias is never without
        # its listing, which forgetting reads.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(links, alias)
            pipe.expire(links, THREAD_TTL_SECONDS)
            await pipe.execute()
        await self._redis.set(alias, key, ex=THREAD_TTL_SECONDS)

    async def resolve(self, key: str) -> str:
        """The conversation a thread's messages belong to: a command's, or the thread's own."""
        return await self._redis.get(self._keys.command_thread(key)) or key
