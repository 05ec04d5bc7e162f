"""Dropping Slack deliveries we have already accepted.

Slack retries a delivery with the same `event_id`, and one @mention can arrive twice with
different ids (`app_mention` and `message`), so both the event id and the message's
(channel, ts) are remembered. `SET NX` makes "first one wins" atomic across processes.
"""

from __future__ import annotations

from redis.asyncio import Redis

from bot.storage.keys import DELIVERY_TTL_SECONDS, Keys


class DeliveryDeduplicator:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def first_delivery(self, event_id: str | None, channel: str, ts: str | None) -> bool:
        """True exactly once per event id and per message; False for every repeat.

        Raises redis errors: a delivery we cannot check is not accepted.
        """
        if event_id and not await self._claim(self._keys.event_seen(event_id)):
            return False
        if ts and not await self._claim(self._keys.message_seen(channel, ts)):
            return False
        return True

    async def _claim(self, key: str) -> bool:
        return bool(await self._redis.set(key, "1", nx=True, ex=DELIVERY_TTL_SECONDS))
