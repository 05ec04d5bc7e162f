"""Feedback on answers: button values, the last click per turn, counts, comments."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from bot.storage.keys import TURN_TTL_SECONDS, Keys
from bot.tutor.feedback import (
    COMMENT_LIMIT,
    COMMENTS_KEPT,
    Click,
    FeedbackStore,
    Rating,
    feedback_value,
    parse_feedback_value,
)

TURN = "turn_0123abcd"


def test_button_values_name_a_rating_and_a_turn_and_nothing_else() -> None:
    assert feedback_value(Rating.DOWN, TURN) == f"down:{TURN}"
    assert parse_feedback_value(f"up:{TURN}") == (Rating.UP, TURN)
    for value in ("", "up", f"meh:{TURN}", "up:turn_", "up:turn_XYZ", f"up:{TURN}:x", "up:C1"):
        assert parse_feedback_value(value) is None, value


@pytest.fixture
def store(redis: Redis, keys: Keys) -> FeedbackStore:
    return FeedbackStore(redis, keys, clock=lambda: 1700000000.0)


def click(rating: Rating, turn_id: str = TURN, user: str = "U1", channel: str = "C1") -> Click:
    return Click(turn_id, rating, user, "T1", channel)


async def test_the_last_click_wins_and_the_counts_follow_it(
    store: FeedbackStore, redis: Redis, keys: Keys
) -> None:
    assert await store.record(click(Rating.UP)) is None
    assert await store.record(click(Rating.UP)) is Rating.UP
    assert await store.record(click(Rating.DOWN, user="U2")) is Rating.UP
    await store.record(click(Rating.UP, turn_id="turn_ff", channel="C2"))
    stored = await store.of_turn(TURN)
    assert stored["rating"] == "down" and stored["user"] == "U2" and stored["channel"] == "C1"
    assert await store.counts("T1") == {
        "C1": {Rating.UP: 0, Rating.DOWN: 1},
        "C2": {Rating.UP: 1, Rating.DOWN: 0},
    }
    assert 0 < await redis.ttl(keys.feedback(TURN)) <= TURN_TTL_SECONDS, "expires like the turn"


async def test_a_comment_is_kept_with_its_click_cleaned_and_capped(store: FeedbackStore) -> None:
    assert not await store.comment(TURN, "U1", "no click yet"), "a comment explains a click"
    await store.record(click(Rating.DOWN))
    assert not await store.comment(TURN, "U1", "  \x00 "), "nothing to keep"
    assert await store.comment(TURN, "U1", "Wrong\x00 date" + "!" * 1000)
    comment = (await store.of_turn(TURN))["comment"]
    assert comment.startswith("Wrong date!") and len(comment) == COMMENT_LIMIT
    for n in range(COMMENTS_KEPT + 5):
        await store.comment(TURN, "U1", f"comment {n}")
    latest = await store.latest_comments("T1", "C1")
    assert len(latest) == COMMENTS_KEPT and latest[0]["comment"] == f"comment {COMMENTS_KEPT + 4}"
    assert latest[0]["turn"] == TURN and latest[0]["user"] == "U1"
