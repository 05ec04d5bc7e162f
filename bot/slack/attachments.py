"""Reading the files shared with a question from Slack, with the workspace's bot token.

`files.info` (scope `files:read`) says what a file is and where to download it; the download
(`url_private_download`) needs `Authorization: Bearer <bot token>`. Files are bounded in size
(TUTOR_MAX_ATTACHMENT_MB, checked before and while downloading) and type (images, PDFs,
Word documents); every other file, and any that cannot be read, gets a kind sentence instead.
A document's text is read in a thread (its parser blocks).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.backends.base import Attachment, AttachmentKind
from bot.slack.client import slack_error_code
from bot.slack.workspaces import WorkspaceClients
from bot.turns.attachments import (
    Fetched,
    UnreadableAttachment,
    attachment_text,
    declined_image,
    declined_size,
    declined_text,
    declined_type,
    declined_unreadable,
    kind_of,
)
from bot.turns.models import Turn

log = logging.getLogger(__name__)

# One file's info and download may take this long together.
READ_SECONDS = 20.0
# A question reads at most this many files.
MAX_FILES = 5


class SlackAttachments:
    """An `AttachmentSource` reading Slack files (see bot.turns.attachments)."""

    def __init__(
        self, clients: WorkspaceClients, session: aiohttp.ClientSession, max_bytes: int
    ) -> None:
        self._clients = clients
        self._session = session
        self._max_bytes = max_bytes

    async def fetch(self, turn: Turn, *, images: bool) -> Fetched:
        attachments: list[Attachment] = []
        declined: list[str] = []
        for file_id in turn.files[:MAX_FILES]:
            result = await self._read(turn, file_id, images)
            if isinstance(result, Attachment):
                attachments.append(result)
            else:
                declined.append(result)
        return Fetched(tuple(attachments), tuple(declined))

    async def _read(self, turn: Turn, file_id: str, images: bool) -> Attachment | str:
        """The file, or the sentence saying why it was not read."""
        client = self._clients.for_team(turn.team_id)
        name = "the attached file"
        try:
            async with asyncio.timeout(READ_SECONDS):
                info = (await client.files_info(file=file_id))["file"]
                name = str(info.get("name") or info.get("title") or name)
                mimetype = str(info.get("mimetype") or "")
                kind = kind_of(mimetype)
                if kind is None:
                    return declined_type(name, mimetype)
                if kind is AttachmentKind.IMAGE and not images:
                    return declined_image(name)
                if int(info.get("size") or 0) > self._max_bytes:
                    return declined_size(name, self._max_bytes)
                data = await self._download(info, client.token or "")
        except SlackApiError as error:
            log.warning("files.info failed (%s) %s", slack_error_code(error), turn.log_context())
            return declined_unreadable(name)
        except _TooBig:
            return declined_size(name, self._max_bytes)
        except (TimeoutError, aiohttp.ClientError, KeyError) as error:
            log.warning("file download failed (%s) %s", type(error).__name__, turn.log_context())
            return declined_unreadable(name)
        try:
            text = await asyncio.to_thread(attachment_text, kind, data)
        except UnreadableAttachment as error:
            return declined_text(name, str(error))
        return Attachment(name, mimetype, kind, data, text)

    async def _download(self, info: dict[str, Any], token: str) -> bytes:
        url = str(info.get("url_private_download") or info.get("url_private") or "")
        if not url:
            raise KeyError("url_private_download")
        headers = {"Authorization": f"Bearer {token}"}
        async with self._session.get(url, headers=headers, allow_redirects=True) as response:
            response.raise_for_status()
            if "text/html" in response.headers.get("Content-Type", ""):
                raise aiohttp.ClientError("Slack answered with a page (no files:read?)")
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data.extend(chunk)
                if len(data) > self._max_bytes:
                    raise _TooBig
            return bytes(data)


class _TooBig(Exception):
    """The download passed the size limit (a file bigger than files.info said)."""
