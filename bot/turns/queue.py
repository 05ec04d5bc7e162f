"""The durable turn queue in Redis.

Each Slack conversation has a list of turn ids, answered oldest first; a Redis Stream read
by one consumer group announces "this conversation has turns waiting". A stream entry stays
pending until the conversation was drained, so the entries of a process that died are
claimed by another one (XAUTOCLAIM) and nothing accepted is ever lost. For the same reason
the stream is never cut to a length: `trim` removes only entries the group has acknowledged.

Recording a turn also checks the counted limits (bot/turns/guards.py) in the same script:
questions per person per minute, and questions waiting per conversation and per person. What
each person has waiting is a sorted set of their turn ids, added to when a turn is recorded
and removed from with the turn (`remove`), in one step each, so the count is exact and cannot
drift; an id whose removal was never told (its record lost) stops counting after an hour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.storage.keys import DELIVERY_TTL_SECONDS, TURN_TTL_SECONDS, WORKER_GROUP, Keys
from bot.turns.guards import Limits, Refusal, Refused
from bot.turns.models import Turn
from bot.turns.records import encode_turn

log = logging.getLogger(__name__)

# Dedup, check the limits, record, queue and announce in one step: a retry arriving while
# the first delivery is being handled finds the dedup keys set, no turn is recorded without
# being queued, and a refused question leaves only its dedup keys (a redelivery of it is a
# repeat, dropped without a word).
# The same step notes the turn, its asker and the time in the conversation's index, which
# forgetting (bot.turns.forget) and the retention sweep read.
# KEYS: the n dedup keys, the turn, the conversation's queue, the ready stream, the asker's
# waiting turns and the asker's questions of the last minute, the conversation's turns and
# askers, the activity index.
# ARGV: n, dedup ttl, the encoded turn, turn ttl, turn id, conversation key, now (ms),
# the limits (waiting per conversation, waiting per person, per person per minute; 0: off),
# how long (ms) an id counts as waiting at most, the asker, now (seconds, for the index).
# Returns {1, turns waiting in the conversation}, {0} for a repeat, or {-1, reason, ms until
# the asker may ask again (rate)}.
_ENQUEUE = """
local n = tonumber(ARGV[1])
for i = 1, n do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[2]) == false then return {0} end
end
local queue, waiting_of_user, recent = KEYS[n + 2], KEYS[n + 4], KEYS[n + 5]
local now = tonumber(ARGV[7])
local per_conversation = tonumber(ARGV[8])
local per_user = tonumber(ARGV[9])
local per_minute = tonumber(ARGV[10])
local counts_for = tonumber(ARGV[11])
if per_conversation > 0 and redis.call('LLEN', queue) >= per_conversation then
  return {-1, 'conversation_full', 0}
end
redis.call('ZREMRANGEBYSCORE', waiting_of_user, '-inf', now - counts_for)
if per_user > 0 and redis.call('ZCARD', waiting_of_user) >= per_user then
  return {-1, 'user_full', 0}
end
if per_minute > 0 then
  redis.call('ZREMRANGEBYSCORE', recent, '-inf', now - 60000)
  if redis.call('ZCARD', recent) >= per_minute then
    local oldest = redis.call('ZRANGE', recent, 0, 0, 'WITHSCORES')
    return {-1, 'rate', tonumber(oldest[2]) + 60000 - now}
  end
  redis.call('ZADD', recent, now, ARGV[5])
  redis.call('PEXPIRE', recent, 60000)
end
redis.call('HSET', KEYS[n + 1], 'turn', ARGV[3])
redis.call('EXPIRE', KEYS[n + 1], ARGV[4])
local waiting = redis.call('RPUSH', queue, ARGV[5])
redis.call('XADD', KEYS[n + 3], '*', 'conversation', ARGV[6])
redis.call('ZADD', waiting_of_user, now, ARGV[5])
redis.call('PEXPIRE', waiting_of_user, counts_for)
redis.call('SADD', KEYS[n + 6], ARGV[5])
redis.call('SADD', KEYS[n + 7], ARGV[12])
redis.call('ZADD', KEYS[n + 8], ARGV[13], ARGV[6])
return {1, waiting}
"""
NO_LIMITS = Limits()
_CLAIM = """
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) == false then return 0 end
end
return 1
"""

Entry = tuple[str, str]  # (stream entry id, conversation key)

# A turn id counts as waiting for its asker at most this long: a turn taken off its queue
# without `remove` being told who asked (its record was lost) stops counting by then.
WAITING_COUNTS_SECONDS = 60 * 60


class TurnQueue:
    def __init__(self, redis: Redis, keys: Keys, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock  # wall time, shared by the processes on one Redis
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
        self,
        turn: Turn,
        delivery_id: str | None,
        message_ts: str | None,
        limits: Limits = NO_LIMITS,
    ) -> int | Refused | None:
        """Record and queue `turn` unless its delivery was seen before or `limits` hold it back.

        Returns how many earlier turns of its conversation wait before it, None for a repeat,
        or why it was refused (nothing recorded; its delivery counts as seen).
        """
        seen = self._delivery_keys(delivery_id, turn.channel_id, message_ts)
        keys = [
            *seen,
            self._keys.turn(turn.turn_id),
            self._keys.conversation_queue(turn.conversation_key),
            self._keys.ready_stream,
            self._keys.user_queued(turn.team_id, turn.user_id),
            self._keys.user_recent(turn.team_id, turn.user_id),
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
            int(self._clock() * 1000),
            limits.queued_per_conversation,
            limits.queued_per_user,
            limits.per_user_per_minute,
            WAITING_COUNTS_SECONDS * 1000,
            turn.user_id,
            f"{self._clock():.3f}",
        ]
        verdict, *details = await self._enqueue(keys=keys, args=args)
        if verdict == 0:
            return None
        if verdict < 0:
            reason, retry_ms = details
            return limits.refused(Refusal(reason), retry_after=max(0, int(retry_ms)) / 1000)
        return int(details[0]) - 1

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

    async def remove(self, conversation_key: str, turn_id: str, turn: Turn | None = None) -> None:
        """Take a turn off its conversation's queue (it is over, however it ended) and, with
        `turn` known, off what its asker has waiting, in one step."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lrem(self._keys.conversation_queue(conversation_key), 1, turn_id)
            if turn is not None:
                pipe.zrem(self._keys.user_queued(turn.team_id, turn.user_id), turn_id)
            await pipe.execute()

    async def waiting_for(self, team_id: str, user_id: str) -> int:
        """How many of this person's questions are not answered yet."""
        key = self._keys.user_queued(team_id, user_id)
        oldest_counted = (self._clock() - WAITING_COUNTS_SECONDS) * 1000
        return int(await self._redis.zcount(key, oldest_counted, "+inf"))

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
