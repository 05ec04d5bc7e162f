"""What the local chat shows of the bot: its messages and edits, and notes only you see."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.local.bot_messages import BotMessages, Shown
from bot.local.slack_api import SlackStandIn


async def test_a_note_only_the_asker_sees_is_shown_as_such() -> None:
    slack = SlackStandIn()
    client = AsyncWebClient(token=slack.token, base_url=await slack.start())
    try:
        watched = BotMessages(slack, "D1")
        await client.chat_postEphemeral(channel="D1", user="U1", text="too long")
        await client.chat_postEphemeral(channel="D2", user="U1", text="elsewhere")
        posted = await client.chat_postMessage(channel="D1", text="Answer 1: hi")
        assert watched.has_news()
        assert watched.news() == [
            Shown(posted["ts"], "Answer 1: hi", edit=False),
            Shown("", "too long", edit=False, only_you=True),
        ]
        assert not watched.has_news() and watched.news() == []
    finally:
        await slack.stop()
