"""Usage and cost seen from Slack: /tutor usage, the usage line under answers, daily budgets."""

from __future__ import annotations

import json
import re

import pytest

from bot.local.slack_api import blocks_text
from bot.settings import BackendKind, StreamingMode
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
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
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


async def test_with_show_usage_each_answer_ends_with_its_tokens_and_cost(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> None:
    async with running_harness(
        redis_server.url, redis_prefix, backend, show_usage=True, streaming=StreamingMode.NATIVE,
        prices=parse_prices("gpt-5.4-mini=0.25/0.025/2.00"),
    ) as harness:  # fmt: skip
        # In a thread the answer streams natively: the line comes with chat.stopStream.
        root = await harness.mention_streamed(CHANNEL, USER, "<@UBOT> [long:300] Who was Hannibal?")
        [streamed] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
        assert streamed.streamed
        answer, line = harness.slack.visible_text(CHANNEL, streamed.ts).rsplit("\n", 1)
        assert answer.startswith("Answer 1: Who was Hannibal?") and len(answer) == 300
        assert re.fullmatch(r"Tokens: [\d,]+ in · [\d,]+ out · ≈ \$0\.\d+", line), line

        # A long answer in a top-level DM: the line is under its last message only.
        dm = "D800"
        await harness.events.dm(dm, USER, "[long:9000] Tell me all")
        await harness.slack.wait_for(lambda: "Tokens:" in "".join(_dm_texts(harness, dm)))
        await harness.wait_idle()
        texts = _dm_texts(harness, dm)
        assert len(texts) >= 3 and "Paragraph 1" in texts[0]
        assert [("Tokens:" in text) for text in texts] == [False] * (len(texts) - 1) + [True]

        # Through a /tutor command's response_url, the line ends the answer's blocks.
        harness.slack.channels_without_bot.add("C_OUT")
        await harness.events.slash_command(
            "/tutor", "Who built Petra?", channel_id="C_OUT", user_id=USER,
            response_url=harness.slack.new_response_url(),
        )  # fmt: skip
        await harness.slack.wait_for(
            lambda: any(
                "Tokens:" in blocks_text(p.get("blocks") or [])
                for p in harness.slack.response_url_posts
            )
        )
        [shown] = [
            p for p in harness.slack.response_url_posts if p.get("response_type") == "in_channel"
        ]
        shown_text = blocks_text(shown["blocks"])
        assert "Answer 1: Who built Petra?" in shown_text
        assert shown_text.splitlines()[-1].startswith("Tokens:") and "≈ $" in shown_text


def _dm_texts(harness: Harness, channel: str) -> list[str]:
    return [
        harness.slack.visible_text(channel, m.ts)
        for m in harness.slack.channel_top_level(channel)
        if m.bot_id
    ]


async def test_a_spent_daily_budget_gets_a_message_and_sends_nothing_to_the_model(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> None:
    async with running_harness(
        redis_server.url, redis_prefix, backend, daily_tokens_per_user=1
    ) as harness:
        await ask(harness, USER, "Who was Hannibal?")  # within budget: it spends it
        await harness.wait_idle()
        requests = len(harness.openai.requests)

        _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> And Scipio?")
        [reply] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
        text = harness.slack.visible_text(CHANNEL, reply.ts)
        assert "You have used your 1 tokens for today" in text
        assert "midnight UTC" in text
        await harness.wait_idle()
        assert len(harness.openai.requests) == requests, "nothing sent to the model"

        await ask(harness, OTHER, "Who was Hasdrubal?")  # another person's budget is whole
        assert len(harness.openai.requests) > requests
