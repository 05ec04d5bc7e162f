"""The text of a material file, read on the bot's machine: PDFs page by page (pypdf), Word
documents (.docx) in document order (python-docx), Markdown and text as they are."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator

import docx
from docx.document import Document
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph
from pypdf import PdfReader
from pypdf.errors import PyPdfError

from bot.turns.text import clean_text
from bot.tutor.materials import MaterialKind, Page

log = logging.getLogger(__name__)

# A .docx is a zip: its parts, unpacked, may take at most this much (a small file that unpacks
# to gigabytes is refused before python-docx reads it into memory).
DOCX_UNPACKED_LIMIT = 64_000_000
# Compound File (OLE) documents: an old binary .doc, or a .docx encrypted with a password.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class UnreadableMaterial(Exception):
    """The file holds no text the bot can read (a broken or scanned PDF, not UTF-8…)."""


def pages_of(kind: MaterialKind, data: bytes) -> list[Page]:
    """The material's text, page by page for a PDF (pages numbered from 1, empty ones left
    out); a Word document has no fixed pages (one Page, numbered None). Raises
    UnreadableMaterial when there is no text to be had."""
    if kind is MaterialKind.PDF:
        pages = pdf_pages(data)
    elif kind is MaterialKind.WORD:
        text = docx_text(data)
        pages = [Page(text)] if text.strip() else []
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


def docx_text(data: bytes, char_limit: int | None = None) -> str:
    """A Word document's text in document order: each paragraph (headings too) a line, each
    table row a line of its cells joined by " | ", read until `char_limit` characters were
    read if given. Raises UnreadableMaterial for a file that is not a readable .docx."""
    if data.startswith(OLE_MAGIC):
        raise UnreadableMaterial("an old .doc or a password-protected file; save it as .docx")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
        if unpacked > DOCX_UNPACKED_LIMIT:
            raise UnreadableMaterial("it unpacks to more than a Word document should")
        document = docx.Document(io.BytesIO(data))
        lines: list[str] = []
        total = 0
        for line in _lines(document):
            line = clean_text(line).strip()
            if line:
                lines.append(line)
                total += len(line) + 1
            if char_limit is not None and total >= char_limit:
                break
        text = "\n".join(lines)
        return text[:char_limit] if char_limit is not None else text
    except UnreadableMaterial:
        raise
    except Exception as error:  # python-docx and lxml on untrusted bytes: any failure is that
        log.info("a Word file could not be read (%s)", type(error).__name__)
        raise UnreadableMaterial("not a readable Word (.docx) file") from None


def _lines(container: Document | _Cell) -> Iterator[str]:
    """The lines of a document or a table cell, its paragraphs and tables in order."""
    for block in container.iter_inner_content():
        if isinstance(block, Paragraph):
            yield block.text
        elif isinstance(block, Table):
            yield from _table_lines(block)


def _table_lines(table: Table) -> Iterator[str]:
    """A table row by row; a cell merged across columns (python-docx gives the same cell once
    per column) is read once."""
    for row in table.rows:
        cells: list[str] = []
        previous: _Cell | None = None
        for cell in row.cells:
            if cell is not previous:
                cells.append(" ".join(line.strip() for line in _lines(cell) if line.strip()))
            previous = cell
        while cells and not cells[-1]:  # a row's empty end says nothing
            cells.pop()
        if cells:
            yield " | ".join(cells)
