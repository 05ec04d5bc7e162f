"""The usage ledger: each turn's tokens (and cost, when priced) per turn, conversation,
user and workspace, per UTC day and month, kept in Redis so a team sees what the tutor costs.

Figures are what the model server reported for the run (or the bot's estimate where it
reported nothing, marked as such). A turn counts once: its own figures are written first,
only if it has none yet (one atomic step on their key), and only the one step that wrote
them adds to the totals; a turn whose figures exist already (resumed after a crash, or
finished by two processes at once) adds nothing. The totals live in other keys (on Redis
Cluster, other slots), so they are added after, in one round trip: a crash in between
leaves that one turn out of the totals, never in them twice.

Keys (see `bot.storage.keys`): `usage:<YYYY-MM-DD>` and `usage:<YYYY-MM>` hold fields
`<team>:<figure>` (the workspace) and `<team>:<user>:<figure>` (each user);
`usage:conversation:<key>` one conversation's totals; `usage:turn:<turn id>` one turn's;
`usage:channels:<team>` all-time totals per channel (`<channel>:<figure>`), for courses.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.backends.base import Usage
from bot.storage.keys import TURN_TTL_SECONDS, Keys
from bot.turns.models import Turn
from bot.tutor.prices import PriceTable
from bot.tutor.usage import FIGURE_NAMES, UsageFigures, day_of, month_of, utc_now

log = logging.getLogger(__name__)

USAGE_TTL_SECONDS = 400 * 24 * 60 * 60  # a bit over a year of daily and monthly totals


@dataclass(frozen=True)
class UsageReport:
    """One person's figures and their workspace's, today and this month (UTC)."""

    day: str
    month: str
    user_today: UsageFigures
    user_month: UsageFigures
    workspace_today: UsageFigures
    workspace_month: UsageFigures


# A turn's own figures, written once: {} when written now, else those it had (a flat list).
# KEYS: the turn's usage key. ARGV: its ttl, then field, value, … ('counted' is always one).
# A turn's own figures, written once. ARGV: TTL, the writer's claim token, then the figures.
# The token tells a writer whose first run's reply was lost (the client sent the script
# again) that the figures found are its own, still to be added to the totals.
_CLAIM_TURN = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HGETALL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'counted', ARGV[2], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {}
"""


class UsageLedger:
    """Counts each turn's usage once, and reads the totals back.

    `model` is the model that runs turns (TUTOR_MODEL), priced from `prices`.
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        model: str = "",
        prices: PriceTable | None = None,
        now: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._price = (prices or PriceTable()).for_model(model)
        self._now = now
        self._claim_script = redis.register_script(_CLAIM_TURN)
        if prices and self._price is None:
            log.warning("TUTOR_PRICES names no price for the model %s: costs are not shown", model)

    async def record(self, turn: Turn, usage: Usage | None) -> UsageFigures:
        """Count one turn (its tokens when known) everywhere; return the turn's figures.

        A turn already counted is not counted again: its figures as first recorded are
        returned.
        """
        return await self._record(
            turn.turn_id,
            turn.team_id,
            turn.user_id,
            turn.conversation_key,
            usage,
            channel_id=turn.channel_id,
        )

    async def record_call(
        self, call_id: str, team_id: str, user_id: str, usage: Usage | None
    ) -> UsageFigures:
        """Count a model call made for a person outside any conversation (a quiz) like a
        turn, in their day's and month's figures and the workspace's; once per `call_id`."""
        return await self._record(call_id, team_id, user_id, None, usage)

    async def _claim(self, turn_key: str, fields: dict[str, int]) -> dict[str, str] | None:
        """Write a turn's own figures unless it has some: None when written now (by this
        call, also when the script's first reply was lost), else those found (counted
        before)."""
        token = uuid.uuid4().hex
        flat = [str(part) for pair in fields.items() for part in pair]
        found = await self._claim_script(keys=[turn_key], args=[TURN_TTL_SECONDS, token, *flat])
        if not found:
            return None
        stored = dict(zip(found[::2], found[1::2], strict=True))
        return None if stored.get("counted") == token else stored

    async def _record(
        self,
        turn_id: str,
        team_id: str,
        user_id: str,
        conversation_key: str | None,
        usage: Usage | None,
        *,
        channel_id: str | None = None,
    ) -> UsageFigures:
        cost = self._price.cost_nanousd(usage) if self._price and usage else None
        figures = UsageFigures.of_turn(usage, cost)
        stored = await self._claim(self._keys.turn_usage(turn_id), figures.fields())
        if stored is not None:
            return UsageFigures.from_fields(stored)
        async with self._redis.pipeline(transaction=False) as pipe:
            self._count(pipe, team_id, user_id, conversation_key, channel_id, figures)
            await pipe.execute()
        return figures

    def _count(
        self,
        pipe: Pipeline,
        team_id: str,
        user_id: str,
        conversation_key: str | None,
        channel_id: str | None,
        figures: UsageFigures,
    ) -> None:
        fields = figures.fields()
        if conversation_key is not None:
            conversation_usage = self._keys.conversation_usage(conversation_key)
            for name, value in fields.items():
                pipe.hincrby(conversation_usage, name, value)
            pipe.expire(conversation_usage, USAGE_TTL_SECONDS)
        if channel_id is not None:  # all-time totals per channel: a course's tokens
            channels_key = self._keys.channel_usage(team_id)
            for name, value in fields.items():
                pipe.hincrby(channels_key, f"{channel_id}:{name}", value)
            pipe.expire(channels_key, USAGE_TTL_SECONDS)
        now = self._now()
        for period in (day_of(now), month_of(now)):
            period_key = self._keys.usage(period)
            for scope in (_workspace(team_id), _user(team_id, user_id)):
                for name, value in fields.items():
                    pipe.hincrby(period_key, f"{scope}:{name}", value)
            pipe.expire(period_key, USAGE_TTL_SECONDS)

    async def turn(self, turn_id: str) -> UsageFigures | None:
        """One turn's figures; None if it was not counted (or long ago)."""
        stored = await self._redis.hgetall(self._keys.turn_usage(turn_id))
        return UsageFigures.from_fields(stored) if stored else None

    async def conversation(self, conversation_key: str) -> UsageFigures:
        stored = await self._redis.hgetall(self._keys.conversation_usage(conversation_key))
        return UsageFigures.from_fields(stored)

    async def channels(self, team_id: str) -> dict[str, UsageFigures]:
        """A workspace's all-time figures per channel, in one read."""
        stored = await self._redis.hgetall(self._keys.channel_usage(team_id))
        fields: dict[str, dict[str, str]] = {}
        for field, value in stored.items():
            channel, _, name = field.rpartition(":")
            fields.setdefault(channel, {})[name] = value
        return {channel: UsageFigures.from_fields(found) for channel, found in fields.items()}

    async def period(self, period: str, team_id: str, user_id: str | None = None) -> UsageFigures:
        """A workspace's figures (or one user's, with `user_id`) of a day or a month."""
        scope = _workspace(team_id) if user_id is None else _user(team_id, user_id)
        return _figures(await self._redis.hmget(self._keys.usage(period), _names(scope)))

    async def today(
        self, team_id: str, user_id: str, now: datetime.datetime | None = None
    ) -> tuple[UsageFigures, UsageFigures]:
        """(the user's, the workspace's) figures of the UTC day of `now`, in one read."""
        names = _names(_user(team_id, user_id)) + _names(_workspace(team_id))
        day = day_of(now or self._now())
        values = await self._redis.hmget(self._keys.usage(day), names)
        count = len(FIGURE_NAMES)
        return _figures(values[:count]), _figures(values[count:])

    async def report(self, team_id: str, user_id: str) -> UsageReport:
        """The user's and the workspace's figures today and this month, in one round trip."""
        now = self._now()
        day, month = day_of(now), month_of(now)
        names = _names(_user(team_id, user_id)) + _names(_workspace(team_id))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._keys.usage(day), names)
            pipe.hmget(self._keys.usage(month), names)
            of_day, of_month = await pipe.execute()
        count = len(FIGURE_NAMES)
        return UsageReport(
            day=day,
            month=month,
            user_today=_figures(of_day[:count]),
            user_month=_figures(of_month[:count]),
            workspace_today=_figures(of_day[count:]),
            workspace_month=_figures(of_month[count:]),
        )


def _workspace(team_id: str) -> str:
    return team_id


def _user(team_id: str, user_id: str) -> str:
    return f"{team_id}:{user_id}"


def _names(scope: str) -> list[str]:
    return [f"{scope}:{name}" for name in FIGURE_NAMES]


def _figures(values: list[str | None]) -> UsageFigures:
    return UsageFigures.from_fields(dict(zip(FIGURE_NAMES, values, strict=True)))
