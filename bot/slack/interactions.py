"""What the button, shortcut and command listeners share: who clicked where, and the notes
only that person sees (through the click's `respond`, or a `response_url`).

Listeners run before Slack gets its ack (`process_before_response`): what a click changes is
stored before it, under the ack path's bound, and the notes go out after it (spawned), each
bounded, so a slow `response_url` neither delays the ack nor leaves a task hanging.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncRespond
from slack_sdk.webhook.async_client import AsyncWebhookClient

log = logging.getLogger(__name__)

# A note through a response_url (Slack answers in well under a second).
NOTE_SECONDS = 10.0


@dataclass(frozen=True)
class Clicker:
    """Who clicked (or used a shortcut), in which workspace and channel ("" where the
    payload does not say)."""

    user_id: str
    team_id: str
    channel_id: str


def clicker_of(body: dict[str, Any]) -> Clicker:
    """The clicker of an interaction payload (block_actions, message_action); parts that are
    missing or not objects count as absent."""
    user, team, channel, container = (
        value if isinstance(value := body.get(name), dict) else {}
        for name in ("user", "team", "channel", "container")
    )
    return Clicker(
        str(user.get("id") or ""),
        str(team.get("id") or user.get("team_id") or ""),
        str(channel.get("id") or container.get("channel_id") or ""),
    )


async def tell_clicker(
    respond: AsyncRespond,
    text: str,
    *,
    blocks: list[dict[str, Any]] | None = None,
    replace: bool = False,
) -> None:
    """An ephemeral note to the clicker, beside the clicked message (or in its place, with
    `replace`); bounded, and a failure is logged rather than raised: nothing else waits on it."""
    try:
        async with asyncio.timeout(NOTE_SECONDS):
            await respond(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=replace
            )
    except Exception as error:  # the network, Slack: the click itself was handled
        log.warning("a note to the clicker could not be sent (%s)", type(error).__name__)


async def send_ephemeral(
    response_url: str | None, text: str, blocks: list[dict[str, Any]] | None = None
) -> None:
    """An ephemeral message through a command's or shortcut's `response_url`, beside what is
    there; bounded, and a failure (or no url) is logged rather than raised."""
    if not response_url:
        log.warning("no response_url to send an ephemeral note through")
        return
    try:
        async with asyncio.timeout(NOTE_SECONDS):
            response = await AsyncWebhookClient(response_url, timeout=int(NOTE_SECONDS)).send(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=False
            )
    except Exception as error:  # the network, Slack: nothing more can be done for this note
        log.warning("an ephemeral note could not be sent (%s)", type(error).__name__)
        return
    if response.status_code != 200:
        log.warning("Slack refused an ephemeral note (%s %s)", response.status_code, response.body)
