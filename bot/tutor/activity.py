"""What learners do, kept for the App Home and for "Show me the answer".

Per course (the channel whose course taught a turn): the questions asked and who asked them.
Per learner: the courses that taught them, and their recent conversations (where and when
each started). Per conversation: its guided answers' turns, and where a "Show me the
answer" turn for each goes.

Privacy: no text of a question is kept here (a question's text leaves Redis once its turn
is delivered): a recent conversation is its channel and time, and "Show me the answer" asks
the backend's conversation, which holds the question, by the guided reply it gave. A
learner keeps the last TOPICS_KEPT conversations, which expire TOPICS_TTL_SECONDS after
their last question; guided turns expire with the turn's record (TURN_TTL_SECONDS), at most
REVEALS_KEPT per conversation. Forgetting a conversation (`bot.turns.forget`) deletes both
(see the keys `learner_topics`, `topic_learners` and `reveal_questions` in `bot.storage.keys`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.storage.keys import TURN_TTL_SECONDS, Keys
from bot.turns.models import Turn, TurnSource

TOPICS_KEPT = 10
TOPICS_TTL_SECONDS = 30 * 24 * 60 * 60
REVEALS_KEPT = 20
# Who asked in which course: counts for teachers, kept a bit over a school year.
ACTIVITY_TTL_SECONDS = 400 * 24 * 60 * 60


@dataclass(frozen=True)
class Topic:
    """One of a learner's recent conversations: where, and when it started."""

    conversation_key: str
    channel_id: str
    at: float


@dataclass(frozen=True)
class GuidedQuestion:
    """A guided answer's turn (not its text), and where a "Show me the answer" turn for it
    goes."""

    turn_id: str
    user_id: str
    conversation_key: str
    team_id: str
    channel_id: str
    thread_ts: str | None
    source: TurnSource
    assistant_thread: bool = False

    def encoded(self) -> str:
        return json.dumps({
            "turn": self.turn_id, "user": self.user_id,
            "team": self.team_id, "channel": self.channel_id, "thread_ts": self.thread_ts,
            "source": self.source.value, "pane": self.assistant_thread,
        })  # fmt: skip

    @classmethod
    def decoded(cls, raw: str, conversation_key: str) -> GuidedQuestion:
        stored = json.loads(raw)
        return cls(
            turn_id=stored["turn"],
            user_id=stored["user"],
            conversation_key=conversation_key,
            team_id=stored["team"],
            channel_id=stored["channel"],
            thread_ts=stored.get("thread_ts"),
            source=TurnSource(stored["source"]),
            assistant_thread=bool(stored.get("pane")),
        )


class LearnerActivity:
    def __init__(self, redis: Redis, keys: Keys, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock

    async def record_turn(self, turn: Turn, course_channel: str | None, *, guided: bool) -> None:
        """Note a turn as its run is about to start: its course's figures, the learner's
        recent conversation, and (`guided`) its turn for "Show me the answer"; none of its
        text. One round trip (two when the learner's topics pass their cap)."""
        keys, team, user = self._keys, turn.team_id, turn.user_id
        topics = keys.learner_topics(team, user)
        topic = json.dumps({"channel": turn.channel_id, "at": self._clock()})
        async with self._redis.pipeline(transaction=False) as pipe:
            if course_channel is not None:
                pipe.hincrby(keys.course_stats(team), f"{course_channel}:questions", 1)
                for key, member in (
                    (keys.course_learners(team, course_channel), user),
                    (keys.learner_channels(team, user), course_channel),
                ):
                    pipe.sadd(key, member)
                    pipe.expire(key, ACTIVITY_TTL_SECONDS)
            pipe.hsetnx(topics, turn.conversation_key, topic)
            pipe.expire(topics, TOPICS_TTL_SECONDS)
            learners = keys.topic_learners(turn.conversation_key)
            pipe.sadd(learners, user)
            pipe.expire(learners, TOPICS_TTL_SECONDS)
            if guided:
                reveals = keys.reveal_questions(turn.conversation_key)
                pipe.lpush(reveals, self._guided_question(turn).encoded())
                pipe.ltrim(reveals, 0, REVEALS_KEPT - 1)
                pipe.expire(reveals, TURN_TTL_SECONDS)
            pipe.hlen(topics)
            results = await pipe.execute()
        if int(results[-1]) > TOPICS_KEPT:
            await self._trim_topics(team, user)

    def _guided_question(self, turn: Turn) -> GuidedQuestion:
        return GuidedQuestion(
            turn_id=turn.turn_id,
            user_id=turn.user_id,
            conversation_key=turn.conversation_key,
            team_id=turn.team_id,
            channel_id=turn.channel_id,
            thread_ts=turn.thread_ts,
            source=turn.source,
            assistant_thread=turn.assistant_thread,
        )

    async def _trim_topics(self, team_id: str, user_id: str) -> None:
        """Keep the learner's newest TOPICS_KEPT topics."""
        key = self._keys.learner_topics(team_id, user_id)
        found = sorted(_topics(await self._redis.hgetall(key)), key=lambda t: t.at, reverse=True)
        dropped = [topic.conversation_key for topic in found[TOPICS_KEPT:]]
        if not dropped:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(key, *dropped)
            for conversation_key in dropped:
                pipe.srem(self._keys.topic_learners(conversation_key), user_id)
            await pipe.execute()

    async def topics(self, team_id: str, user_id: str) -> list[Topic]:
        """The learner's recent conversations, newest first."""
        stored = await self._redis.hgetall(self._keys.learner_topics(team_id, user_id))
        return sorted(_topics(stored), key=lambda t: t.at, reverse=True)[:TOPICS_KEPT]

    async def guided_question(self, conversation_key: str, turn_id: str) -> GuidedQuestion | None:
        """A guided answer's turn, while it is kept (None: expired or forgotten)."""
        raw = await self._redis.lrange(self._keys.reveal_questions(conversation_key), 0, -1)
        for entry in raw:
            question = GuidedQuestion.decoded(entry, conversation_key)
            if question.turn_id == turn_id:
                return question
        return None

    async def learner_courses(self, team_id: str, user_id: str) -> set[str]:
        """The channels whose courses taught this learner."""
        return set(await self._redis.smembers(self._keys.learner_channels(team_id, user_id)))

    async def questions_per_course(self, team_id: str) -> dict[str, int]:
        """Questions asked per course channel of a workspace, in one read."""
        stored = await self._redis.hgetall(self._keys.course_stats(team_id))
        found: dict[str, int] = {}
        for field, value in stored.items():
            channel, _, figure = field.rpartition(":")
            if figure == "questions":
                found[channel] = int(value)
        return found

    async def learners_per_course(self, team_id: str, channel_ids: list[str]) -> dict[str, int]:
        """How many people asked in each of these course channels, in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel_id in channel_ids:
                pipe.scard(self._keys.course_learners(team_id, channel_id))
            counts = await pipe.execute()
        return dict(zip(channel_ids, (int(c) for c in counts), strict=True))


def _topics(stored: dict[str, str]) -> list[Topic]:
    found = []
    for conversation_key, raw in stored.items():
        try:
            entry = json.loads(raw)
            found.append(Topic(conversation_key, str(entry["channel"]), float(entry["at"])))
        except (ValueError, KeyError, TypeError):
            continue  # an entry this version cannot read is left out
    return found
