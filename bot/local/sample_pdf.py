"""Small PDFs with real text, made with pypdf: for tests, benchmarks and trying course
materials locally (no fixture files: each is generated where it is needed).

Each page gets a Helvetica text stream; pypdf's own text extraction reads it back.
"""

from __future__ import annotations

import io

from pypdf import PdfWriter
from pypdf.generic import (
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
)

LINE_CHARS = 90


def pdf_with_pages(pages: list[str]) -> bytes:
    """A PDF whose page n holds `pages[n - 1]` (Latin-1 text, wrapped into lines)."""
    writer = PdfWriter()
    font = DictionaryObject({
        NameObject("/Type"): NameObject("/Font"),
        NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica"),
        NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
    })  # fmt: skip
    font_ref = writer._add_object(font)
    for text in pages:
        page = writer.add_blank_page(width=612, height=792)
        page[NameObject("/Resources")] = DictionaryObject({
            NameObject("/Font"): DictionaryObject({NameObject("/F1"): font_ref})
        })  # fmt: skip
        stream = DecodedStreamObject()
        stream.set_data(_text_operators(text).encode("latin-1"))
        page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _text_operators(text: str) -> str:
    lines = _wrapped(text)
    body = " T* ".join(f"({_escaped(line)}) Tj" for line in lines)
    return f"BT /F1 10 Tf 12 TL 40 750 Td {body} ET"


def _wrapped(text: str) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > LINE_CHARS:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return [*lines, line] if line else lines


def _escaped(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
