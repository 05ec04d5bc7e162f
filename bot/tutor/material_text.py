"""The text of a material file, read on the bot's machine: PDFs page by page (pypdf),
Markdown and text as they are."""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from bot.turns.text import clean_text
from bot.tutor.materials import MaterialKind, Page

log = logging.getLogger(__name__)


class UnreadableMaterial(Exception):
    """The file holds no text the bot can read (a broken or scanned PDF, not UTF-8…)."""


def pages_of(kind: MaterialKind, data: bytes) -> list[Page]:
    """The material's text, page by page for a PDF (pages numbered from 1, empty ones left
    out). Raises UnreadableMaterial when there is no text to be had."""
    if kind is MaterialKind.PDF:
        pages = pdf_pages(data)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UnreadableMaterial("not UTF-8 text") from None
        pages = [Page(clean_text(text))] if text.strip() else []
    if not pages:
        raise UnreadableMaterial("no text")
    return pages


def pdf_pages(data: bytes, char_limit: int | None = None) -> list[Page]:
    """A PDF's pages with text (numbered from 1), read until `char_limit` characters were
    read if given. Raises UnreadableMaterial for a file pypdf cannot read."""
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = []
        total = 0
        for number, page in enumerate(reader.pages, start=1):
            text = clean_text(page.extract_text() or "")
            if text.strip():
                pages.append(Page(text, number))
                total += len(text)
            if char_limit is not None and total >= char_limit:
                break
        return pages
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as error:
        log.info("a PDF could not be read (%s)", type(error).__name__)
        raise UnreadableMaterial("not a readable PDF") from None
