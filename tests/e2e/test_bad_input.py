"""Bad input from outside: text a model server cannot take, and malformed Slack requests."""

from __future__ import annotations

from tests.e2e.conftest import Harness

DM = "D300"
USER = "U300"


async def test_unusable_characters_are_cleaned_before_the_question_is_sent(
    harness: Harness,
) -> None:
    await harness.events.dm(DM, USER, "Who was\ud800 Hypatia?\x00\nAnd\twhen?")
    await harness.slack.wait_for(lambda: _answers(harness) != [])
    assert _answers(harness) == ["Answer 1: Who was Hypatia?\nAnd\twhen?"]


def _answers(harness: Harness) -> list[str]:
    texts = [harness.slack.visible_text(DM, m.ts) for m in harness.slack.channel_top_level(DM)]
    return [t for t in texts if "thinking" not in t.lower()]
