"""What `doctor` reads from the stand-ins, in the shapes the real APIs document: the Models
API (with shutdown_date) of the OpenAI stand-in; x-oauth-scopes, users.list and
conversations.open of the Slack stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.slack.scopes import REQUIRED_BOT_SCOPES

MODEL_FIELDS = {"id", "object", "created", "owned_by", "shutdown_date"}


@pytest.fixture
async def openai_stand_in() -> AsyncIterator[OpenAIStandIn]:
    server = OpenAIStandIn(models={"gpt-5.4-mini": None, "gpt-5": "2026-12-11"})
    await server.start()
    yield server
    await server.stop()


async def test_models_are_served_in_the_documented_shape(openai_stand_in: OpenAIStandIn) -> None:
    client = openai.AsyncOpenAI(base_url=openai_stand_in.base_url, api_key="sk", max_retries=0)
    try:
        model = await client.models.retrieve("gpt-5")
        page = await client.models.list()
        with pytest.raises(openai.NotFoundError) as raised:
            await client.models.retrieve("gpt-9")
    finally:
        await client.close()
    assert model.id == "gpt-5" and model.object == "model" and model.owned_by
    assert model.shutdown_date == "2026-12-11" and model.model_extra == {}
    assert set(model.model_dump()) == MODEL_FIELDS
    assert [m.id for m in page.data] == ["gpt-5.4-mini", "gpt-5"]
    assert page.data[0].shutdown_date is None
    assert raised.value.code == "model_not_found" and raised.value.status_code == 404
    assert "gpt-9" in raised.value.message


async def test_the_catalogue_can_change_and_the_models_api_be_left_out(
    openai_stand_in: OpenAIStandIn,
) -> None:
    openai_stand_in.models["Qwen/Qwen2.5-7B-Instruct"] = None
    url = openai_stand_in.base_url + "/models/Qwen/Qwen2.5-7B-Instruct"
    headers = {"Authorization": "Bearer sk"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(url) as found:
            assert found.status == 200
            assert (await found.json())["id"] == "Qwen/Qwen2.5-7B-Instruct"
        openai_stand_in.leave_out("models")
        async with session.get(url) as gone:
            assert gone.status == 404
            assert (await gone.json())["error"]["message"].startswith("Invalid URL")


async def test_every_answer_names_the_token_s_scopes(slack: SlackStandIn) -> None:
    client = AsyncWebClient(token="xoxb-ok", base_url=slack.base_url)
    response = await client.auth_test()
    assert response.headers["x-oauth-scopes"] == ",".join(REQUIRED_BOT_SCOPES)
    slack.scopes = ("chat:write", "commands")
    response = await client.auth_test()
    assert response.headers["x-oauth-scopes"] == "chat:write,commands"


async def test_users_list_pages_through_the_workspace(slack: SlackStandIn) -> None:
    for n in range(4):
        slack.add_user(f"U{n}00", is_admin=n == 2)
    client = AsyncWebClient(token="xoxb-ok", base_url=slack.base_url)
    seen: list[str] = []
    cursor = None
    while True:
        page = await client.users_list(limit=2, cursor=cursor)
        seen += [member["id"] for member in page["members"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen == ["UBOT", "U000", "U100", "U200", "U300"]
    assert next(m for m in slack.users if m["id"] == "U200")["is_admin"] is True


async def test_conversations_open_gives_the_bot_s_dm_with_a_user(slack: SlackStandIn) -> None:
    slack.add_user("U7")
    client = AsyncWebClient(token="xoxb-ok", base_url=slack.base_url)
    opened = await client.conversations_open(users="U7")
    channel = opened["channel"]["id"]
    assert channel.startswith("D")
    await client.chat_postMessage(channel=channel, text="hello")
    assert [m.text for m in slack.channel_top_level(channel)] == ["hello"]
    with pytest.raises(SlackApiError, match="user_not_found"):
        await client.conversations_open(users="U404")
