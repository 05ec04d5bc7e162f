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
WORD_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
OLD_WORD_TYPE = "application/msword"  # .doc: no well-kept library reads it
# Extracted text of one PDF sent where the model takes no file input, or of one Word
# document (about 12k tokens).
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


class UnreadableAttachment(Exception):
    """A document whose text cannot be read; the message says why, in plain words."""


class AttachmentSource(Protocol):
    """Reads the files of a turn (see bot.slack.attachments)."""

    async def fetch(self, turn: Turn, *, images: bool) -> Fetched:
        """The turn's files as attachments; `images`: whether images can be taken at all."""
        ...


def declined_type(name: str, mimetype: str = "") -> str:
    if mimetype == OLD_WORD_TYPE:
        return f"I can't read “{name}”: it is an old Word file (.doc); save it as .docx to share."
    return (
        f"I can't read “{name}”: I can look at images (PNG, JPEG, GIF, WebP), PDFs and Word "
        "documents (.docx) only."
    )


def declined_size(name: str, limit_bytes: int) -> str:
    return f"“{name}” is larger than the {limit_bytes / 1_000_000:g} MB I can read."


def declined_image(name: str) -> str:
    return f"I can't look at images here, so I didn't read “{name}”."


def declined_unreadable(name: str) -> str:
    return f"I couldn't read “{name}” from Slack just now."


def declined_text(name: str, reason: str) -> str:
    return f"I couldn't read the text of “{name}” ({reason})."


def kind_of(mimetype: str) -> AttachmentKind | None:
    if mimetype in IMAGE_TYPES:
        return AttachmentKind.IMAGE
    if mimetype == PDF_TYPE:
        return AttachmentKind.PDF
    if mimetype == WORD_TYPE:
        return AttachmentKind.WORD
    return None


def attachment_text(kind: AttachmentKind, data: bytes) -> str:
    """The text a document attachment gives the model (bounded); "" for an image. Blocking
    (a parser): run it in a thread. Raises UnreadableAttachment for a Word file that cannot
    be read (a PDF without text gives "", and goes as a file where the model takes one)."""
    if kind is AttachmentKind.PDF:
        return pdf_text(data)
    if kind is AttachmentKind.WORD:
        return word_text(data)
    return ""


def pdf_text(data: bytes) -> str:
    """A PDF's text, page by page (bounded); "" when it has none or cannot be parsed."""
    # Imported when a PDF arrives (pypdf with it): start-up stays light.
    from bot.tutor.material_text import UnreadableMaterial, pdf_pages

    try:
        pages = pdf_pages(data, char_limit=PDF_TEXT_LIMIT)
    except UnreadableMaterial:
        return ""
    return "\n\n".join(page.text for page in pages)[:PDF_TEXT_LIMIT]


def word_text(data: bytes) -> str:
    """A Word document's text (bounded). Raises UnreadableAttachment when it has none or
    cannot be read (corrupt, password-protected, an old .doc renamed)."""
    from bot.tutor.material_text import UnreadableMaterial, docx_text

    try:
        text = docx_text(data, char_limit=PDF_TEXT_LIMIT)
    except UnreadableMaterial as error:
        raise UnreadableAttachment(str(error)) from None
    if not text.strip():
        raise UnreadableAttachment("it has no text")
    return text
