"""The durable turn queue in Redis.

Each Slack conversation has a list of turn ids, answered oldest first; a Redis Stream read
by one consumer group announces "this conversation has turns waiting". A stream entry stays
pending until the conversation was drained, so the entries of a process that died are
claimed by another one (XAUTOCLAIM) and nothing accepted is ever lost. For the same reason
the stream is never cut to a length: `trim` removes only entries the group has acknowledged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.storage.keys import DELIVERY_TTL_SECONDS, TURN_TTL_SECONDS, WORKER_GROUP, Keys
from bot.turns.models import Turn
from bot.turns.records import encode_turn

log = logging.getLogger(__name__)

# Dedup, record, queue and announce in one step: a retry arriving while the first delivery
# is being handled finds the dedup keys set, and no turn is recorded without being queued.
# The same step notes the turn, its asker and the time in the conversation's index, which
# forgetting (bot.turns.forget) and the retention sweep read.
_ENQUEUE = """
for i = 1, tonumber(ARGV[1]) do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[2]) == false then return 0 end
end
local n = tonumber(ARGV[1])
redis.call('HSET', KEYS[n + 1], 'turn', ARGV[3])
redis.call('EXPIRE', KEYS[n + 1], ARGV[4])
local waiting = redis.call('RPUSH', KEYS[n + 2], ARGV[5])
redis.call('XADD', KEYS[n + 3], '*', 'conversation', ARGV[6])
redis.call('SADD', KEYS[n + 4], ARGV[5])
redis.call('SADD', KEYS[n + 5], ARGV[7])
redis.call('ZADD', KEYS[n + 6], ARGV[8], ARGV[6])
return waiting
"""
_CLAIM = """
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) == false then return 0 end
end
return 1
"""

Entry = tuple[str, str]  # (stream entry id, conversation key)


class TurnQueue:
    def __init__(self, redis: Redis, keys: Keys, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock  # the time of a question, for the retention sweep
        self._enqueue = redis.register_script(_ENQUEUE)
        self._claim = redis.register_script(_CLAIM)

    def _delivery_keys(self, delivery_id: str | None, channel: str, ts: str | None) -> list[str]:
        keys = []
        if delivery_id:
            keys.append(self._keys.event_seen(delivery_id))
        if ts:
            keys.append(self._keys.message_seen(channel, ts))
        return keys

    async def claim_delivery(self, delivery_id: str | None, channel: str, ts: str | None) -> bool:
        """Remember a delivery that starts no turn; True the first time only."""
        keys = self._delivery_keys(delivery_id, channel, ts)
        return not keys or bool(await self._claim(keys=keys, args=[DELIVERY_TTL_SECONDS]))

    async def enqueue(
        self, turn: Turn, delivery_id: str | None, message_ts: str | None
    ) -> int | None:
        """Record and queue `turn` unless its delivery was seen before.

        Returns how many earlier turns of its conversation wait before it (None: a repeat).
        """
        seen = self._delivery_keys(delivery_id, turn.channel_id, message_ts)
        keys = [
            *seen,
            self._keys.turn(turn.turn_id),
            self._keys.conversation_queue(turn.conversation_key),
            self._keys.ready_stream,
            self._keys.conversation_turns(turn.conversation_key),
            self._keys.conversation_askers(turn.conversation_key),
            self._keys.activity,
        ]
        args = [
            len(seen),
            DELIVERY_TTL_SECONDS,
            encode_turn(turn),
            TURN_TTL_SECONDS,
            turn.turn_id,
            turn.conversation_key,
            turn.user_id,
            f"{self._clock():.3f}",
        ]
        waiting = int(await self._enqueue(keys=keys, args=args))
        return waiting - 1 if waiting else None

    async def announce(self, conversation_key: str) -> None:
        """Say again that this conversation has turns waiting (after handing it back)."""
        await self._redis.xadd(self._keys.ready_stream, {"conversation": conversation_key})

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(
                self._keys.ready_stream, WORKER_GROUP, id="0", mkstream=True
            )
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def read_new(self, consumer: str, count: int, block_ms: int) -> list[Entry]:
        """Entries nobody has read yet; waits up to `block_ms` for one."""
        reply = await self._redis.xreadgroup(
            WORKER_GROUP, consumer, {self._keys.ready_stream: ">"}, count=count, block=block_ms
        )
        return _entries(reply[0][1]) if reply else []

    async def read_own_pending(
        self, consumer: str, count: int, after: str = "0"
    ) -> tuple[list[Entry], str | None]:
        """Entries this consumer read before and never acknowledged (a restart under one name),
        up to `count` after id `after`; and the id to read on from (None: that was all)."""
        reply = await self._redis.xreadgroup(
            WORKER_GROUP, consumer, {self._keys.ready_stream: after}, count=count
        )
        raw = reply[0][1] if reply else []
        return _entries(raw), (raw[-1][0] if len(raw) == count else None)

    async def claim_stale(
        self, consumer: str, min_idle_ms: int, count: int, start: str = "0-0"
    ) -> tuple[list[Entry], str]:
        """Take over up to `count` entries left pending for `min_idle_ms` (their consumer died,
        or is this one: claiming resets an entry's idle time), searching from id `start`;
        and where the search goes on ("0-0": it went through every pending entry)."""
        reply = await self._redis.xautoclaim(
            self._keys.ready_stream, WORKER_GROUP, consumer, min_idle_ms, start, count=count
        )
        return _entries(reply[1]), str(reply[0])

    async def touch(self, consumer: str, entry_id: str) -> None:
        """Reset a pending entry's idle time: it is being worked on, so nobody claims it."""
        await self._redis.xclaim(
            self._keys.ready_stream, WORKER_GROUP, consumer, 0, [entry_id], justid=True
        )

    async def ack(self, entry_id: str) -> None:
        await self._redis.xack(self._keys.ready_stream, WORKER_GROUP, entry_id)

    async def trim(self) -> int:
        """Remove the entries every consumer has acknowledged; the number removed.

        Everything older than the oldest pending entry was acknowledged, and so was, when
        nothing is pending, everything up to the last entry handed out. Both are read in one
        transaction; entries below that mark cannot become pending again, so the trim after
        it is safe whatever happens in between.
        """
        stream = self._keys.ready_stream
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xinfo_groups(stream)
            pipe.xpending(stream, WORKER_GROUP)
            try:
                groups, pending = await pipe.execute()
            except ResponseError:  # no stream or no group yet: nothing to trim
                return 0
        if pending["pending"]:
            keep_from = str(pending["min"])
        else:
            delivered = next(g["last-delivered-id"] for g in groups if g["name"] == WORKER_GROUP)
            keep_from = _next_id(str(delivered))
        return int(await self._redis.xtrim(stream, minid=keep_from, approximate=False))

    async def head(self, conversation_key: str) -> str | None:
        """The oldest turn id waiting in this conversation."""
        return await self._redis.lindex(self._keys.conversation_queue(conversation_key), 0)

    async def first(self, conversation_key: str, count: int) -> list[str]:
        """The ids of the oldest `count` turns waiting in this conversation."""
        if count <= 0:
            return []
        return list(
            await self._redis.lrange(self._keys.conversation_queue(conversation_key), 0, count - 1)
        )

    async def remove(self, conversation_key: str, turn_id: str) -> None:
        await self._redis.lrem(self._keys.conversation_queue(conversation_key), 1, turn_id)

    async def waiting(self, conversation_key: str) -> int:
        return int(await self._redis.llen(self._keys.conversation_queue(conversation_key)))

    async def unfinished(self) -> int:
        """Entries not yet read or not yet acknowledged by the group (0 when all is answered)."""
        groups = await self._redis.xinfo_groups(self._keys.ready_stream)
        for group in groups:
            if group["name"] == WORKER_GROUP:
                return int(group["pending"]) + int(group.get("lag") or 0)
        return 0


def _entries(raw: list[tuple[str, dict[str, str]]] | None) -> list[Entry]:
    return [(entry_id, fields["conversation"]) for entry_id, fields in raw or [] if fields]


def _next_id(entry_id: str) -> str:
    """The smallest stream id above `entry_id` ("ms-seq")."""
    milliseconds, sequence = entry_id.split("-")
    return f"{milliseconds}-{int(sequence) + 1}"
