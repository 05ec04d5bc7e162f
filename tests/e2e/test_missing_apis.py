"""A model server without the API the backend needs (self-hosted servers have no
Conversations or Assistants API): the user and the log are told plainly what to set."""

from __future__ import annotations

import logging

import pytest

from bot.settings import BackendKind
from tests.e2e.conftest import Harness

CHANNEL = "C500"
USER = "U500"


@pytest.mark.parametrize(
    ("backend", "left_out", "api"),
    [
        (BackendKind.RESPONSES, "conversations", "Conversations API"),
        (BackendKind.RESPONSES, "responses", "Responses API"),
        (BackendKind.ASSISTANTS, "assistants", "Assistants API"),
    ],
    ids=["no-conversations", "no-responses", "no-assistants"],
)
async def test_a_missing_api_is_named_with_the_setting_to_change(
    harness: Harness, left_out: str, api: str, caplog: pytest.LogCaptureFixture
) -> None:
    harness.openai.leave_out(left_out)
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> Who was Pericles?")
    [reply] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    text = harness.slack.visible_text(CHANNEL, reply.ts)
    assert text.endswith(
        f"Sorry, the model server does not offer the {api}. "
        "Whoever runs the tutor should set TUTOR_BACKEND=chat."
    )
    assert "rejected" not in text and "my side" not in text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(api in w and "TUTOR_BACKEND=chat" in w for w in warnings), warnings


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_an_unknown_model_is_not_mistaken_for_a_missing_api(harness: Harness) -> None:
    harness.openai.fail_next("POST", r"/responses$", 404, count=5, code="model_not_found")
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> Who was Cimon?")
    [reply] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    text = harness.slack.visible_text(CHANNEL, reply.ts)
    assert "does not know the model" in text and "TUTOR_BACKEND" not in text
