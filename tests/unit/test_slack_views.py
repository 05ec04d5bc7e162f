"""The Slack stand-in's views as the real slack_sdk client sees them: views.open takes a fresh
trigger_id once and checks the modal, views.publish keeps each user's Home."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.local.slack_api import SlackStandIn
from bot.local.slack_views import state_values
from bot.slack.course_modal import course_modal, submitted_form


async def refused(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return str(raised.value.response["error"])


async def test_a_trigger_opens_one_modal_within_three_seconds(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    modal = course_modal("C1", None)
    trigger = slack.issue_trigger("U1")
    opened = await client.views_open(trigger_id=trigger, view=modal)
    assert opened["view"]["id"].startswith("V") and opened["view"]["callback_id"] == "tutor_course"
    assert slack.modal_of("U1")["id"] == opened["view"]["id"]
    assert (
        await refused(client.views_open(trigger_id=trigger, view=modal)) == "exchanged_trigger_id"
    )
    assert (
        await refused(client.views_open(trigger_id="1.2.abc", view=modal)) == "invalid_trigger_id"
    )
    now = [100.0]
    slack.triggers.clock = lambda: now[0]
    late = slack.issue_trigger("U1")
    now[0] += 3.5
    assert await refused(client.views_open(trigger_id=late, view=modal)) == "expired_trigger_id"


@pytest.mark.parametrize(
    "broken",
    [
        {"title": {"type": "plain_text", "text": "A title much longer than Slack allows"}},
        {"submit": None},
        {"blocks": [{"type": "divider"}] * 101},
        {"private_metadata": "x" * 3001},
    ],
    ids=["long title", "inputs without submit", "101 blocks", "long metadata"],
)
async def test_views_open_refuses_a_modal_slack_would_refuse(
    slack: SlackStandIn, client: AsyncWebClient, broken: dict[str, Any]
) -> None:
    modal = {**course_modal("C1", None), **broken}
    modal = {k: v for k, v in modal.items() if v is not None}
    trigger = slack.issue_trigger("U1")
    assert await refused(client.views_open(trigger_id=trigger, view=modal)) == "invalid_arguments"


async def test_a_select_must_start_on_one_of_its_options(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    modal = course_modal("C1", None)
    [length] = [b for b in modal["blocks"] if b.get("block_id") == "course_length"]
    select = length["element"]
    select["initial_option"] = {"text": {"type": "plain_text", "text": "Huge"}, "value": "huge"}
    trigger = slack.issue_trigger("U1")
    assert await refused(client.views_open(trigger_id=trigger, view=modal)) == "invalid_arguments"


async def test_views_publish_keeps_each_users_home(
    slack: SlackStandIn, client: AsyncWebClient
) -> None:
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}],
    }
    first = await client.views_publish(user_id="U1", view=home)
    again = await client.views_publish(user_id="U1", view=home)
    assert first["view"]["id"] == again["view"]["id"], "one Home per user"
    assert slack.home_views["U1"]["blocks"][0]["block_id"], "Slack names every block"
    modal_as_home = {**course_modal("C1", None), "type": "home"}
    assert (
        await refused(client.views_publish(user_id="U1", view=modal_as_home)) == "invalid_arguments"
    )
    assert await refused(client.views_publish(user_id="", view=home)) == "invalid_arguments"


def test_a_submission_carries_the_inputs_over_their_initial_values() -> None:
    modal = course_modal("C1", None)
    values = state_values(modal, {"course_name": "Physics", "course_length": "long"})
    form = submitted_form({**modal, "state": {"values": values}})
    assert (form.name, form.subject, form.mode, form.length) == ("Physics", None, "guided", "long")
