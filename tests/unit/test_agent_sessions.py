"""Agent session calls: only the four statuses, a title once, and no sessions where the app
is no agent (TUTOR_AGENT_SESSIONS auto remembers that per workspace; off never calls)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.local.slack_api import SlackStandIn
from bot.settings import AgentSessionsMode
from bot.slack.agent_sessions import (
    NOT_AN_AGENT_FOR_SECONDS,
    AgentSessions,
    SessionStatus,
    status_after,
)
from bot.slack.workspaces import OneWorkspace
from bot.storage.keys import Keys
from bot.turns.models import Turn, TurnSource

PROCESSING = SessionStatus.PROCESSING


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def sessions(
    mode: AgentSessionsMode, client: AsyncWebClient, redis: Redis, keys: Keys, clock: Clock
) -> AgentSessions:
    clients = OneWorkspace(client)
    return AgentSessions(mode, clients, clients, redis, keys, clock=clock)


def tries(slack: SlackStandIn) -> list[tuple[str, str | None]]:
    return [(c.method, c.error) for c in slack.calls if c.method.startswith("agents.")]


async def test_auto_leaves_a_workspace_alone_for_an_hour_once_slack_says_not_an_agent(
    slack: SlackStandIn, client: AsyncWebClient, redis: Redis, keys: Keys
) -> None:
    slack.agent_app = False
    clock = Clock()
    auto = sessions(AgentSessionsMode.AUTO, client, redis, keys, clock)
    assert not await auto.set_status("T1", "C1", "1.1", PROCESSING)
    assert not await auto.set_status("T1", "C1", "1.1", PROCESSING)
    assert not auto.enabled("T1") and auto.enabled("T2")
    assert tries(slack) == [("agents.sessions.setStatus", "not_authorized")]
    slack.agent_app = True  # declared an agent meanwhile
    clock.now += NOT_AN_AGENT_FOR_SECONDS
    assert await auto.set_status("T1", "C1", "1.1", PROCESSING)


async def test_on_keeps_trying_and_off_never_calls(
    slack: SlackStandIn, client: AsyncWebClient, redis: Redis, keys: Keys
) -> None:
    slack.agent_app = False
    on = sessions(AgentSessionsMode.ON, client, redis, keys, Clock())
    for _ in range(2):
        assert not await on.set_status("T1", "C1", "1.1", PROCESSING)
    assert len(tries(slack)) == 2 and on.enabled("T1")
    slack.agent_app = True
    off = sessions(AgentSessionsMode.OFF, client, redis, keys, Clock())
    assert not await off.set_status("T1", "C1", "1.1", PROCESSING)
    await off.give_title(turn("Who was Cato?"), "1.1")
    assert len(tries(slack)) == 2, "off: nothing called"


def turn(text: str, key: str = "T1:C1:1.1") -> Turn:
    return Turn(key, "T1", "C1", "1.1", "U1", text, TurnSource.MENTION)


async def test_the_first_question_titles_the_session_once(
    slack: SlackStandIn, client: AsyncWebClient, redis: Redis, keys: Keys
) -> None:
    auto = sessions(AgentSessionsMode.AUTO, client, redis, keys, Clock())
    await auto.set_status("T1", "C1", "1.1", PROCESSING)
    long_question = "Why  did the Western Roman Empire fall, and " + "why " * 30 + "?"
    await auto.give_title(turn(long_question), "1.1")
    await auto.give_title(turn("And the Eastern one?"), "1.1")
    [rename] = slack.calls_to("agents.sessions.rename")
    title = rename.args["title"]
    assert title.startswith("Why did the Western Roman Empire fall") and len(title) <= 60
    assert slack.agent_sessions[("C1", "1.1")].title == title


async def test_the_stand_in_takes_only_the_four_statuses_as_slack_documents(
    client: AsyncWebClient,
) -> None:
    with pytest.raises(SlackApiError) as refused:
        await client.agents_sessions_setStatus(
            channel_id="C1", thread_ts="1.1", status="is thinking…"
        )
    assert refused.value.response["error"] == "invalid_arguments"
    with pytest.raises(SlackApiError) as missing:
        await client.agents_sessions_rename(channel_id="C1", thread_ts="1.1", title="A title")
    assert missing.value.response["error"] == "session_not_found"


def test_an_answer_that_asks_the_learner_something_leaves_the_session_waiting() -> None:
    assert status_after("What do you already know about Rome?\n") is SessionStatus.SUSPENDED
    assert status_after("Rome fell in 476.") is SessionStatus.ACTIVE
