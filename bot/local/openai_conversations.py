"""Conversations of the OpenAI stand-in: the stored items that Responses read and extend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from bot.local.context_window import Part, Summary
from bot.local.openai_common import (
    JSON,
    ApiError,
    ListQuery,
    check_max_items,
    check_metadata,
    json_body,
    list_body,
    missing,
    new_id,
    now,
)
from bot.local.openai_files import described

MAX_ITEMS_PER_REQUEST = 20
ROLES = ("user", "assistant", "system", "developer")
TEXT_PARTS = ("input_text", "output_text", "text")


@dataclass
class Conversation:
    """A conversation: its items in creation order and the responses that worked on it."""

    id: str
    created_at: int
    metadata: dict[str, str]
    items: list[JSON] = field(default_factory=list)
    response_ids: list[str] = field(default_factory=list)


class Activity(Protocol):
    """What conversations need from responses: up-to-date state and the lock."""

    def refresh_conversation(self, conversation: Conversation) -> None: ...

    def ensure_unlocked(self, conversation: Conversation) -> None: ...


def conversation_json(conversation: Conversation) -> JSON:
    return {
        "id": conversation.id,
        "object": "conversation",
        "created_at": conversation.created_at,
        "metadata": conversation.metadata,
    }


def stored_items(value: Any, param: str) -> list[JSON]:
    """Input items (a string or a list of items) as a conversation stores them, with ids."""
    if isinstance(value, str):
        return [message_item("user", [text_part("user", value)])]
    if not isinstance(value, list):
        raise ApiError(400, f"Invalid '{param}': expected a string or an array.", param=param)
    return [stored_item(item, param) for item in value]


def stored_item(item: Any, param: str) -> JSON:
    if not isinstance(item, dict):
        raise ApiError(400, f"Invalid '{param}': every item must be an object.", param=param)
    if item.get("type", "message") != "message":
        return {"id": item.get("id") or new_id("item_"), **item}
    role = item.get("role")
    if role not in ROLES:
        raise ApiError(400, f"Invalid '{param}': unknown role {role!r}.", param=param)
    content = item.get("content")
    if isinstance(content, str):
        return message_item(role, [text_part(role, content)])
    if not isinstance(content, list):
        raise ApiError(400, f"Invalid '{param}': content must be a string or an array.")
    return message_item(role, [_part(part) for part in content])


def _part(part: Any) -> JSON:
    if not isinstance(part, dict) or "type" not in part:
        raise ApiError(400, "Invalid content part: expected an object with a 'type'.")
    if part["type"] == "output_text":
        return {"annotations": [], "logprobs": [], **part}
    return dict(part)


def text_part(role: str, text: str) -> JSON:
    if role == "assistant":
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"type": "input_text", "text": text}


def message_item(role: str, content: list[JSON], status: str = "completed") -> JSON:
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": role,
        "status": status,
        "content": content,
    }


def messages_of(items: list[JSON], name_of: Any = None) -> list[tuple[str, str]]:
    """The (role, text) messages the model reads from items (images and files as what the
    scripted model says it saw: see bot.local.openai_files.described)."""
    return [
        (item["role"], "\n".join(_read(p, name_of) for p in item["content"] if _read(p, name_of)))
        for item in items
        if item.get("type") == "message"
    ]


def _read(part: JSON, name_of: Any) -> str:
    if part.get("type") in TEXT_PARTS:
        return str(part["text"])
    return described(part, name_of) or ""


def compaction_item(summary: Summary) -> JSON:
    """The item server-side compaction outputs: opaque, standing for all that came before."""
    return {"id": new_id("cmp_"), "type": "compaction", "encrypted_content": summary.encoded()}


def parts_of(items: list[JSON]) -> list[Part]:
    """What the model reads from items: from the latest compaction item on (its summary in
    place of all before it), then the messages."""
    starts = [index for index, item in enumerate(items) if item.get("type") == "compaction"]
    parts: list[Part] = []
    for item in items[starts[-1] if starts else 0 :]:
        if item.get("type") == "compaction":
            summary = Summary.decoded(str(item.get("encrypted_content", "")))
            parts.extend([summary] if summary is not None else [])
        elif item.get("type") == "message":
            parts.extend(messages_of([item]))
    return parts


class ConversationsAPI:
    """State and handlers of /conversations."""

    def __init__(self, activity: Activity) -> None:
        self.activity = activity
        self.conversations: dict[str, Conversation] = {}

    def routes(self) -> list[web.RouteDef]:
        base = "/v1/conversations/{conversation_id}"
        return [
            web.post("/v1/conversations", self.create),
            web.get(base, self.get),
            web.post(base, self.update),
            web.delete(base, self.delete),
            web.get(f"{base}/items", self.list_items),
            web.post(f"{base}/items", self.create_items),
            web.get(f"{base}/items/{{item_id}}", self.get_item),
            web.delete(f"{base}/items/{{item_id}}", self.delete_item),
        ]

    def conversation(self, conversation_id: str) -> Conversation:
        if conversation_id not in self.conversations:
            raise ApiError(404, f"Conversation with id '{conversation_id}' not found.")
        return self.conversations[conversation_id]

    def items(self, conversation_id: str) -> list[JSON]:
        """The conversation's items in creation order, up to the clock."""
        conversation = self.conversation(conversation_id)
        self.activity.refresh_conversation(conversation)
        return list(conversation.items)

    async def create(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        items = body.get("items") or []
        check_max_items(items, MAX_ITEMS_PER_REQUEST, "items")
        metadata = check_metadata(body.get("metadata"))
        conversation = Conversation(new_id("conv_"), now(), metadata, stored_items(items, "items"))
        self.conversations[conversation.id] = conversation
        return web.json_response(conversation_json(conversation))

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(conversation_json(self._from(request)))

    async def update(self, request: web.Request) -> web.Response:
        conversation = self._from(request)
        body = await json_body(request)
        if "metadata" not in body:
            raise missing("metadata")
        conversation.metadata = check_metadata(body["metadata"])
        return web.json_response(conversation_json(conversation))

    async def delete(self, request: web.Request) -> web.Response:
        conversation = self._from(request)
        del self.conversations[conversation.id]
        body = {"id": conversation.id, "object": "conversation.deleted", "deleted": True}
        return web.json_response(body)

    async def list_items(self, request: web.Request) -> web.Response:
        items = self.items(request.match_info["conversation_id"])
        page, more = ListQuery.parse(request).page(items)
        return web.json_response(list_body(page, more))

    async def create_items(self, request: web.Request) -> web.Response:
        conversation = self._from(request)
        body = await json_body(request)
        if "items" not in body:
            raise missing("items")
        if not isinstance(body["items"], list) or not body["items"]:
            raise ApiError(400, "Invalid 'items': expected a non-empty array.", param="items")
        check_max_items(body["items"], MAX_ITEMS_PER_REQUEST, "items")
        self.activity.ensure_unlocked(conversation)
        added = stored_items(body["items"], "items")
        conversation.items.extend(added)
        return web.json_response(list_body(added, False))

    async def get_item(self, request: web.Request) -> web.Response:
        item_id = request.match_info["item_id"]
        for item in self.items(request.match_info["conversation_id"]):
            if item["id"] == item_id:
                return web.json_response(item)
        raise ApiError(404, f"Item with id '{item_id}' not found.")

    async def delete_item(self, request: web.Request) -> web.Response:
        conversation = self._from(request)
        item_id = request.match_info["item_id"]
        kept = [item for item in conversation.items if item["id"] != item_id]
        if len(kept) == len(conversation.items):
            raise ApiError(404, f"Item with id '{item_id}' not found.")
        conversation.items = kept
        return web.json_response(conversation_json(conversation))

    def _from(self, request: web.Request) -> Conversation:
        conversation = self.conversation(request.match_info["conversation_id"])
        self.activity.refresh_conversation(conversation)
        return conversation
