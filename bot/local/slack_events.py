"""Sending the bot requests the way Slack does: signed events, slash commands, button clicks
and message shortcuts.

Tests, benchmarks and the offline mode use it to play Slack's side of the Events API.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bot.local.slack_views import state_values

# Shared by every sender in the process: two senders must never reuse a message ts.
_MESSAGE_COUNTER = itertools.count(1)
_EPOCH = int(time.time())


def sign(secret: str, timestamp: int | str, body: str | bytes) -> str:
    """Slack's v0 signature: HMAC-SHA256 over `v0:{timestamp}:{body}`."""
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + raw, hashlib.sha256)
    return "v0=" + digest.hexdigest()


class SlackEventSender:
    """Plays Slack towards one bot URL (`…/slack/events`)."""

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        *,
        team_id: str = "T1",
        api_app_id: str = "A1",
        bot_user_id: str = "UBOT",
    ) -> None:
        self.bot_url = bot_url
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.bot_user_id = bot_user_id
        self.last_event_id: str | None = None
        # Where trigger_ids come from: the Slack stand-in's `issue_trigger`, so that the
        # views.open of a command or a click is checked as Slack checks it.
        self.issue_trigger: Callable[[str], str] | None = None
        self._session: aiohttp.ClientSession | None = None

    def next_ts(self) -> str:
        """A fresh, increasing message ts, like the ones Slack gives users' messages."""
        return f"{_EPOCH}.{next(_MESSAGE_COUNTER):06d}"

    async def send_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        signature: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[int, str]:
        """Deliver `event` in an event_callback envelope; (HTTP status, body)."""
        event_id = event_id or "Ev" + uuid.uuid4().hex[:12].upper()
        self.last_event_id = event_id
        envelope = {
            "token": "legacy-verification-token",
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": {"event_ts": event.get("ts", self.next_ts()), **event},
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": self.team_id, "user_id": self.bot_user_id, "is_bot": True}
            ],
            "is_ext_shared_channel": False,
            "event_context": "4-" + uuid.uuid4().hex,
        }
        headers = {"Content-Type": "application/json"}
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        return await self._post(json.dumps(envelope), headers, signature, timestamp)

    async def mention(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        ts: str | None = None,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
        **options: Any,
    ) -> tuple[int, str, str]:
        """An `app_mention` (with its `files`); returns (status, body, the message's ts)."""
        ts = ts or self.next_ts()
        event: dict[str, Any] = {
            "type": "app_mention", "channel": channel, "user": user, "text": text, "ts": ts
        }  # fmt: skip
        if thread_ts:
            event["thread_ts"] = thread_ts
        if files:
            event["files"] = files
        status, body = await self.send_event(event, **options)
        return status, body, ts

    async def channel_message(
        self, channel: str, user: str, text: str, *, ts: str | None = None,
        thread_ts: str | None = None, **options: Any,
    ) -> tuple[int, str, str]:  # fmt: skip
        """A `message` event in a channel (the copy of a mention that `message.channels` sends)."""
        return await self._message(channel, "channel", user, text, ts, thread_ts, options)

    async def dm(
        self, channel: str, user: str, text: str, *, ts: str | None = None,
        thread_ts: str | None = None, **options: Any,
    ) -> tuple[int, str, str]:  # fmt: skip
        """A direct message to the bot (`message` with `channel_type` im)."""
        return await self._message(channel, "im", user, text, ts, thread_ts, options)

    async def _message(
        self, channel: str, channel_type: str, user: str, text: str, ts: str | None,
        thread_ts: str | None, options: dict[str, Any],
    ) -> tuple[int, str, str]:  # fmt: skip
        ts = ts or self.next_ts()
        event = {"type": "message", "channel": channel, "channel_type": channel_type,
                 "user": user, "text": text, "ts": ts}  # fmt: skip
        if thread_ts:
            event["thread_ts"] = thread_ts
        files = options.pop("files", None)
        if files:  # a message with files is Slack's `file_share` subtype
            event.update(subtype="file_share", files=files, upload=True)
        status, body = await self.send_event(event, **options)
        return status, body, ts

    async def slash_command(
        self,
        command: str,
        text: str,
        *,
        channel_id: str,
        user_id: str,
        response_url: str,
        trigger_id: str | None = None,
        team_id: str | None = None,
        channel_name: str = "general",
    ) -> tuple[int, str]:
        """A slash command, form-encoded and signed as Slack sends it."""
        form = {
            "token": "legacy-verification-token",
            "team_id": team_id or self.team_id,
            "team_domain": "standin",
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or self._trigger(user_id),
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return await self._post(urlencode(form), headers, None, None)

    async def click(
        self,
        *,
        channel: str,
        message_ts: str,
        user_id: str,
        action_id: str,
        value: str,
        response_url: str,
        thread_ts: str | None = None,
        message: dict[str, Any] | None = None,
    ) -> tuple[int, str]:
        """A button click (`block_actions`), form-encoded as `payload=<json>` like Slack;
        `thread_ts`: the thread of the message clicked, if it is a reply; `message`: its
        text and blocks, which Slack's payload carries too."""
        action = {"type": "button", "action_id": action_id, "block_id": "b1", "value": value}
        return await self.block_action(
            action, channel=channel, message_ts=message_ts, user_id=user_id,
            response_url=response_url, thread_ts=thread_ts, message=message,
        )  # fmt: skip

    async def feedback_click(
        self,
        element: dict[str, Any],
        *,
        positive: bool,
        channel: str,
        message_ts: str,
        user_id: str,
        response_url: str,
        block_id: str = "fb1",
    ) -> tuple[int, str]:
        """A click on one of a `feedback_buttons` element's buttons (the element as the bot
        sent it), as Slack reports it: the clicked button's text and value."""
        button = element["positive_button" if positive else "negative_button"]
        action = {
            "type": "feedback_buttons",
            "action_id": element["action_id"],
            "block_id": block_id,
            "text": button["text"],
            "value": button["value"],
        }
        return await self.block_action(
            action, channel=channel, message_ts=message_ts, user_id=user_id,
            response_url=response_url,
        )  # fmt: skip

    async def input_entered(
        self,
        input_block: dict[str, Any],
        text: str,
        *,
        channel: str,
        message_ts: str,
        user_id: str,
        response_url: str,
    ) -> tuple[int, str]:
        """Enter pressed in a `plain_text_input` with `dispatch_action` (the input block as the
        bot sent it) in an ephemeral message: Slack sends the text as a `block_actions`."""
        element = input_block["element"]
        action = {"type": "plain_text_input", "action_id": element["action_id"],
                  "block_id": input_block["block_id"], "value": text}  # fmt: skip
        return await self.block_action(
            action, channel=channel, message_ts=message_ts, user_id=user_id,
            response_url=response_url, ephemeral=True,
        )  # fmt: skip

    async def block_action(
        self,
        action: dict[str, Any],
        *,
        channel: str,
        message_ts: str,
        user_id: str,
        response_url: str,
        ephemeral: bool = False,
        thread_ts: str | None = None,
        message: dict[str, Any] | None = None,
    ) -> tuple[int, str]:
        """One `block_actions` interaction on a message, form-encoded as `payload=<json>`
        (`message`: the clicked message's fields, such as its text and blocks)."""
        container: dict[str, Any] = {"type": "message", "message_ts": message_ts,
                                     "channel_id": channel, "is_ephemeral": ephemeral}  # fmt: skip
        payload = {
            "type": "block_actions",
            "team": {"id": self.team_id},
            "user": {"id": user_id, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "container": container,
            "channel": {"id": channel},
            "response_url": response_url,
            "trigger_id": self._trigger(user_id),
            "actions": [{**action, "action_ts": str(time.time())}],
        }
        if not ephemeral:
            payload["message"] = {**(message or {}), "ts": message_ts, "type": "message"}
            if thread_ts:
                payload["message"]["thread_ts"] = thread_ts
        return await self._interaction(payload)

    async def select_in_home(
        self, view: dict[str, Any], action_id: str, value: str, *, user_id: str
    ) -> tuple[int, str]:
        """`user_id` picks the option `value` of the static select `action_id` in their Home
        tab (the view as published): a `block_actions` from a view, as Slack sends it."""
        block, element = _element_of(view, action_id)
        chosen = next(o for o in element["options"] if o["value"] == value)
        action = {"type": "static_select", "action_id": action_id, "block_id": block["block_id"],
                  "selected_option": chosen, "placeholder": element.get("placeholder"),
                  "action_ts": str(time.time())}  # fmt: skip
        payload = {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": "standin"},
            "user": {"id": user_id, "username": user_id.lower(), "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "token": "legacy-verification-token",
            "container": {"type": "view", "view_id": view["id"]},
            "trigger_id": self._trigger(user_id),
            "view": view,
            "actions": [action],
            "is_enterprise_install": False,
        }
        return await self._interaction(payload)

    async def submit_view(
        self, view: dict[str, Any], *, user_id: str, answers: dict[str, Any] | None = None
    ) -> tuple[int, str]:
        """`user_id` submits a modal (the view as views.open returned it), with `answers` by
        block id typed over its initial values: a `view_submission`, as Slack sends it."""
        submitted = {**view, "state": {"values": state_values(view, answers or {})}}
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": "standin"},
            "user": {
                "id": user_id,
                "username": user_id.lower(),
                "name": user_id.lower(),
                "team_id": self.team_id,
            },
            "api_app_id": self.api_app_id,
            "token": "legacy-verification-token",
            "trigger_id": self._trigger(user_id),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return await self._interaction(payload)

    async def app_home_opened(
        self, user_id: str, *, tab: str = "home", view: dict[str, Any] | None = None
    ) -> tuple[int, str]:
        """`user_id` opens the app's Home (or Messages) tab; `view`: the Home published
        before, which Slack sends along."""
        event: dict[str, Any] = {"type": "app_home_opened", "user": user_id,
                                 "channel": "D" + user_id.removeprefix("U"), "tab": tab,
                                 "event_ts": self.next_ts()}  # fmt: skip
        if view is not None:
            event["view"] = view
        return await self.send_event(event)

    def _trigger(self, user_id: str) -> str:
        if self.issue_trigger is not None:
            return self.issue_trigger(user_id)
        return f"{next(_MESSAGE_COUNTER)}.{uuid.uuid4().hex[:8]}"

    async def _interaction(self, payload: dict[str, Any]) -> tuple[int, str]:
        """An interaction payload, form-encoded as `payload=<json>` and signed, like Slack."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return await self._post(urlencode({"payload": json.dumps(payload)}), headers, None, None)

    async def message_shortcut(
        self,
        callback_id: str,
        *,
        channel: str,
        message_ts: str,
        user_id: str,
        response_url: str,
        thread_ts: str | None = None,
        author: str | None = None,
        text: str = "…",
    ) -> tuple[int, str]:
        """A message shortcut (`message_action`) used on the message `message_ts` (a reply
        in the thread `thread_ts`, if given; written by `author`, saying `text`),
        form-encoded as `payload=<json>` like Slack."""
        message: dict[str, Any] = {"type": "message", "ts": message_ts, "text": text}
        if thread_ts:
            message["thread_ts"] = thread_ts
        if author:
            message["user"] = author
        payload = {
            "type": "message_action",
            "token": "legacy-verification-token",
            "action_ts": str(time.time()),
            "callback_id": callback_id,
            "trigger_id": f"{next(_MESSAGE_COUNTER)}.{uuid.uuid4().hex[:8]}",
            "response_url": response_url,
            "team": {"id": self.team_id, "domain": "standin"},
            "user": {"id": user_id, "team_id": self.team_id, "username": user_id.lower()},
            "channel": {
                "id": channel,
                "name": "directmessage" if channel[:1] == "D" else "general",
            },
            "is_enterprise_install": False,
            "enterprise": None,
            "message": message,
            "message_ts": message_ts,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return await self._post(urlencode({"payload": json.dumps(payload)}), headers, None, None)

    async def agent_session_stopped(
        self, channel: str, thread_ts: str, user: str, streaming_message_ts: list[str]
    ) -> tuple[int, str]:
        """Someone clicked the native Stop of a thread's agent session (`streaming_message_ts`:
        the app's streams Slack stopped for it)."""
        event = {"type": "agent_session_stopped", "channel": channel, "thread_ts": thread_ts,
                 "user": user, "streaming_message_ts": streaming_message_ts,
                 "event_ts": self.next_ts()}  # fmt: skip
        return await self.send_event(event)

    async def url_verification(self, challenge: str) -> tuple[int, str]:
        body = json.dumps({"token": "t", "challenge": challenge, "type": "url_verification"})
        return await self._post(body, {"Content-Type": "application/json"}, None, None)

    async def send_raw(
        self,
        body: bytes,
        content_type: str = "application/json",
        *,
        signed: bool = True,
        timestamp: str | None = None,
    ) -> tuple[int, str]:
        """Post `body` exactly as given (tests of bad input): signed with the signing secret
        unless `signed` is False, under `timestamp` (any text) or now."""
        timestamp = str(int(time.time())) if timestamp is None else timestamp
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp}
        if signed:
            headers["X-Slack-Signature"] = sign(self.signing_secret, timestamp, body)
        return await self._send(body, headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(
        self, body: str, headers: dict[str, str], signature: str | None, timestamp: int | None
    ) -> tuple[int, str]:
        timestamp = int(time.time()) if timestamp is None else timestamp
        headers = {
            **headers,
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": signature or sign(self.signing_secret, timestamp, body),
        }
        return await self._send(body.encode(), headers)

    async def _send(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        async with self._session.post(self.bot_url, data=body, headers=headers) as r:
            return r.status, await r.text()


def _element_of(view: dict[str, Any], action_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(block, element) of the element with `action_id` in a view (accessory or actions)."""
    for block in view.get("blocks", []):
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("action_id") == action_id:
            return block, accessory
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    raise LookupError(f"no element {action_id} in the view")
