"""Feedback on answers: a thumbs up or down per turn (the last click wins), an optional
comment, and counts per workspace and channel for whoever looks after a course.

The buttons carry only a rating and the turn's id (`up:turn_…`), nothing secret. A click is
stored per turn together with who clicked and where; Slack's feedback buttons are a toggle
without an "unclicked" event, so the stored click is simply the last one. The counts follow
it: a click that changes a turn's rating moves one count from the old rating to the new
(after the click is stored: see `FeedbackStore.record`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis

from bot.storage.keys import TURN_TTL_SECONDS, Keys
from bot.turns.text import clean_text

# Comments are short; the input asks for at most this much.
COMMENT_LIMIT = 500
# How many recent comments are kept per channel, and for how long.
COMMENTS_KEPT = 20
COMMENTS_TTL_SECONDS = 90 * 24 * 60 * 60
_TURN_ID = re.compile(r"turn_[0-9a-f]{1,64}")


class Rating(StrEnum):
    UP = "up"
    DOWN = "down"


def feedback_value(rating: Rating, turn_id: str) -> str:
    """A feedback button's value: the rating and the turn it is about."""
    return f"{rating.value}:{turn_id}"


def parse_feedback_value(value: str) -> tuple[Rating, str] | None:
    """(rating, turn id) from a button's value; None for anything the bot did not send."""
    rating, _, turn_id = value.partition(":")
    if rating not in (Rating.UP.value, Rating.DOWN.value) or not _TURN_ID.fullmatch(turn_id):
        return None
    return Rating(rating), turn_id


def is_turn_id(text: str) -> bool:
    return bool(_TURN_ID.fullmatch(text))


def clean_comment(text: str) -> str:
    """A comment as kept: text only, trimmed to COMMENT_LIMIT characters."""
    return clean_text(text).strip()[:COMMENT_LIMIT]


@dataclass(frozen=True)
class Click:
    """Someone rated a turn's answer, in a channel of a workspace."""

    turn_id: str
    rating: Rating
    user_id: str
    team_id: str
    channel_id: str


# KEYS: the turn's feedback hash. ARGV: rating, user, team, channel, when, ttl. Stores the
# click; returns the rating it replaced ("" if none). Its counts are moved after, in their
# own slot (on Redis Cluster).
_RECORD = """
local previous = redis.call('HGET', KEYS[1], 'rating') or ''
redis.call('HSET', KEYS[1], 'rating', ARGV[1], 'user', ARGV[2], 'team', ARGV[3],
           'channel', ARGV[4], 'at', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return previous
"""


class FeedbackStore:
    def __init__(self, redis: Redis, keys: Keys, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock
        self._record = redis.register_script(_RECORD)

    async def record(self, click: Click) -> Rating | None:
        """Store the click (the turn's last); the rating it replaced, if any.

        Two steps, as the usage ledger (the counts live in another slot on Redis Cluster):
        the click is stored, which decides once what it changes, then the counts move. A
        click sent again (or a retried step) finds its own rating and moves nothing; a
        process dying in between leaves that click out of the counts, never in them twice.
        """
        previous = await self._record(
            keys=[self._keys.feedback(click.turn_id)],
            args=[
                click.rating.value,
                click.user_id,
                click.team_id,
                click.channel_id,
                f"{self._clock():.3f}",
                TURN_TTL_SECONDS,
            ],
        )
        if previous != click.rating.value:
            counts = self._keys.feedback_counts(click.team_id)
            async with self._redis.pipeline(transaction=True) as pipe:  # one key: one slot
                if previous:
                    pipe.hincrby(counts, f"{click.channel_id}:{previous}", -1)
                pipe.hincrby(counts, f"{click.channel_id}:{click.rating.value}", 1)
                await pipe.execute()
        return Rating(previous) if previous else None

    async def comment(self, turn_id: str, user_id: str, text: str) -> bool:
        """Keep a comment with the turn's feedback and among its channel's latest comments.

        False when there is nothing to keep (an empty comment) or the turn's feedback is
        gone (expired): a comment needs the click it explains.
        """
        comment = clean_comment(text)
        key = self._keys.feedback(turn_id)
        team, channel = await self._redis.hmget(key, ["team", "channel"])
        if not comment or not team or not channel:
            return False
        now = f"{self._clock():.3f}"
        entry = json.dumps({"turn": turn_id, "user": user_id, "comment": comment, "at": now})
        comments = self._keys.feedback_comments(team, channel)
        # The turn's feedback, then its channel's list (two slots on Redis Cluster): a
        # process dying in between leaves the comment out of the list only.
        await self._redis.hset(key, mapping={"comment": comment, "comment_user": user_id})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(comments, entry)
            pipe.ltrim(comments, 0, COMMENTS_KEPT - 1)
            pipe.expire(comments, COMMENTS_TTL_SECONDS)
            await pipe.execute()
        return True

    async def of_turn(self, turn_id: str) -> dict[str, str]:
        """The turn's stored feedback (empty when there is none)."""
        return dict(await self._redis.hgetall(self._keys.feedback(turn_id)))

    async def counts(self, team_id: str) -> dict[str, dict[Rating, int]]:
        """Per channel of the workspace: how many answers are rated up and down."""
        raw = await self._redis.hgetall(self._keys.feedback_counts(team_id))
        found: dict[str, dict[Rating, int]] = {}
        for field, value in raw.items():
            channel, _, rating = field.rpartition(":")
            if rating in (Rating.UP.value, Rating.DOWN.value):
                found.setdefault(channel, {Rating.UP: 0, Rating.DOWN: 0})[Rating(rating)] = int(
                    value
                )
        return found

    async def latest_comments(
        self, team_id: str, channel_id: str, count: int = COMMENTS_KEPT
    ) -> list[dict[str, str]]:
        """The channel's latest comments, newest first (turn, user, comment, at)."""
        raw = await self._redis.lrange(
            self._keys.feedback_comments(team_id, channel_id), 0, count - 1
        )
        return [json.loads(entry) for entry in raw]

    async def latest_comments_of(
        self, team_id: str, channel_ids: list[str], count: int
    ) -> dict[str, list[dict[str, str]]]:
        """The latest comments of several channels, newest first, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel_id in channel_ids:
                pipe.lrange(self._keys.feedback_comments(team_id, channel_id), 0, count - 1)
            found = await pipe.execute()
        return {
            channel_id: [json.loads(entry) for entry in raw]
            for channel_id, raw in zip(channel_ids, found, strict=True)
        }
