"""Token usage per workspace and day, kept in Redis so a team can see what the tutor costs.

Counted from what the server reports for each run (never estimated); a backend whose server
reports nothing adds only to the turn count.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from redis.asyncio import Redis

from bot.backends.base import Usage
from bot.storage.keys import Keys

USAGE_TTL_SECONDS = 400 * 24 * 60 * 60  # a bit over a year of daily totals


def _today() -> str:
    return datetime.datetime.now(datetime.UTC).date().isoformat()


class UsageLedger:
    def __init__(self, redis: Redis, keys: Keys, today: Callable[[], str] = _today) -> None:
        self._redis = redis
        self._keys = keys
        self._today = today

    async def record(self, team_id: str, usage: Usage | None) -> None:
        """Add one turn, and its tokens when known, to today's totals of `team_id`."""
        key = self._keys.usage(self._today())
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, f"{team_id}:turns", 1)
            if usage is not None:
                pipe.hincrby(key, f"{team_id}:input_tokens", usage.input_tokens)
                pipe.hincrby(key, f"{team_id}:cached_tokens", usage.cached_tokens)
                pipe.hincrby(key, f"{team_id}:output_tokens", usage.output_tokens)
            pipe.expire(key, USAGE_TTL_SECONDS)
            await pipe.execute()

    async def totals(self, day: str) -> dict[str, int]:
        raw = await self._redis.hgetall(self._keys.usage(day))
        return {field: int(value) for field, value in raw.items()}
