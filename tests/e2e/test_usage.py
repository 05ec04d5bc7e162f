"""Usage and cost seen from Slack: /tutor usage, the usage line under answers, daily budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.settings import BackendKind
from bot.tutor.prices import parse_prices
from tests.conftest import RedisServer
from tests.e2e.conftest import Harness, running_harness

pytestmark = pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
CHANNEL = "C800"
USER = "U800"
OTHER = "U801"


async def ask(harness: Harness, user: str, question: str) -> str:
    _, _, root = await harness.events.mention(CHANNEL, user, f"<@UBOT> {question}")
    await harness.wait_for_bot_replies(CHANNEL, root, 1)
    return root


async def usage_command(harness: Harness, user: str) -> str:
    status, body = await harness.events.slash_command(
        "/tutor", "usage", channel_id=CHANNEL, user_id=user, response_url="http://unused"
    )
    assert status == 200
    answer = json.loads(body)
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"])


async def test_tutor_usage_shows_the_askers_own_figures(harness: Harness) -> None:
    await ask(harness, USER, "Who was Hannibal?")
    await ask(harness, OTHER, "Who was Scipio?")
    await harness.wait_idle()
    text = await usage_command(harness, USER)
    assert "*Your usage*" in text and "in 1 question: " in text
    assert "This workspace" not in text, "members see only their own figures"
    assert "$" not in text, "no prices set"
    assert [call.args["user"] for call in harness.slack.calls_to("users.info")] == [USER]


async def test_tutor_usage_shows_admins_the_workspace_and_costs(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind, tmp_path: Path
) -> None:
    prices = parse_prices("gpt-5.4-mini=0.25/0.025/2.00")
    async with running_harness(
        redis_server.url, redis_prefix, backend, prices=prices, admins=frozenset({"UCONF"})
    ) as harness:
        harness.slack.workspace_owners.add(USER)
        await ask(harness, USER, "Who was Hannibal?")
        await ask(harness, OTHER, "Who was Scipio?")
        await harness.wait_idle()
        for admin in (USER, "UCONF"):
            text = await usage_command(harness, admin)
            assert "*This workspace* (you see it as an admin)" in text
            workspace = text.split("*This workspace*")[1]
            assert workspace.count("in 2 questions: ") == 2, "today and this month"
            assert "≈ $" in workspace
        text = await usage_command(harness, OTHER)
        assert "This workspace" not in text and "≈ $" in text
