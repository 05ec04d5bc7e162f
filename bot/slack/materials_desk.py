"""Adding and removing a course's materials after its form was submitted.

Each added file is looked up (`files.info`) and downloaded with the bot token from its
`url_private_download` (Authorization: Bearer), at most `max_bytes` and within
`DOWNLOAD_SECONDS`; its text is read here (`bot.tutor.material_text`) and handed to the
backend's library. The admin is told, only them, what was added and what was refused and why.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.backends.base import BackendError
from bot.slack.client import slack_error_code
from bot.slack.render import escape_mrkdwn
from bot.tutor.material_text import UnreadableMaterial, pages_of
from bot.tutor.materials import (
    CourseMaterials,
    CourseRef,
    kind_of,
    new_material,
    refusal,
)

log = logging.getLogger(__name__)

DOWNLOAD_SECONDS = 30.0
READ_BYTES = 64 * 1024


class DownloadRefused(Exception):
    """A file could not be fetched from Slack; the message says why, in plain words."""


@dataclass
class MaterialsReport:
    """What one submission did to a course's materials, for the admin."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = []
        if self.added:
            lines.append("Added to the course's materials: " + ", ".join(self.added) + ".")
        if self.removed:
            lines.append("Removed: " + ", ".join(self.removed) + ".")
        lines.extend(f"Not added: {reason}" for reason in self.refused)
        return "\n".join(lines)


def file_refusals(files: list[dict[str, Any]], max_bytes: int) -> list[str]:
    """Why files submitted in the form cannot be materials (checked before the form closes)."""
    found = []
    for info in files:
        reason = refusal(
            str(info.get("name") or "file"),
            str(info.get("filetype") or ""),
            int(info.get("size") or 0),
            max_bytes,
        )
        if reason:
            found.append(reason)
    return found


class MaterialsDesk:
    """Downloads, reads and adds submitted files; removes ticked materials."""

    def __init__(
        self,
        materials: CourseMaterials,
        session: aiohttp.ClientSession,
        *,
        max_bytes: int,
        download_seconds: float = DOWNLOAD_SECONDS,
    ) -> None:
        self.materials = materials
        self._session = session
        self._max_bytes = max_bytes
        self._download_seconds = download_seconds

    async def apply(
        self,
        client: AsyncWebClient,
        course: CourseRef,
        user_id: str,
        files: list[dict[str, Any]],
        remove_ids: list[str],
    ) -> MaterialsReport:
        report = MaterialsReport()
        for material_id in remove_ids:
            material = await self.materials.store.get(course, material_id)
            try:
                if await self.materials.remove(course, material_id) and material is not None:
                    report.removed.append(escape_mrkdwn(material.name))
            except BackendError as error:
                report.refused.append(f"could not remove a file ({error.reason}).")
        for info in files:
            await self._add(client, course, user_id, info, report)
        return report

    async def _add(
        self,
        client: AsyncWebClient,
        course: CourseRef,
        user_id: str,
        submitted: dict[str, Any],
        report: MaterialsReport,
    ) -> None:
        name = escape_mrkdwn(str(submitted.get("name") or "file"))
        try:
            info, data = await self._download(client, str(submitted["id"]))
            file_name = str(info.get("name") or submitted.get("name") or "file")
            kind = kind_of(file_name, str(info.get("filetype") or ""))
            reason = refusal(file_name, str(info.get("filetype") or ""), len(data), self._max_bytes)
            if reason or kind is None:
                report.refused.append(escape_mrkdwn(reason or file_name))
                return
            pages = await asyncio.to_thread(pages_of, kind, data)
            material = new_material(file_name, kind, len(data), user_id)
            added = await self.materials.add(course, material, pages, data)
        except DownloadRefused as error:
            report.refused.append(f"{name}: {error}")
            return
        except UnreadableMaterial as error:
            report.refused.append(f"{name}: I could not read its text ({error}).")
            return
        except BackendError as error:
            report.refused.append(f"{name}: {error.reason}.")
            return
        except Exception as error:  # the file is refused, the others go on
            log.warning("material not added (%s) course=%s", type(error).__name__, course)
            report.refused.append(f"{name}: something went wrong while adding it.")
            return
        pages_note = f" ({added.pages} pages)" if added.pages else ""
        report.added.append(f"{escape_mrkdwn(added.name)}{pages_note}")

    async def _download(self, client: AsyncWebClient, file_id: str) -> tuple[dict[str, Any], bytes]:
        """The file's info and its bytes, fetched with the bot token; bounded in size and time."""
        try:
            info = (await client.files_info(file=file_id)).get("file") or {}
        except SlackApiError as error:
            raise DownloadRefused(f"Slack did not give it ({slack_error_code(error)}).") from None
        url = info.get("url_private_download") or info.get("url_private")
        if not isinstance(url, str) or not url:
            raise DownloadRefused("Slack gave no link to download it.")
        if int(info.get("size") or 0) > self._max_bytes:
            raise DownloadRefused(f"larger than {self._max_bytes // 1_000_000} MB.")
        headers = {"Authorization": f"Bearer {client.token}"}
        try:
            async with asyncio.timeout(self._download_seconds):
                async with self._session.get(url, headers=headers, allow_redirects=True) as reply:
                    if reply.status != 200:
                        raise DownloadRefused(f"Slack refused the download (HTTP {reply.status}).")
                    data = bytearray()
                    async for piece in reply.content.iter_chunked(READ_BYTES):
                        data.extend(piece)
                        if len(data) > self._max_bytes:
                            limit = self._max_bytes // 1_000_000
                            raise DownloadRefused(f"larger than {limit} MB.")
        except TimeoutError:
            raise DownloadRefused("the download took too long.") from None
        except aiohttp.ClientError as error:
            raise DownloadRefused(f"the download failed ({type(error).__name__}).") from None
        return info, bytes(data)
