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
from typing import Any
from urllib.parse import urlencode

import aiohttp

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
        **options: Any,
    ) -> tuple[int, str, str]:
        """An `app_mention`; returns (status, body, the message's ts)."""
        ts = ts or self.next_ts()
        event = {"type": "app_mention", "channel": channel, "user": user, "text": text, "ts": ts}
        if thread_ts:
            event["thread_ts"] = thread_ts
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
            "trigger_id": trigger_id or f"{next(_MESSAGE_COUNTER)}.{uuid.uuid4().hex[:8]}",
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
    ) -> tuple[int, str]:
        """A button click (`block_actions`), form-encoded as `payload=<json>` like Slack."""
        payload = {
            "type": "block_actions",
            "team": {"id": self.team_id},
            "user": {"id": user_id, "team_id": self.team_id},
            "api_app_id": self.api_app_id,
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "channel": {"id": channel},
            "message": {"ts": message_ts, "type": "message"},
            "response_url": response_url,
            "trigger_id": f"{next(_MESSAGE_COUNTER)}.{uuid.uuid4().hex[:8]}",
            "actions": [
                {"type": "button", "action_id": action_id, "block_id": "b1", "value": value,
                 "action_ts": str(time.time())}
            ],
        }  # fmt: skip
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
    ) -> tuple[int, str]:
        """A message shortcut (`message_action`) used on the message `message_ts` (a reply
        in the thread `thread_ts`, if given), form-encoded as `payload=<json>` like Slack."""
        message: dict[str, Any] = {"type": "message", "ts": message_ts, "text": "…"}
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
