"""Files of the OpenAI stand-in: POST /files (multipart), GET and DELETE /files/{id}.

Kept minimal: what attachments need (upload with a purpose, delete). The scripted model
names what it was shown (`described`), so tests can tell an image or a file reached it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import default

from aiohttp import web

from bot.local.openai_common import JSON, ApiError, new_id, now

PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def json(self) -> JSON:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


class FilesAPI:
    """State and handlers of /files."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.deleted: list[str] = []

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/files", self.create),
            web.get("/v1/files/{file_id}", self.get),
            web.delete("/v1/files/{file_id}", self.delete),
        ]

    async def create(self, request: web.Request) -> web.Response:
        fields = _multipart(request.headers.get("Content-Type", ""), await request.read())
        upload, purpose = fields.get("file"), (fields.get("purpose") or ("", b""))[1].decode()
        if upload is None:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        if purpose not in PURPOSES:
            raise ApiError(400, f"Invalid value for 'purpose': '{purpose}'.", param="purpose")
        filename, data = upload
        stored = StoredFile(new_id("file-"), filename, purpose, data, now())
        self.files[stored.id] = stored
        return web.json_response(stored.json())

    async def get(self, request: web.Request) -> web.Response:
        return web.json_response(self._file(request).json())

    async def delete(self, request: web.Request) -> web.Response:
        stored = self._file(request)
        del self.files[stored.id]
        self.deleted.append(stored.id)
        return web.json_response({"id": stored.id, "object": "file", "deleted": True})

    def _file(self, request: web.Request) -> StoredFile:
        stored = self.files.get(request.match_info["file_id"])
        if stored is None:
            raise ApiError(404, f"No such File object: {request.match_info['file_id']}")
        return stored

    def name_of(self, file_id: str) -> str:
        """A file's name, for the model to say what it saw; 400 for an unknown file."""
        stored = self.files.get(file_id)
        if stored is None:
            raise ApiError(400, f"Invalid file id '{file_id}': no such file.", param="input")
        return stored.filename


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str, bytes]]:
    """A multipart/form-data body's fields: name → (file name, bytes). (The request body is
    already read by the stand-in's recorder, so aiohttp's own reader cannot be used.)"""
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(400, "Expected multipart/form-data.")
    message = BytesParser(policy=default).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            fields[name] = (part.get_filename() or "", data)
    return fields


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
