"""The durable turn queue in Redis.

Each Slack conversation has a list of turn ids, answered oldest first; Redis Streams read by
one consumer group announce "this conversation has turns waiting". A stream entry stays
pending until the conversation was drained, so the entries of a process that died are
claimed by another one (XAUTOCLAIM) and nothing accepted is ever lost. For the same reason
a stream is never cut to a length: `trim` removes only entries the group has acknowledged.

The streams are sharded (TUTOR_REDIS_SHARDS): a conversation is announced on the stream of
its shard (`Keys.shard_of`), and every worker reads every shard. On Redis Cluster each shard
is one hash slot holding its stream, its conversations' queues and the markers of the
deliveries recorded into them, so no node carries the whole queue and recording stays one
atomic script.

Recording a turn also checks the counted limits (bot/turns/guards.py): questions per person
per minute, and questions waiting per conversation and per person. What each person has
waiting is a sorted set of their turn ids, added to when a turn is recorded and removed from
with the turn (`remove`), so the count is exact; an id whose removal was never told (its
record lost, or a process died between the two steps below) stops counting after an hour.

A person's counts live in their own slot, so recording is two steps (two round trips):
1. reserve the person's place (their limits; refused: nothing changed) while writing the
   turn's record, which is useless until queued;
2. in the conversation's slot, at once: drop a repeated delivery (first wins), check the
   conversation's limit, queue the turn and announce it.
When step 2 queues nothing (a repeat, a full conversation), the reservation and the record
are taken back. A crash between the steps leaves a record nobody queued (it expires) and
a reservation that counts for an hour at most; never a turn queued without its record.
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

# Step 1: reserve a place among what the asker has waiting and asked this minute.
# KEYS: the asker's waiting turns, the asker's questions of the last minute.
# ARGV: turn id, now (ms), waiting per person, per person per minute (0: off), how long (ms)
# an id counts as waiting at most.
# Returns {1} or {-1, reason, ms until the asker may ask again (rate)}.
_RESERVE = """
local waiting_of_user, recent = KEYS[1], KEYS[2]
local turn_id, now = ARGV[1], tonumber(ARGV[2])
local per_user, per_minute, counts_for = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
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
  redis.call('ZADD', recent, now, turn_id)
  redis.call('PEXPIRE', recent, 60000)
end
redis.call('ZADD', waiting_of_user, now, turn_id)
redis.call('PEXPIRE', waiting_of_user, counts_for)
return {1}
"""
# Step 2, in the conversation's slot: dedup, the conversation's limit, queue and announce.
# A marker holds the turn that set it: when the client sends the script again (its reply was
# lost to a dropped connection, and redis-py retries), it finds its own turn queued, not a
# repeat (which would take back the record of a queued turn).
# It also notes the turn and its asker in the conversation's index, which forgetting
# (bot.turns.forget) reads.
# KEYS: the n dedup keys, the conversation's queue, the ready stream of its shard, the
# conversation's turns and askers.
# ARGV: n, dedup ttl, turn id, conversation key, waiting per conversation (0: off), asker.
# Returns {1, turns waiting in the conversation up to this one}, {0} for a repeat, or
# {-1, 'conversation_full', 0}.
_QUEUE = """
local n = tonumber(ARGV[1])
local queue = KEYS[n + 1]
for i = 1, n do
  if redis.call('SET', KEYS[i], ARGV[3], 'NX', 'EX', ARGV[2]) == false then
    if redis.call('GET', KEYS[i]) == ARGV[3] then
      local at = redis.call('LPOS', queue, ARGV[3])
      return {1, (at or 0) + 1}
    end
    return {0}
  end
end
local per_conversation = tonumber(ARGV[5])
if per_conversation > 0 and redis.call('LLEN', queue) >= per_conversation then
  return {-1, 'conversation_full', 0}
end
local waiting = redis.call('RPUSH', queue, ARGV[3])
redis.call('XADD', KEYS[n + 2], '*', 'conversation', ARGV[4])
redis.call('SADD', KEYS[n + 3], ARGV[3])
redis.call('SADD', KEYS[n + 4], ARGV[6])
return {1, waiting}
"""
NO_LIMITS = Limits()
_CLAIM = """
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) == false then return 0 end
end
return 1
"""

Entry = tuple[str, str]  # (stream entry id, conversation key); the key names its shard

# A turn id counts as waiting for its asker at most this long: a turn taken off its queue
# without `remove` being told who asked (its record was lost) stops counting by then.
WAITING_COUNTS_SECONDS = 60 * 60


class TurnQueue:
    def __init__(self, redis: Redis, keys: Keys, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock  # wall time, shared by the processes on one Redis
        self._queue = redis.register_script(_QUEUE)
        self._claim = redis.register_script(_CLAIM)

    @property
    def shards(self) -> range:
        return range(self._keys.shards)

    def _delivery_keys(
        self, delivery_id: str | None, channel: str, ts: str | None, conversation_key: str | None
    ) -> list[str]:
        keys = []
        if delivery_id:
            keys.append(self._keys.event_seen(delivery_id, conversation_key))
        if ts:
            keys.append(self._keys.message_seen(channel, ts, conversation_key))
        return keys

    async def message_recorded(self, channel: str, ts: str, conversation_key: str) -> bool:
        """Whether a message (by its channel and ts) was recorded, by any delivery of it."""
        return bool(
            await self._redis.exists(self._keys.message_seen(channel, ts, conversation_key))
        )

    async def claim_delivery(
        self,
        delivery_id: str | None,
        channel: str,
        ts: str | None,
        conversation_key: str | None = None,
    ) -> bool:
        """Remember a delivery that starts no turn; True the first time only. With the
        conversation it names, it is the same marker `enqueue` sets for that delivery."""
        keys = self._delivery_keys(delivery_id, channel, ts, conversation_key)
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
        seen = self._delivery_keys(delivery_id, turn.channel_id, message_ts, turn.conversation_key)
        record = self._keys.turn(turn.turn_id)
        mine = [
            self._keys.user_queued(turn.team_id, turn.user_id),
            self._keys.user_recent(turn.team_id, turn.user_id),
        ]
        now_ms = int(self._clock() * 1000)
        # Step 1: the record and the reservation, on their own nodes, in one round trip; the
        # conversation's last activity too (for the retention sweep; a question refused below
        # only puts its sweep off).
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(record, "turn", encode_turn(turn))
            pipe.expire(record, TURN_TTL_SECONDS)
            pipe.zadd(self._keys.activity, {turn.conversation_key: self._clock()})
            pipe.eval(
                _RESERVE,
                len(mine),
                *mine,
                turn.turn_id,
                now_ms,
                limits.queued_per_user,
                limits.per_user_per_minute,
                WAITING_COUNTS_SECONDS * 1000,
            )
            *_, (reserved, *refusal) = await pipe.execute()
        if reserved < 0:
            await self._take_back(record, mine, turn.turn_id)
            if not await self.claim_delivery(
                delivery_id, turn.channel_id, message_ts, turn.conversation_key
            ):
                return None  # a repeat of a delivery taken before: not refused twice
            reason, retry_ms = refusal
            return limits.refused(Refusal(reason), retry_after=max(0, int(retry_ms)) / 1000)
        # Step 2: the conversation's slot.
        verdict, *details = await self._queue(
            keys=[
                *seen,
                self._keys.conversation_queue(turn.conversation_key),
                self._keys.ready_stream_of(turn.conversation_key),
                self._keys.conversation_turns(turn.conversation_key),
                self._keys.conversation_askers(turn.conversation_key),
            ],
            args=[
                len(seen),
                DELIVERY_TTL_SECONDS,
                turn.turn_id,
                turn.conversation_key,
                limits.queued_per_conversation,
                turn.user_id,
            ],
        )
        if verdict <= 0:
            await self._take_back(record, mine, turn.turn_id)
        if verdict == 0:
            return None
        if verdict < 0:
            reason, retry_ms = details
            return limits.refused(Refusal(reason), retry_after=max(0, int(retry_ms)) / 1000)
        return int(details[0]) - 1

    async def _take_back(self, record: str, mine: list[str], turn_id: str) -> None:
        """Undo step 1 for a turn that was not queued: its record and its reservation."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(record)
            for key in mine:
                pipe.zrem(key, turn_id)
            await pipe.execute()

    async def announce(self, conversation_key: str) -> None:
        """Say again that this conversation has turns waiting (after handing it back)."""
        await self._redis.xadd(
            self._keys.ready_stream_of(conversation_key), {"conversation": conversation_key}
        )

    async def ensure_group(self) -> None:
        """Create the consumer group on every shard's stream (idempotent)."""
        for shard in self.shards:
            try:
                await self._redis.xgroup_create(
                    self._keys.ready_stream(shard), WORKER_GROUP, id="0", mkstream=True
                )
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    async def read_new(
        self, consumer: str, count: int, block_ms: int, shard: int = 0
    ) -> list[Entry]:
        """Entries of `shard` nobody has read yet; waits up to `block_ms` for one."""
        stream = self._keys.ready_stream(shard)
        reply = await self._redis.xreadgroup(
            WORKER_GROUP, consumer, {stream: ">"}, count=count, block=block_ms
        )
        return _entries(reply[0][1]) if reply else []

    async def read_own_pending(
        self, consumer: str, count: int, after: str = "0", shard: int = 0
    ) -> tuple[list[Entry], str | None]:
        """Entries of `shard` this consumer read before and never acknowledged (a restart
        under one name), up to `count` after id `after`; and the id to read on from (None:
        that was all)."""
        stream = self._keys.ready_stream(shard)
        reply = await self._redis.xreadgroup(WORKER_GROUP, consumer, {stream: after}, count=count)
        raw = reply[0][1] if reply else []
        return _entries(raw), (raw[-1][0] if len(raw) == count else None)

    async def claim_stale(
        self, consumer: str, min_idle_ms: int, count: int, start: str = "0-0", shard: int = 0
    ) -> tuple[list[Entry], str]:
        """Take over up to `count` entries of `shard` left pending for `min_idle_ms` (their
        consumer died, or is this one: claiming resets an entry's idle time), searching from
        id `start`; and where the search goes on ("0-0": it went through every one)."""
        reply = await self._redis.xautoclaim(
            self._keys.ready_stream(shard), WORKER_GROUP, consumer, min_idle_ms, start, count=count
        )
        return _entries(reply[1]), str(reply[0])

    async def own_pending_ids(self, consumer: str, count: int, shard: int = 0) -> list[str]:
        """The ids of up to `count` entries of `shard` delivered to this consumer and not
        acknowledged, oldest first (read only: their idle times are left as they are)."""
        pending = await self._redis.xpending_range(
            self._keys.ready_stream(shard), WORKER_GROUP, "-", "+", count, consumername=consumer
        )
        return [str(item["message_id"]) for item in pending]

    async def take_back(self, consumer: str, entry_ids: list[str], shard: int = 0) -> list[Entry]:
        """This consumer's own pending entries `entry_ids`, their idle times reset (being
        worked on now); those trimmed from the stream meanwhile are not returned."""
        if not entry_ids:
            return []
        reply = await self._redis.xclaim(
            self._keys.ready_stream(shard), WORKER_GROUP, consumer, 0, entry_ids
        )
        return _entries(reply)

    async def touch(self, consumer: str, entry: Entry) -> None:
        """Reset a pending entry's idle time: it is being worked on, so nobody claims it."""
        entry_id, conversation_key = entry
        await self._redis.xclaim(
            self._keys.ready_stream_of(conversation_key),
            WORKER_GROUP,
            consumer,
            0,
            [entry_id],
            justid=True,
        )

    async def ack(self, entry: Entry) -> None:
        entry_id, conversation_key = entry
        await self._redis.xack(self._keys.ready_stream_of(conversation_key), WORKER_GROUP, entry_id)

    async def trim(self, shard: int | None = None) -> int:
        """Remove the entries every consumer has acknowledged, on `shard` (None: on every
        shard); the number removed."""
        shards = self.shards if shard is None else [shard]
        return sum([await self._trim(each) for each in shards])

    async def _trim(self, shard: int) -> int:
        """Everything older than the oldest pending entry was acknowledged, and so was, when
        nothing is pending, everything up to the last entry handed out. Both are read in one
        transaction; entries below that mark cannot become pending again, so the trim after
        it is safe whatever happens in between.
        """
        stream = self._keys.ready_stream(shard)
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
        `turn` known, off what its asker has waiting, in one round trip (two slots: should
        the second fail, the asker's count forgets the turn within the hour)."""
        async with self._redis.pipeline(transaction=False) as pipe:
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
        """Entries not yet read or not yet acknowledged by the group, over every shard (0
        when all is answered); one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard in self.shards:
                pipe.xinfo_groups(self._keys.ready_stream(shard))
            replies = await pipe.execute(raise_on_error=False)
        total = 0
        for groups in replies:
            if isinstance(groups, ResponseError):  # no stream yet
                continue
            if isinstance(groups, Exception):
                raise groups
            for group in groups:
                if group["name"] == WORKER_GROUP:
                    total += int(group["pending"]) + int(group.get("lag") or 0)
        return total


def _entries(raw: list[tuple[str, dict[str, str]]] | None) -> list[Entry]:
    return [(entry_id, fields["conversation"]) for entry_id, fields in raw or [] if fields]


def _next_id(entry_id: str) -> str:
    """The smallest stream id above `entry_id` ("ms-seq")."""
    milliseconds, sequence = entry_id.split("-")
    return f"{milliseconds}-{int(sequence) + 1}"
