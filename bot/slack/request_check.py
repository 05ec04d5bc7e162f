"""Telling Slack's requests from bad input before Bolt sees them.

Bolt answers 500 with a traceback for a signed body it cannot parse or whose fields have
unexpected types (and its listeners would fail on them later), and Slack's signature check
itself raises on a non-numeric timestamp. Here a request that Slack did not sign gets 401,
and a signed one that is no payload the bot can read gets 400; both change nothing.

The shape checks cover what Bolt reads to route a payload and what the bot's listeners
read: events (`app_mention`, `message`, the AI app surfaces, the native Stop), slash
commands, button clicks and message shortcuts. Socket Mode payloads arrive without a
signature and get the same shape checks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

UNSIGNED = 401
MALFORMED = 400
SIGNATURE_WINDOW_SECONDS = 5 * 60  # Slack's, as Bolt enforces it

Payload = dict[str, Any]


class Rejected(Exception):
    """A request the bot refuses: `status` for the answer, `reason` for one log line (names
    fields, never their content)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BadPayload(ValueError):
    """A payload that is not what Slack sends; the message names the field."""


def read_signed_payload(secret: str, body: bytes, headers: Mapping[str, str]) -> Payload:
    """The payload of an HTTP request Slack signed, checked. Raises Rejected (401 or 400)."""
    if not is_signed(secret, body, headers):
        raise Rejected(UNSIGNED, "missing, stale or wrong signature")
    try:
        payload = parse_body(body, headers.get("Content-Type"))
        check_payload(payload)
    except BadPayload as error:
        raise Rejected(MALFORMED, str(error)) from None
    return payload


def is_signed(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """Slack's v0 signature (HMAC-SHA256 over `v0:{timestamp}:{body}`) within its window.

    Computed here over the raw bytes rather than with slack_sdk's SignatureVerifier, which
    raises instead of answering False for a non-numeric timestamp, a non-ASCII signature or
    a body that is not UTF-8.
    """
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not (timestamp.isascii() and timestamp.isdigit() and signature.isascii()):
        return False
    if abs(time.time() - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        return False
    digest = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return hmac.compare_digest("v0=" + digest.hexdigest(), signature)


def parse_body(body: bytes, content_type: str | None) -> Payload:
    """The payload as Bolt reads it: JSON (Events API), or a form (slash commands) whose
    `payload` field holds the JSON of an interaction."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPayload("body is not UTF-8") from None
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type == "application/json" or text.startswith("{"):
        return _json_object(text, "body")
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in form:
        return _json_object(form["payload"], "payload")
    return form


def check_payload(payload: object) -> None:
    """Raise BadPayload unless `payload` has the fields Bolt and the listeners rely on."""
    if not isinstance(payload, dict):
        raise BadPayload("payload is not an object")
    _check_routing_fields(payload, "")
    if "command" in payload:
        _check_command(payload)
        return
    kind = payload.get("type")
    if not isinstance(kind, str) or not kind:
        if "ssl_check" in payload:  # Slack checking the URL's certificate: Bolt answers it
            return
        raise BadPayload("type missing")
    check = _CHECKS_BY_TYPE.get(kind)
    if check is not None:
        check(payload)


# ---- the kinds of payload ------------------------------------------------------------------


def _check_url_verification(payload: Payload) -> None:
    _string(payload, "challenge", required=True)


def _check_event_callback(payload: Payload) -> None:
    _string(payload, "event_id")
    _string(payload, "team_id")
    event = _object(payload, "event", required=True)
    event_type = _string(event, "type", "event.", required=True)
    for field in _EVENT_STRINGS.get(event_type, ()):
        _string(event, field, "event.", required=field in _REQUIRED_EVENT_STRINGS)
    for field in ("message", "previous_message"):  # edits and deletions nest the message
        _object(event, field, "event.")
    if event_type == "app_home_opened" and event.get("tab") == "messages":
        _string(event, "channel", "event.", required=True)
    if event_type == "agent_session_stopped":
        for field in ("channel", "thread_ts", "user"):
            _string(event, field, "event.", required=True)
        streams = event.get("streaming_message_ts")
        if streams is not None and not (
            isinstance(streams, list) and all(isinstance(ts, str) for ts in streams)
        ):
            raise BadPayload("event.streaming_message_ts is not a list of strings")
    if event_type == "assistant_thread_started":
        thread = _object(event, "assistant_thread", "event.")
        for field in ("channel_id", "thread_ts"):
            _string(thread or {}, field, "event.assistant_thread.")


def _check_command(payload: Payload) -> None:
    for field in ("command", "channel_id", "user_id"):
        _string(payload, field, required=True)
    for field in ("text", "team_id", "response_url", "trigger_id"):
        _string(payload, field)


def _check_block_actions(payload: Payload) -> None:
    user = _object(payload, "user", required=True)
    _string(user, "id", "user.", required=True)
    _string(payload, "response_url")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions:
        raise BadPayload("actions is not a list of actions")
    for action in actions:
        if not isinstance(action, dict):
            raise BadPayload("actions[] is not an object")
        _string(action, "action_id", "actions[].", required=True)
        _string(action, "value", "actions[].")


def _check_shortcut(payload: Payload) -> None:
    _string(payload, "callback_id", required=True)


def _check_message_shortcut(payload: Payload) -> None:
    """A message shortcut: who used it, on which message of which channel."""
    _check_shortcut(payload)
    for field in ("response_url", "trigger_id"):
        _string(payload, field)
    user = _object(payload, "user", required=True)
    _string(user, "id", "user.", required=True)
    channel = _object(payload, "channel", required=True)
    _string(channel, "id", "channel.", required=True)
    message = _object(payload, "message", required=True)
    _string(message, "ts", "message.", required=True)
    _string(message, "thread_ts", "message.")


def _check_view(payload: Payload) -> None:
    view = _object(payload, "view", required=True)
    _string(view, "callback_id", "view.", required=True)


_CHECKS_BY_TYPE: dict[str, Callable[[Payload], None]] = {
    "url_verification": _check_url_verification,
    "event_callback": _check_event_callback,
    "block_actions": _check_block_actions,
    "message_action": _check_message_shortcut,
    "shortcut": _check_shortcut,
    "view_submission": _check_view,
    "view_closed": _check_view,
}
_MESSAGE_STRINGS = ("channel", "ts", "user", "text", "thread_ts", "channel_type", "subtype")
_EVENT_STRINGS: dict[str, tuple[str, ...]] = {
    "app_mention": _MESSAGE_STRINGS,
    "message": _MESSAGE_STRINGS,
    "app_home_opened": ("tab",),
}
_REQUIRED_EVENT_STRINGS = frozenset({"channel", "ts"})


# ---- fields --------------------------------------------------------------------------------


def _check_routing_fields(container: Payload, where: str) -> None:
    """What Bolt reads from every payload to build its context: ids as a string or an object
    with an id, authorizations as a list of objects, an event as an object."""
    for field in ("team", "user", "channel", "enterprise"):
        value = container.get(field)
        if value is not None and not isinstance(value, str | dict):
            raise BadPayload(f"{where}{field} is neither a string nor an object")
    authorizations = container.get("authorizations")
    if authorizations is not None:
        if not isinstance(authorizations, list) or not all(
            isinstance(a, dict) for a in authorizations
        ):
            raise BadPayload(f"{where}authorizations is not a list of objects")
        if authorizations:
            _check_routing_fields(authorizations[0], f"{where}authorizations[0].")
    if "event" in container:
        _check_routing_fields(_object(container, "event", where, required=True), "event.")
    if "response_url" not in container and "response_urls" in container:
        urls = container["response_urls"]
        if not isinstance(urls, list) or not all(isinstance(u, dict) for u in urls):
            raise BadPayload(f"{where}response_urls is not a list of objects")


def _string(container: Payload, field: str, where: str = "", *, required: bool = False) -> str:
    """The field's string ("" when absent); raises when it has another type, or is required
    and missing or empty."""
    value = container.get(field)
    if value is None or value == "":
        if required:
            raise BadPayload(f"{where}{field} missing")
        return ""
    if not isinstance(value, str):
        raise BadPayload(f"{where}{field} is not a string")
    return value


def _object(
    container: Payload, field: str, where: str = "", *, required: bool = False
) -> Payload | None:
    value = container.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise BadPayload(f"{where}{field} is not an object")
    return value


def _json_object(text: str, where: str) -> Payload:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise BadPayload(f"{where} is not JSON") from None
    if not isinstance(value, dict):
        raise BadPayload(f"{where} is not a JSON object")
    return value
