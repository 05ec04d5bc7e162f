"""The door's rules: allow-lists and length (pure), the counted limits (one Redis script),
the words people are told, and the notes' bound."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.settings import ConfigError, Settings
from bot.slack.background import BackgroundTasks
from bot.slack.refusals import RefusalNotices, refusal_text
from bot.storage.keys import Keys
from bot.turns.guards import DoorPolicy, Limits, Refusal, Refused
from bot.turns.models import Turn, TurnSource
from bot.turns.queue import WAITING_COUNTS_SECONDS, TurnQueue


def question(
    conversation: str = "1", *, user: str = "U1", channel: str = "C1", team: str = "T1",
    text: str = "q",
) -> Turn:  # fmt: skip
    key = f"{team}:{channel}:{conversation}"
    return Turn(key, team, channel, conversation, user, text, TurnSource.MENTION)


# The rules that need no Redis ---------------------------------------------------------------


def test_without_lists_or_limits_everyone_may_ask_anything() -> None:
    assert DoorPolicy().check(question(text="x" * 100_000)) is None


def test_the_allow_lists_are_checked_workspace_first() -> None:
    policy = DoorPolicy(
        allowed_teams=frozenset({"T1"}),
        allowed_channels=frozenset({"C1"}),
        allowed_users=frozenset({"U1"}),
    )
    assert policy.check(question()) is None
    assert policy.check(question(team="T2", channel="C2", user="U2")) == Refused(Refusal.WORKSPACE)
    assert policy.check(question(channel="C2", user="U2")) == Refused(Refusal.CHANNEL)
    assert policy.check(question(user="U2")) == Refused(Refusal.USER)


def test_direct_messages_pass_a_channel_list_only_when_it_says_dm() -> None:
    channels_only = DoorPolicy(allowed_channels=frozenset({"C1"}))
    assert channels_only.check(question(channel="D1")) == Refused(Refusal.CHANNEL)
    with_dms = DoorPolicy(allowed_channels=frozenset({"C1", "dm"}))
    assert with_dms.check(question(channel="D1")) is None
    assert with_dms.check(question(channel="C2")) == Refused(Refusal.CHANNEL)


def test_a_question_longer_than_allowed_is_refused_with_its_length() -> None:
    policy = DoorPolicy(max_question_chars=10)
    assert policy.check(question(text="x" * 10)) is None
    assert policy.check(question(text="é" * 11)) == Refused(Refusal.TOO_LONG, limit=10, size=11)


def test_settings_read_the_lists_and_limits(tmp_path: Path) -> None:
    defaults = Settings.load({}, env_file=tmp_path / "none")
    assert (defaults.allowed_teams, defaults.allowed_channels, defaults.allowed_users) == (
        None, None, None,
    )  # fmt: skip
    assert defaults.user_rate == 20 and defaults.max_question_chars == 4000
    assert (defaults.max_queued_per_conversation, defaults.max_queued_per_user) == (5, 10)
    settings = Settings.load(
        {"TUTOR_ALLOWED_CHANNELS": " C1, dm ,G2,", "TUTOR_ALLOWED_USERS": "U1",
         "TUTOR_USER_RATE": "0"},
        env_file=tmp_path / "none",
    )  # fmt: skip
    assert settings.allowed_channels == {"C1", "dm", "G2"}
    assert settings.allowed_users == {"U1"} and settings.user_rate == 0


@pytest.mark.parametrize(
    ("env", "value"),
    [("TUTOR_ALLOWED_CHANNELS", "#general"), ("TUTOR_ALLOWED_USERS", "dm"),
     ("TUTOR_ALLOWED_TEAMS", "t1"), ("TUTOR_USER_RATE", "-1")],
)  # fmt: skip
def test_settings_that_are_not_ids_or_counts_are_explained(
    tmp_path: Path, env: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=env):
        Settings.load({env: value}, env_file=tmp_path / "none")


# The counted limits, in the script that records a turn ---------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(redis: Redis, keys: Keys, clock: Clock) -> TurnQueue:
    return TurnQueue(redis, keys, clock=clock)


async def test_the_rate_counts_a_sliding_minute_and_says_when_to_ask_again(
    queue: TurnQueue, clock: Clock
) -> None:
    limits = Limits(per_user_per_minute=3)
    for index in range(3):
        assert await queue.enqueue(question(str(index)), None, None, limits) == 0
        clock.now += 10
    refused = await queue.enqueue(question("x"), None, None, limits)
    assert refused == Refused(Refusal.RATE, limit=3, retry_after=30.0), "the first is 30 s old"
    clock.now += 30
    assert await queue.enqueue(question("y"), None, None, limits) == 0
    assert isinstance(await queue.enqueue(question("z"), None, None, limits), Refused)
    other = dataclasses.replace(question("z"), user_id="U2")
    assert await queue.enqueue(other, None, None, limits) == 0, "counted per person"


async def test_a_refused_question_records_nothing_and_its_redelivery_is_a_repeat(
    queue: TurnQueue, redis: Redis, keys: Keys
) -> None:
    limits = Limits(per_user_per_minute=1)
    await queue.ensure_group()
    assert await queue.enqueue(question("1"), "Ev1", "1.1", limits) == 0
    turn = question("2")
    assert isinstance(await queue.enqueue(turn, "Ev2", "2.2", limits), Refused)
    assert not await redis.exists(keys.turn(turn.turn_id))
    assert await queue.waiting(turn.conversation_key) == 0
    assert await redis.xlen(keys.ready_stream(0)) == 1
    assert await queue.waiting_for("T1", "U1") == 1
    assert await queue.enqueue(turn, "Ev2", "2.2", limits) is None, "Slack's retry: dropped"


async def test_questions_waiting_are_capped_per_conversation_and_per_person(
    queue: TurnQueue,
) -> None:
    limits = Limits(queued_per_conversation=2, queued_per_user=3)
    first, second, third = (question("1") for _ in range(3))
    assert await queue.enqueue(first, None, None, limits) == 0
    assert await queue.enqueue(second, None, None, limits) == 1
    assert await queue.enqueue(third, None, None, limits) == Refused(
        Refusal.CONVERSATION_FULL, limit=2
    )
    assert await queue.enqueue(question("2"), None, None, limits) == 0
    assert await queue.enqueue(question("3"), None, None, limits) == Refused(
        Refusal.USER_FULL, limit=3
    )
    await queue.remove(first.conversation_key, first.turn_id, first)
    assert await queue.waiting_for("T1", "U1") == 2
    assert await queue.enqueue(third, None, None, limits) == 1, "room again in both"


async def test_questions_refused_for_waiting_ones_do_not_use_up_the_rate(
    queue: TurnQueue,
) -> None:
    limits = Limits(queued_per_user=1, per_user_per_minute=2)
    waiting = question("1")
    assert await queue.enqueue(waiting, None, None, limits) == 0
    for index in range(5):
        refused = await queue.enqueue(question(f"r{index}"), None, None, limits)
        assert isinstance(refused, Refused) and refused.reason is Refusal.USER_FULL
    await queue.remove(waiting.conversation_key, waiting.turn_id, waiting)
    assert await queue.enqueue(question("2"), None, None, limits) == 0


async def test_racing_questions_never_pass_a_cap(queue: TurnQueue) -> None:
    limits = Limits(queued_per_user=5)
    results = await asyncio.gather(
        *(queue.enqueue(question(str(i)), None, None, limits) for i in range(40))
    )
    assert sum(1 for r in results if r == 0) == 5
    assert await queue.waiting_for("T1", "U1") == 5


async def test_a_turn_removed_without_its_asker_stops_counting_after_an_hour(
    queue: TurnQueue, clock: Clock
) -> None:
    turn = question()
    await queue.enqueue(turn, None, None)
    await queue.remove(turn.conversation_key, turn.turn_id)  # its record was lost
    assert await queue.waiting_for("T1", "U1") == 1
    clock.now += WAITING_COUNTS_SECONDS + 1
    assert await queue.waiting_for("T1", "U1") == 0
    limits = Limits(queued_per_user=1)
    assert await queue.enqueue(question("2"), None, None, limits) == 0


# What people are told -------------------------------------------------------------------------


def test_every_refusal_but_a_workspace_is_explained_kindly() -> None:
    assert refusal_text(Refused(Refusal.WORKSPACE), "C1") is None
    assert "direct messages" in (refusal_text(Refused(Refusal.CHANNEL), "D1") or "")
    assert "this channel" in (refusal_text(Refused(Refusal.CHANNEL), "C1") or "")
    long = refusal_text(Refused(Refusal.TOO_LONG, limit=4000, size=4321), "C1") or ""
    assert "4,321" in long and "4,000" in long
    rate = refusal_text(Refused(Refusal.RATE, limit=20, retry_after=12.2), "C1") or ""
    assert "20 questions" in rate and "in 13 seconds" in rate
    assert "in 1 second." in (refusal_text(Refused(Refusal.RATE, 20, 0.01), "C1") or "")
    for reason in (Refusal.USER, Refusal.CONVERSATION_FULL, Refusal.USER_FULL):
        assert "didn't take" in (refusal_text(Refused(reason, limit=5), "C1") or "")


class EphemeralClient:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []

    async def chat_postEphemeral(self, **args: Any) -> None:
        self.posts.append(args)


async def test_a_person_gets_one_note_a_minute_per_reason(redis: Redis, keys: Keys) -> None:
    background = BackgroundTasks()
    notices = RefusalNotices(redis, keys, background)
    client = EphemeralClient()
    rate = Refused(Refusal.RATE, limit=1, retry_after=5)
    for _ in range(10):
        notices.tell(client, question(), rate, None)  # type: ignore[arg-type]
        await background.drain(5)
    notices.tell(client, question(), Refused(Refusal.USER_FULL, limit=1), "1.5")  # type: ignore[arg-type]
    notices.tell(client, question(user="U2"), rate, None)  # type: ignore[arg-type]
    notices.tell(client, question(), Refused(Refusal.WORKSPACE), None)  # type: ignore[arg-type]
    await background.drain(5)
    assert sorted((p["user"], p["thread_ts"] or "-") for p in client.posts) == [
        ("U1", "-"), ("U1", "1.5"), ("U2", "-"),
    ]  # fmt: skip
