"""Bad input from outside: text a model server cannot take, and malformed Slack requests."""

from __future__ import annotations

import logging
import time

import pytest

from bot.settings import BackendKind
from tests.e2e.conftest import Harness
from tests.malformed_requests import MALFORMED, MISSING, event, event_with

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


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_malformed_requests_get_400_and_change_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for name, body, content_type in MALFORMED:
        status, _ = await harness.events.send_raw(body, content_type)
        assert status == 400, name
    await _assert_nothing_changed(harness, caplog, len(MALFORMED))


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_what_only_bolt_finds_unreadable_gets_400_too(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    reaction = event_with(type="reaction_added", channel=MISSING, item={"channel": 5})
    status, _ = await harness.events.send_raw(reaction)
    assert status == 400
    await _assert_nothing_changed(harness, caplog, 1)


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_requests_slack_did_not_sign_get_401_and_change_nothing(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = event()
    attempts = [
        await harness.events.send_raw(body, signed=False),
        await harness.events.send_raw(body, signed=False, timestamp="not-a-number"),
        await harness.events.send_raw(body, timestamp="not-a-number"),
        await harness.events.send_raw(body, timestamp=str(int(time.time()) - 600)),
        await harness.events.send_raw(b"\xff not even text", signed=False),
    ]
    assert [status for status, _ in attempts] == [401] * len(attempts)
    await _assert_nothing_changed(harness, caplog, len(attempts))


async def _assert_nothing_changed(
    harness: Harness, caplog: pytest.LogCaptureFixture, requests: int
) -> None:
    await harness.wait_idle()
    await harness.bot.background.drain(5)
    assert [c.method for c in harness.slack.calls] == ["auth.test"], "only the start's"
    assert harness.openai.requests == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    refusals = [r for r in caplog.records if r.getMessage().startswith("refused a request")]
    assert len(refusals) == requests, "one log line each"


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_a_command_mentioning_payload_is_answered(harness: Harness) -> None:
    """Bolt on its own reads any form containing the word "payload" as an empty body."""
    status, _ = await harness.events.slash_command(
        "/tutor", "What is a payload?", channel_id="C300", user_id=USER,
        response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    assert status == 200
    await harness.slack.wait_for(lambda: bool(harness.slack.channel_top_level("C300")))
    root = harness.slack.channel_top_level("C300")[0]
    await harness.wait_for_text("C300", root.ts, lambda t: "Answer 1: What is a payload?" in t)


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_an_unknown_charset_is_read_as_utf8(harness: Harness) -> None:
    body = event_with(channel="C301", text="<@UBOT> Who was Zenobia?")
    status, _ = await harness.events.send_raw(body, "application/json; charset=no-such-charset")
    assert status == 200
    replies = await harness.wait_for_bot_replies("C301", "1700000000.000001", 1)
    assert harness.slack.visible_text("C301", replies[0].ts) == "Answer 1: Who was Zenobia?"
