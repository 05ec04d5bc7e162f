"""Views for the Slack stand-in: modals (`views.open`) and App Home tabs (`views.publish`),
checked as Slack checks them, and the `trigger_id`s that open modals.

Slack's limits (https://docs.slack.dev/reference/views, /reference/block-kit/blocks,
/reference/methods/views.open): a view holds at most 100 blocks and 250 kB; a modal's
title, submit and close are plain_text of at most 24 characters, and a modal with input
blocks needs a submit; `callback_id` ≤ 255, `private_metadata` ≤ 3,000 characters; block
ids are unique in a view; an input's label ≤ 2,000; a `plain_text_input`'s `max_length` ≤
3,000; a static select holds 1 to 100 options (text ≤ 75, value ≤ 150) and its
`initial_option` is one of them; a section's text ≤ 3,000 and at most 10 fields. A
`trigger_id` can be exchanged once, within 3 seconds of the interaction that gave it
(`invalid_trigger_id`, `exchanged_trigger_id`, `expired_trigger_id`).
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_BLOCKS = 100
MAX_VIEW_BYTES = 250_000
TITLE_LIMIT = 24
CALLBACK_ID_LIMIT = 255
METADATA_LIMIT = 3000
LABEL_LIMIT = 2000
INPUT_LIMIT = 3000
OPTIONS_LIMIT = 100
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
TEXT_LIMIT = 3000
FIELDS_LIMIT = 10
TRIGGER_SECONDS = 3.0
_IDS = itertools.count(1)


class ViewRefused(Exception):
    """Slack's error code for a view or trigger it refuses."""

    def __init__(self, code: str, why: str = "") -> None:
        super().__init__(f"{code}: {why}" if why else code)
        self.code = code


@dataclass
class Trigger:
    user_id: str
    issued_at: float
    used: bool = False


@dataclass
class Triggers:
    """The trigger_ids Slack handed out with interactions (slash commands, clicks)."""

    clock: Callable[[], float] = time.monotonic
    issued: dict[str, Trigger] = field(default_factory=dict)

    def issue(self, user_id: str) -> str:
        trigger_id = f"{next(_IDS)}.{int(time.time())}.{secrets.token_hex(16)}"
        self.issued[trigger_id] = Trigger(user_id, self.clock())
        return trigger_id

    def exchange(self, trigger_id: str) -> str:
        """The user a trigger opens a view for; raises ViewRefused as Slack answers."""
        trigger = self.issued.get(trigger_id)
        if trigger is None:
            raise ViewRefused("invalid_trigger_id")
        if trigger.used:
            raise ViewRefused("exchanged_trigger_id")
        if self.clock() - trigger.issued_at > TRIGGER_SECONDS:
            raise ViewRefused("expired_trigger_id")
        trigger.used = True
        return trigger.user_id


def parse_view(raw: Any) -> dict[str, Any]:
    """The `view` argument (a JSON string, as the SDK sends it, or an object)."""
    if isinstance(raw, str):
        if len(raw.encode()) > MAX_VIEW_BYTES:
            raise ViewRefused("view_too_large")
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ViewRefused("invalid_arguments", "view is not JSON") from None
    if not isinstance(raw, dict):
        raise ViewRefused("invalid_arguments", "view is not an object")
    return raw


def check_view(view: dict[str, Any], kind: str) -> None:
    """Raise ViewRefused (`invalid_arguments`) for a view Slack would refuse."""
    problem = _view_problem(view, kind)
    if problem:
        raise ViewRefused("invalid_arguments", problem)


def stored_view(
    view: dict[str, Any], team_id: str, *, view_id: str | None = None
) -> dict[str, Any]:
    """The view as Slack returns and sends it: with its id, hash, an empty state, and a
    block_id on every block (Slack makes one up where the app gave none)."""
    blocks = [
        block if "block_id" in block else {**block, "block_id": secrets.token_urlsafe(4)}
        for block in view.get("blocks", [])
    ]
    return {
        **view,
        "blocks": blocks,
        "id": view_id or f"V{next(_IDS):08d}",
        "team_id": team_id,
        "state": {"values": {}},
        "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "root_view_id": None,
        "previous_view_id": None,
        "app_id": "A1",
        "bot_id": "BBOT",
    }


def _view_problem(view: dict[str, Any], kind: str) -> str | None:
    if view.get("type") != kind:
        return f"view.type must be {kind}"
    blocks = view.get("blocks")
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return f"view.blocks must be a list of at most {MAX_BLOCKS} blocks"
    if len(str(view.get("callback_id") or "")) > CALLBACK_ID_LIMIT:
        return "callback_id too long"
    if len(str(view.get("private_metadata") or "")) > METADATA_LIMIT:
        return "private_metadata too long"
    if kind == "modal":
        for name in ("title", "submit", "close"):
            if name in view or name == "title":
                problem = _plain_text(view.get(name), TITLE_LIMIT, f"view.{name}")
                if problem:
                    return problem
        if any(b.get("type") == "input" for b in blocks if isinstance(b, dict)) and not view.get(
            "submit"
        ):
            return "a modal with input blocks needs submit"
    seen: set[str] = set()
    for index, block in enumerate(blocks):
        problem = _block_problem(block, f"blocks[{index}]", kind, seen)
        if problem:
            return problem
    return None


def _block_problem(block: Any, where: str, kind: str, seen: set[str]) -> str | None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return f"{where} is not a block"
    block_id = block.get("block_id")
    if block_id is not None:
        if block_id in seen:
            return f"{where}.block_id is repeated"
        seen.add(block_id)
    kind_of_block = block["type"]
    if kind_of_block == "input":
        if kind != "modal" and not block.get("dispatch_action"):
            return f"{where}: input blocks belong in modals"
        problem = _plain_text(block.get("label"), LABEL_LIMIT, f"{where}.label")
        return problem or _element_problem(block.get("element"), f"{where}.element")
    if kind_of_block == "section":
        text = block.get("text")
        if text is not None and len(str((text or {}).get("text", ""))) > TEXT_LIMIT:
            return f"{where}.text too long"
        if len(block.get("fields") or []) > FIELDS_LIMIT:
            return f"{where}.fields: at most {FIELDS_LIMIT}"
        if text is None and not block.get("fields"):
            return f"{where} needs text or fields"
        accessory = block.get("accessory")
        return _element_problem(accessory, f"{where}.accessory") if accessory else None
    if kind_of_block == "actions":
        elements = block.get("elements") or []
        if not elements:
            return f"{where}.elements is empty"
        for number, element in enumerate(elements):
            problem = _element_problem(element, f"{where}.elements[{number}]")
            if problem:
                return problem
        return None
    if kind_of_block == "header":
        return _plain_text(block.get("text"), 150, f"{where}.text")
    if kind_of_block in ("context", "divider", "markdown", "rich_text", "image"):
        return None
    return f"{where}: unknown block type {kind_of_block}"


def _element_problem(element: Any, where: str) -> str | None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return f"{where} is not an element"
    kind = element["type"]
    if kind == "plain_text_input":
        limit = element.get("max_length")
        if limit is not None and not 1 <= int(limit) <= INPUT_LIMIT:
            return f"{where}.max_length must be 1 to {INPUT_LIMIT}"
        initial = element.get("initial_value")
        if initial is not None and limit is not None and len(str(initial)) > int(limit):
            return f"{where}.initial_value is longer than max_length"
        return None
    if kind == "static_select":
        options = element.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= OPTIONS_LIMIT:
            return f"{where}.options: 1 to {OPTIONS_LIMIT}"
        for option in options:
            problem = _plain_text(option.get("text"), OPTION_TEXT_LIMIT, f"{where}.option.text")
            if problem:
                return problem
            if not 1 <= len(str(option.get("value") or "")) <= OPTION_VALUE_LIMIT:
                return f"{where}.option.value: 1 to {OPTION_VALUE_LIMIT} characters"
        initial = element.get("initial_option")
        if initial is not None and initial not in options:
            return f"{where}.initial_option is not one of its options"
        return None
    if kind == "button":
        return _plain_text(element.get("text"), 75, f"{where}.text")
    return None


def _plain_text(text: Any, limit: int, where: str) -> str | None:
    if not isinstance(text, dict) or text.get("type") != "plain_text":
        return f"{where} must be plain_text"
    if not 1 <= len(str(text.get("text") or "")) <= limit:
        return f"{where}: 1 to {limit} characters"
    return None


def state_values(view: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """`view.state.values` as Slack sends it on submission: each input's value by block id
    and action id, `answers` (by block id) over what the view showed initially: a text, an
    option's value, a list of option values (checkboxes) or of file objects (file input)."""
    values: dict[str, Any] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        block_id = block["block_id"]
        kind = element["type"]
        if kind == "plain_text_input":
            value = answers.get(block_id, element.get("initial_value"))
            state: dict[str, Any] = {"type": kind, "value": value or None}
        elif kind == "static_select":
            chosen = element.get("initial_option")
            if block_id in answers:
                wanted = answers[block_id]
                chosen = next((o for o in element["options"] if o["value"] == wanted), None)
            state = {"type": kind, "selected_option": chosen}
        elif kind == "checkboxes":
            wanted = answers.get(block_id) or []
            chosen_all = [o for o in element["options"] if o["value"] in wanted]
            state = {"type": kind, "selected_options": chosen_all}
        elif kind == "file_input":
            state = {"type": kind, "files": list(answers.get(block_id) or [])}
        else:
            continue
        values[block_id] = {element["action_id"]: state}
    return values
