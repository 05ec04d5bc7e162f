"""Small Word documents (.docx), made with python-docx: for tests and trying course materials
locally (no fixture files: each is generated where it is needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import docx


def docx_with(heading: str, paragraphs: Sequence[str], rows: Sequence[Sequence[str]] = ()) -> bytes:
    """A .docx: a heading, the paragraphs, then a table of `rows` (the first its header)."""
    document = docx.Document()
    document.add_heading(heading, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if rows:
        table = document.add_table(rows=len(rows), cols=max(len(row) for row in rows))
        for cells, row in zip(table.rows, rows, strict=True):
            for cell, text in zip(cells.cells, row, strict=False):
                cell.text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
