"""Files shared with a question: read when its run starts, declined kindly when they cannot be.

A turn's record holds only the Slack file ids (`Turn.files`); the bytes are read through an
`AttachmentSource` (bot.slack.attachments reads Slack), so the engine and the backends stay
free of Slack. Files a backend uploads to the model server for an attachment belong to the
conversation: `bot.backends.provider_files.ProviderFiles` lists them in Redis under
`Keys.provider_files(<conversation key>)`, and forgetting the conversation
(`bot.turns.forget`) deletes them there and at the server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from bot.backends.base import Attachment, AttachmentKind
from bot.turns.models import Turn

log = logging.getLogger(__name__)

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
PDF_TYPE = "application/pdf"
# Extracted text of one PDF sent where the model takes no file input (about 12k tokens).
PDF_TEXT_LIMIT = 48_000


@dataclass(frozen=True)
class Fetched:
    """What could be read of a turn's files, and a sentence for each that could not."""

    attachments: tuple[Attachment, ...] = ()
    declined: tuple[str, ...] = ()

    def note(self) -> str | None:
        """The kind remark shown under the answer when some file was declined."""
        if not self.declined:
            return None
        return " ".join(self.declined) + " I answered from your message alone."


class AttachmentSource(Protocol):
    """Reads the files of a turn (see bot.slack.attachments)."""

    async def fetch(self, turn: Turn, *, images: bool) -> Fetched:
        """The turn's files as attachments; `images`: whether images can be taken at all."""
        ...


def declined_type(name: str) -> str:
    return f"I can't read “{name}”: I can look at images (PNG, JPEG, GIF, WebP) and PDFs only."


def declined_size(name: str, limit_bytes: int) -> str:
    return f"“{name}” is larger than the {limit_bytes / 1_000_000:g} MB I can read."


def declined_image(name: str) -> str:
    return f"I can't look at images here, so I didn't read “{name}”."


def declined_unreadable(name: str) -> str:
    return f"I couldn't read “{name}” from Slack just now."


def kind_of(mimetype: str) -> AttachmentKind | None:
    if mimetype in IMAGE_TYPES:
        return AttachmentKind.IMAGE
    if mimetype == PDF_TYPE:
        return AttachmentKind.PDF
    return None


def pdf_text(data: bytes) -> str:
    """A PDF's text, page by page (bounded); "" when it has none or cannot be parsed."""
    # Imported when a PDF arrives (pypdf with it): start-up stays light.
    from bot.tutor.material_text import UnreadableMaterial, pdf_pages

    try:
        pages = pdf_pages(data, char_limit=PDF_TEXT_LIMIT)
    except UnreadableMaterial:
        return ""
    return "\n\n".join(page.text for page in pages)[:PDF_TEXT_LIMIT]
