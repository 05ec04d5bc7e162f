"""The check in front of Bolt: 401 for what Slack did not sign, 400 for what is no payload."""

from __future__ import annotations

import time

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.local.slack_events import sign
from bot.slack.request_check import Rejected, check_payload, read_signed_payload
from tests.malformed_requests import MALFORMED, WELL_FORMED

SECRET = "unit-secret"


def signed(body: bytes, content_type: str, timestamp: str | None = None) -> dict[str, str]:
    timestamp = str(int(time.time())) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": sign(SECRET, timestamp, body),
    }


@pytest.mark.parametrize(("body", "content_type"), [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])  # fmt: skip
def test_signed_but_malformed_is_400(body: bytes, content_type: str) -> None:
    with pytest.raises(Rejected) as rejected:
        read_signed_payload(SECRET, body, signed(body, content_type))
    assert rejected.value.status == 400
    assert "\n" not in rejected.value.reason and len(rejected.value.reason) < 80


@pytest.mark.parametrize(("body", "content_type"), [c[1:] for c in WELL_FORMED],
                         ids=[c[0] for c in WELL_FORMED])  # fmt: skip
def test_what_slack_sends_passes(body: bytes, content_type: str) -> None:
    assert isinstance(read_signed_payload(SECRET, body, signed(body, content_type)), dict)


def test_a_command_that_mentions_payload_is_read_as_a_command() -> None:
    body = b"command=%2Ftutor&text=what+is+a+payload&channel_id=C1&user_id=U1"
    payload = read_signed_payload(SECRET, body, signed(body, "application/x-www-form-urlencoded"))
    assert payload["text"] == "what is a payload"


BODY = b'{"type": "url_verification", "challenge": "c"}'
NOW = str(int(time.time()))


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/json"},
        {"X-Slack-Request-Timestamp": NOW},
        {"X-Slack-Request-Timestamp": NOW, "X-Slack-Signature": "v0=" + "0" * 64},
        {"X-Slack-Request-Timestamp": NOW, "X-Slack-Signature": "garbage"},
        signed(BODY, "application/json", timestamp=str(int(time.time()) - 600)),
        signed(BODY, "application/json", timestamp="abc"),
        signed(BODY, "application/json", timestamp=""),
        signed(BODY, "application/json", timestamp=f"{NOW[:3]}_{NOW[3:]}"),
        signed(BODY, "application/json", timestamp=f" {NOW}"),
        signed(BODY, "application/json", timestamp="١٢٣"),  # digits, but not ASCII ones
        {**signed(BODY, "application/json"), "X-Slack-Signature": "v0=é"},
        {**signed(BODY, "application/json"), "X-Slack-Request-Timestamp": str(int(NOW) + 1)},
    ],
    ids=["no signature headers", "no signature", "wrong signature", "signature not hex",
         "stale", "timestamp not a number", "timestamp empty", "timestamp with underscore",
         "timestamp with a space", "timestamp in other digits", "signature not ASCII",
         "timestamp not the signed one"],
)  # fmt: skip
def test_not_signed_by_slack_is_401(headers: dict[str, str]) -> None:
    with pytest.raises(Rejected) as rejected:
        read_signed_payload(SECRET, BODY, headers)
    assert rejected.value.status == 401


def test_it_agrees_with_slack_sdks_verifier() -> None:
    headers = signed(BODY, "application/json")
    assert SignatureVerifier(SECRET).is_valid_request(BODY, headers)
    assert read_signed_payload(SECRET, BODY, headers)["challenge"] == "c"


def test_the_signature_is_checked_before_the_body() -> None:
    with pytest.raises(Rejected) as rejected:
        read_signed_payload(SECRET, b"not json", {"Content-Type": "application/json"})
    assert rejected.value.status == 401


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "event_callback", "event": None},
        {"command": "/tutor", "channel_id": "C1", "user_id": 5},
        {"type": "block_actions", "user": {"id": "U1"}, "actions": "stop"},
        "text",
    ],
)
def test_socket_mode_payloads_get_the_same_shape_checks(payload: object) -> None:
    with pytest.raises(ValueError):
        check_payload(payload)
