"""Stop requests: someone asked to stop a turn's run (the Stop button), kept in Redis so the
process that runs the turn sees it, whichever process received the click."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.storage.keys import Keys

STOP_TTL_SECONDS = 24 * 60 * 60


class StopRequests:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def request(self, turn_id: str) -> None:
        await self._redis.set(self._keys.stop(turn_id), "1", ex=STOP_TTL_SECONDS)

    async def requested(self, turn_id: str) -> bool:
        return bool(await self._redis.exists(self._keys.stop(turn_id)))
