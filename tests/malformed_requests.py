"""Requests that are not what Slack sends, for the unit and end-to-end tests of bad input.

Each is (name, body, content type). Signed with the right secret, the bot must answer 400
and change nothing.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlencode

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

EVENT: dict[str, Any] = {
    "type": "event_callback",
    "team_id": "T1",
    "api_app_id": "A1",
    "event_id": "EvBAD",
    "event_time": 1700000000,
    "event": {"type": "app_mention", "channel": "C1", "user": "U1", "text": "<@UBOT> hi",
              "ts": "1700000000.000001"},
    "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
}  # fmt: skip
COMMAND = {"command": "/tutor", "text": "Who was Hypatia?", "team_id": "T1", "channel_id": "C1",
           "user_id": "U1", "response_url": "http://127.0.0.1:9/response_url/R1",
           "trigger_id": "1.abc"}  # fmt: skip
CLICK: dict[str, Any] = {
    "type": "block_actions",
    "team": {"id": "T1"},
    "user": {"id": "U1", "team_id": "T1"},
    "channel": {"id": "C1"},
    "response_url": "http://127.0.0.1:9/response_url/R2",
    "actions": [{"type": "button", "action_id": "stop_turn", "value": "turn_1|U1"}],
}

SHORTCUT: dict[str, Any] = {
    "type": "message_action",
    "callback_id": "forget_conversation",
    "trigger_id": "2.abc",
    "response_url": "http://127.0.0.1:9/response_url/R3",
    "team": {"id": "T1", "domain": "standin"},
    "channel": {"id": "C1", "name": "general"},
    "user": {"id": "U1", "team_id": "T1"},
    "message": {"type": "message", "ts": "1.2", "thread_ts": "1.1", "text": "x", "user": "U1"},
    "message_ts": "1.2",
    "action_ts": "1.3",
}

MISSING: Any = object()  # a field left out
# Slack's native Stop (agent_session_stopped), as its event reference shows it.
NATIVE_STOP = {"type": "agent_session_stopped", "channel": "C1", "thread_ts": "1700000000.000001",
               "user": "U1", "streaming_message_ts": ["1700000000.000002"],
               "event_ts": "1700000001.000001"}  # fmt: skip
FEEDBACK = {"type": "feedback_buttons", "action_id": "tutor_feedback", "block_id": "b1",
            "text": {"type": "plain_text", "text": "👍"}, "value": "up:turn_1"}  # fmt: skip


def _changed(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is MISSING:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def event(**changes: Any) -> bytes:
    """EVENT with envelope fields changed (to MISSING: left out)."""
    return _json(_changed(EVENT, changes))


def event_with(**changes: Any) -> bytes:
    """EVENT with fields of its `event` changed (to MISSING: left out)."""
    envelope = copy.deepcopy(EVENT)
    envelope["event"] = _changed(EVENT["event"], changes)
    return _json(envelope)


def native_stop(**changes: Any) -> bytes:
    """EVENT carrying an agent_session_stopped with fields changed (to MISSING: left out)."""
    envelope = copy.deepcopy(EVENT)
    envelope["event"] = _changed(NATIVE_STOP, changes)
    return _json(envelope)


def command(**changes: Any) -> bytes:
    return urlencode(_changed(COMMAND, changes)).encode()


def click(**changes: Any) -> bytes:
    return urlencode({"payload": json.dumps(_changed(CLICK, changes))}).encode()


def shortcut(**changes: Any) -> bytes:
    return urlencode({"payload": json.dumps(_changed(SHORTCUT, changes))}).encode()


MALFORMED: list[tuple[str, bytes, str]] = [
    ("invalid JSON", b'{"type": "event_callback", "event": {', JSON),
    ("empty JSON body", b"", JSON),
    ("JSON array", b"[1, 2]", JSON),
    ("JSON string", b'"hello"', JSON),
    ("not UTF-8", b'{"type": "event_callback", "x": "\xff\xfe"}', JSON),
    ("deeply nested JSON", b'{"event": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", JSON),
    ("no type", b'{"event_id": "Ev1"}', JSON),
    ("type a number", event(type=5), JSON),
    ("event null", event(event=None), JSON),
    ("event missing", event(event=MISSING), JSON),
    ("event a string", event(event="app_mention"), JSON),
    ("event without type", event_with(type=MISSING), JSON),
    ("channel missing", event_with(channel=MISSING), JSON),
    ("channel empty", event_with(channel=""), JSON),
    ("channel a number", event_with(channel=5), JSON),
    ("ts missing", event_with(ts=MISSING), JSON),
    ("ts a number", event_with(ts=1700000000.1), JSON),
    ("text a list", event_with(text=["<@UBOT>", "hi"]), JSON),
    ("user an object", event_with(user={"id": "U1"}), JSON),
    ("thread_ts a list", event_with(thread_ts=["1.1"]), JSON),
    ("DM without channel", event_with(type="message", channel_type="im", channel=MISSING), JSON),
    ("DM text an object", event_with(type="message", channel_type="im", text={"a": 1}), JSON),
    (
        "edit whose message is a list",
        event_with(type="message", subtype="message_changed", message=[1]),
        JSON,
    ),
    ("event_id a number", event(event_id=7), JSON),
    ("team a number", event(team=7), JSON),
    ("authorizations a string", event(authorizations="T1"), JSON),
    ("authorization team a number", event(authorizations=[{"team": 1}]), JSON),
    ("url_verification without challenge", b'{"type": "url_verification"}', JSON),
    ("command without channel_id", command(channel_id=MISSING), FORM),
    ("command without user_id", command(user_id=MISSING), FORM),
    ("command empty", command(command=""), FORM),
    ("form of nothing Slack sends", b"hello=world", FORM),
    ("plain text", b"hello", "text/plain"),
    ("interaction payload not JSON", b"payload=%7Bnot+json", FORM),
    ("interaction payload a list", b"payload=%5B1%5D", FORM),
    ("click without actions", click(actions=MISSING), FORM),
    ("click with no action", click(actions=[]), FORM),
    ("click action without action_id", click(actions=[{"value": "x"}]), FORM),
    ("click action value a number", click(actions=[{"action_id": "stop_turn", "value": 1}]), FORM),
    ("click without user", click(user=MISSING), FORM),
    ("click user a number", click(user=5), FORM),
    ("native stop without thread_ts", native_stop(thread_ts=MISSING), JSON),
    ("native stop without user", native_stop(user=""), JSON),
    ("native stop streams not a list", native_stop(streaming_message_ts="1.2"), JSON),
    ("shortcut without callback_id", shortcut(callback_id=MISSING), FORM),
    ("shortcut without message", shortcut(message=MISSING), FORM),
    ("shortcut message without ts", shortcut(message={"type": "message"}), FORM),
    ("shortcut message ts a number", shortcut(message={"ts": 1.2}), FORM),
    ("shortcut thread_ts a list", shortcut(message={"ts": "1.2", "thread_ts": ["1.1"]}), FORM),
    ("shortcut without channel", shortcut(channel=MISSING), FORM),
    ("shortcut channel without id", shortcut(channel={"name": "general"}), FORM),
    ("shortcut without user", shortcut(user=MISSING), FORM),
]

WELL_FORMED: list[tuple[str, bytes, str]] = [
    ("mention", event(), JSON),
    ("mention, JSON with a charset", event(), JSON + "; charset=utf-8"),
    ("mention with text null", event_with(text=None), JSON),
    ("DM", event_with(type="message", channel_type="im"), JSON),
    (
        "edit",
        event_with(
            type="message",
            subtype="message_changed",
            user=MISSING,
            message={"text": "x", "ts": "1.1"},
        ),
        JSON,
    ),
    ("app_home_opened", event_with(type="app_home_opened", tab="home", ts=MISSING), JSON),
    ("an event the bot does not handle", event_with(type="reaction_added", channel=MISSING), JSON),
    ("url_verification", b'{"type": "url_verification", "challenge": "c"}', JSON),
    ("command", command(), FORM),
    ("command mentioning payload", command(text="what is a payload?"), FORM),
    ("command without text", command(text=MISSING), FORM),
    ("click", click(), FORM),
    ("feedback click", click(actions=[FEEDBACK]), FORM),
    ("native stop", native_stop(), JSON),
    ("native stop with no stream", native_stop(streaming_message_ts=[]), JSON),
    ("message shortcut", shortcut(), FORM),
    ("message shortcut on a root", shortcut(message={"type": "message", "ts": "1.1"}), FORM),
    ("ssl_check", b"ssl_check=1&token=t", FORM),
]
