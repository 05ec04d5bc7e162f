"""Files and vector stores for the OpenAI stand-in, and the file search its scripted model does.

Shapes as in OpenAI's API reference: `POST /files` (multipart: `file`, `purpose`),
`GET|DELETE /files/{id}`; `POST /vector_stores`, `GET|DELETE /vector_stores/{id}`,
`POST|GET /vector_stores/{id}/files`, `GET|DELETE /vector_stores/{id}/files/{file_id}`. A file
attached to a store is `in_progress` when first looked at and `completed` from then on, so a
client must poll, deterministically.

`search` is the scripted model's file_search: the attached file sharing most words with the
question, and from it the sentence that shares most, quoted in the answer with a citation.
The scripted model also names what it was shown in a message (`described`: an image, a
file), so tests can tell an attachment reached it.
"""

from __future__ import annotations

import base64
import io
import re
from dataclasses import dataclass, field, replace
from email.parser import BytesParser
from email.policy import default
from typing import Any

from aiohttp import web
from pypdf import PdfReader

from bot.local.openai_common import (
    ApiError,
    ListQuery,
    check_metadata,
    json_body,
    list_body,
    missing,
    new_id,
    not_found,
    now,
)
from bot.local.scripted_model import Reply, ScriptedCitation
from bot.tutor.material_text import UnreadableMaterial, docx_text

JSON = dict[str, Any]
_WORD = re.compile(r"\w+")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
QUOTE_CHARS = 200


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=now)
    content_type: str = ""  # the upload's own (tests check what the bot says a file is)

    def json(self) -> JSON:
        return {
            "id": self.id, "object": "file", "bytes": len(self.data),
            "created_at": self.created_at, "filename": self.filename, "purpose": self.purpose,
            "status": "processed", "expires_at": None, "status_details": None,
        }  # fmt: skip

    def text(self) -> str:
        """What file search reads of it: a PDF's or Word document's text (the bot's own
        readers: "" when it has none), other files as UTF-8."""
        if self.filename.lower().endswith(".pdf"):
            reader = PdfReader(io.BytesIO(self.data))
            return "\n".join(page.extract_text() or "" for page in reader.pages)
        if self.filename.lower().endswith(".docx"):
            try:
                return docx_text(self.data)
            except UnreadableMaterial:
                return ""
        return self.data.decode("utf-8", errors="replace")


@dataclass
class VectorStore:
    id: str
    name: str | None
    metadata: dict[str, str]
    created_at: int = field(default_factory=now)
    files: dict[str, str] = field(default_factory=dict)  # file id → status
    attributes: dict[str, JSON] = field(default_factory=dict)

    def json(self) -> JSON:
        done = sum(1 for s in self.files.values() if s == "completed")
        going = len(self.files) - done
        return {
            "id": self.id, "object": "vector_store", "created_at": self.created_at,
            "name": self.name, "usage_bytes": 0, "status": "in_progress" if going else "completed",
            "file_counts": {"in_progress": going, "completed": done, "failed": 0,
                            "cancelled": 0, "total": len(self.files)},
            "last_active_at": self.created_at, "metadata": self.metadata,
            "expires_after": None, "expires_at": None,
        }  # fmt: skip


@dataclass(frozen=True)
class FileHit:
    """What file_search found: a file and the passage quoted from it."""

    file_id: str
    filename: str
    quote: str
    score: float


class FilesAPI:
    """`/v1/files` and `/v1/vector_stores`, in memory."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.vector_stores: dict[str, VectorStore] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/files", self.create_file),
            web.get("/v1/files/{file_id}", self.get_file),
            web.delete("/v1/files/{file_id}", self.delete_file),
            web.post("/v1/vector_stores", self.create_store),
            web.get("/v1/vector_stores/{store_id}", self.get_store),
            web.delete("/v1/vector_stores/{store_id}", self.delete_store),
            web.post("/v1/vector_stores/{store_id}/files", self.attach),
            web.get("/v1/vector_stores/{store_id}/files", self.list_attached),
            web.get("/v1/vector_stores/{store_id}/files/{file_id}", self.get_attached),
            web.delete("/v1/vector_stores/{store_id}/files/{file_id}", self.detach),
        ]

    async def create_file(self, request: web.Request) -> web.Response:
        fields = _multipart(request.headers.get("Content-Type", ""), await request.read())
        upload, purpose = fields.get("file"), fields.get("purpose")
        if upload is None or not upload[0]:
            raise missing("file")
        if purpose is None or not purpose[1]:
            raise missing("purpose")
        stored = StoredFile(
            new_id("file-"), upload[0], purpose[1].decode(), upload[1], content_type=upload[2]
        )
        self.files[stored.id] = stored
        return web.json_response(stored.json())

    async def get_file(self, request: web.Request) -> web.Response:
        return web.json_response(self._file(request.match_info["file_id"]).json())

    async def delete_file(self, request: web.Request) -> web.Response:
        stored = self._file(request.match_info["file_id"])
        del self.files[stored.id]
        for store in self.vector_stores.values():  # as at OpenAI: gone from every store
            store.files.pop(stored.id, None)
        return web.json_response({"id": stored.id, "object": "file", "deleted": True})

    async def create_store(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        store = VectorStore(new_id("vs_"), body.get("name"), check_metadata(body.get("metadata")))
        for file_id in body.get("file_ids") or []:
            self._file(file_id)
            store.files[file_id] = "in_progress"
        self.vector_stores[store.id] = store
        return web.json_response(store.json())

    async def get_store(self, request: web.Request) -> web.Response:
        return web.json_response(self._store(request.match_info["store_id"]).json())

    async def delete_store(self, request: web.Request) -> web.Response:
        store = self._store(request.match_info["store_id"])
        del self.vector_stores[store.id]
        return web.json_response(
            {"id": store.id, "object": "vector_store.deleted", "deleted": True}
        )

    async def attach(self, request: web.Request) -> web.Response:
        store = self._store(request.match_info["store_id"])
        body = await json_body(request)
        file_id = body.get("file_id")
        if not isinstance(file_id, str):
            raise missing("file_id")
        self._file(file_id)
        store.files[file_id] = "in_progress"
        store.attributes[file_id] = dict(body.get("attributes") or {})
        return web.json_response(self._attached_json(store, file_id))

    async def list_attached(self, request: web.Request) -> web.Response:
        store = self._store(request.match_info["store_id"])
        attached = [self._attached_json(store, file_id) for file_id in store.files]
        page, more = ListQuery.parse(request).page(attached)
        return web.json_response(list_body(page, more))

    async def get_attached(self, request: web.Request) -> web.Response:
        store = self._store(request.match_info["store_id"])
        file_id = request.match_info["file_id"]
        if file_id not in store.files:
            raise not_found("vector store file", file_id)
        shown = self._attached_json(store, file_id)
        store.files[file_id] = "completed"  # indexed once it was seen in progress
        return web.json_response(shown)

    async def detach(self, request: web.Request) -> web.Response:
        store = self._store(request.match_info["store_id"])
        file_id = request.match_info["file_id"]
        if store.files.pop(file_id, None) is None:
            raise not_found("vector store file", file_id)
        body = {"id": file_id, "object": "vector_store.file.deleted", "deleted": True}
        return web.json_response(body)

    def name_of(self, file_id: str) -> str:
        """A file's name, for the model to say what it saw; 400 for an unknown file."""
        stored = self.files.get(file_id)
        if stored is None:
            raise ApiError(400, f"Invalid file id '{file_id}': no such file.", param="input")
        return stored.filename

    def search(self, store_ids: list[str], query: str) -> FileHit | None:
        """The best passage of the indexed files of `store_ids` for `query` (None: no match)."""
        wanted = set(_words(query))
        best: FileHit | None = None
        for store_id in store_ids:
            store = self.vector_stores.get(store_id)
            if store is None:
                continue
            for file_id, status in store.files.items():
                stored = self.files.get(file_id)
                if stored is None or status != "completed":
                    continue
                for sentence in _SENTENCE.findall(" ".join(stored.text().split())):
                    score = len(wanted & set(_words(sentence)))
                    if score and (best is None or score > best.score):
                        quote = sentence.strip()[:QUOTE_CHARS]
                        best = FileHit(file_id, stored.filename, quote, float(score))
        return best

    def _attached_json(self, store: VectorStore, file_id: str) -> JSON:
        return {
            "id": file_id, "object": "vector_store.file", "created_at": store.created_at,
            "vector_store_id": store.id, "status": store.files[file_id], "usage_bytes": 0,
            "last_error": None, "attributes": store.attributes.get(file_id) or {},
            "chunking_strategy": {"type": "static", "static": {
                "max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}},
        }  # fmt: skip

    def _file(self, file_id: str) -> StoredFile:
        if file_id not in self.files:
            raise not_found("file", file_id)
        return self.files[file_id]

    def _store(self, store_id: str) -> VectorStore:
        if store_id not in self.vector_stores:
            raise not_found("vector store", store_id)
        return self.vector_stores[store_id]


def searched_stores(tools: Any) -> list[str]:
    """The vector store ids of a request's `file_search` tool (none: no such tool)."""
    for tool in tools or []:
        if isinstance(tool, dict) and tool.get("type") == "file_search":
            ids = tool.get("vector_store_ids") or []
            if not isinstance(ids, list):
                raise ApiError(400, "Invalid 'vector_store_ids'.", param="tools")
            return [str(i) for i in ids]
    return []


def quoting(reply: Reply, hit: FileHit) -> Reply:
    """The reply with the passage quoted after it and a citation of its file at the quote."""
    text = f"{reply.text}\n\nFrom the course materials: “{hit.quote}”"
    citation = ScriptedCitation(len(text), len(text), hit.filename, "", file_id=hit.file_id)
    return replace(reply, text=text, citations=(*reply.citations, citation))


def file_search_call(query: str, hit: FileHit | None) -> JSON:
    """The `file_search_call` output item, with its results (asked for with `include`)."""
    results = [] if hit is None else [{
        "file_id": hit.file_id, "filename": hit.filename, "score": min(1.0, hit.score / 10),
        "text": hit.quote, "attributes": {},
    }]  # fmt: skip
    return {
        "id": new_id("fs_"), "type": "file_search_call", "status": "completed",
        "queries": [query], "results": results,
    }  # fmt: skip


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str, bytes, str]]:
    """A multipart/form-data body's fields: name → (file name, "" for plain fields; bytes;
    the part's content type).

    Read from the bytes the server already has (its middleware records every body)."""
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(400, "Expected multipart/form-data.", param="file")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=default).parsebytes(head + body)
    fields: dict[str, tuple[str, bytes, str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True) or b""
            fields[name] = (part.get_filename() or "", payload, part.get_content_type())
    return fields


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if len(w) > 2]


def described(part: JSON, name_of: object = None) -> str | None:
    """What the scripted model says it saw in a non-text content part (None: text parts)."""
    kind = part.get("type")
    if kind in ("input_image", "image_url", "image_file"):
        url = part.get("image_url")
        if isinstance(url, dict):
            url = url.get("url")
        file_id = part.get("file_id") or (part.get("image_file") or {}).get("file_id")
        if isinstance(url, str) and url.startswith("data:"):
            header, _, payload = url.partition(",")
            size = len(base64.b64decode(payload or ""))
            return f"I see an image ({header.removeprefix('data:').split(';')[0]}, {size} bytes)"
        if file_id and callable(name_of):
            return f"I see an image named {name_of(file_id)}"
        return "I see an image"
    if kind == "input_file":
        if part.get("file_id") and callable(name_of):
            return f"I see a file named {name_of(part['file_id'])}"
        return f"I see a file named {part.get('filename') or 'unnamed'}"
    return None
