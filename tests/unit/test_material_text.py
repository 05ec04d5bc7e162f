"""Reading course materials and attachments on the bot's machine: Word documents (.docx)."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest

from bot.backends.base import AttachmentKind
from bot.local.sample_docx import docx_with
from bot.slack.course_modal import course_modal
from bot.turns import attachments
from bot.tutor import material_text
from bot.tutor.material_text import UnreadableMaterial, docx_text, pages_of
from bot.tutor.materials import MaterialKind, kind_of, refusal

WORD_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_a_word_document_is_read_in_order_with_its_headings_and_table_rows() -> None:
    data = docx_with(
        "Medieval England",
        ["The Norman conquest began in 1066.", "Magna Carta was sealed at Runnymede."],
        [["King", "Year"], ["John", "1215"]],
    )
    [page] = pages_of(MaterialKind.WORD, data)
    assert page.number is None, "Word has no fixed pages"
    assert page.text.splitlines() == [
        "Medieval England",
        "The Norman conquest began in 1066.",
        "Magna Carta was sealed at Runnymede.",
        "King | Year",
        "John | 1215",
    ]


def test_a_merged_cell_is_read_once_and_a_nested_table_in_place() -> None:
    document = docx.Document()
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Reigns"
    table.cell(1, 0).text = "Henry II"
    table.cell(1, 1).add_table(rows=1, cols=2).rows[0].cells[0].text = "1154"
    document.add_paragraph("After the table.")
    out = io.BytesIO()
    document.save(out)
    assert docx_text(out.getvalue()).splitlines() == [
        "Reigns",
        "Henry II | 1154",
        "After the table.",
    ]


def test_the_text_read_is_bounded() -> None:
    data = docx_with("Notes", [f"Paragraph number {n} of many." for n in range(500)])
    text = docx_text(data, char_limit=1000)
    assert len(text) <= 1000 and text.startswith("Notes\nParagraph number 0")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not a zip at all", "not a readable Word (.docx) file"),
        (docx_with("Title", ["Some text."])[:2000], "not a readable Word (.docx) file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "password-protected"),
    ],
    ids=["garbage", "truncated", "encrypted-or-doc"],
)
def test_a_corrupt_or_encrypted_file_is_unreadable_not_a_crash(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableMaterial, match=reason.replace("(", r"\(").replace(")", r"\)")):
        pages_of(MaterialKind.WORD, data)


def test_a_zip_that_is_not_a_word_document_is_unreadable() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(UnreadableMaterial):
        docx_text(out.getvalue())


def test_a_document_that_unpacks_to_too_much_is_refused_before_it_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = docx_with("Title", ["x" * 5000])
    monkeypatch.setattr(material_text, "DOCX_UNPACKED_LIMIT", 1000)
    monkeypatch.setattr(docx, "Document", lambda *_: pytest.fail("read anyway"))
    with pytest.raises(UnreadableMaterial, match="unpacks to more"):
        docx_text(data)


def test_an_empty_document_has_no_text() -> None:
    with pytest.raises(UnreadableMaterial, match="no text"):
        pages_of(MaterialKind.WORD, docx_with("", []))


def test_docx_is_a_material_kind_and_an_old_doc_is_refused_with_a_reason() -> None:
    assert kind_of("reading.docx", "docx") is MaterialKind.WORD
    assert kind_of("reading.docx") is MaterialKind.WORD
    assert refusal("reading.docx", "docx", 1000, 10_000_000) is None
    assert "save it as .docx" in (refusal("old.doc", "doc", 1000, 10_000_000) or "")
    assert "save it as .docx" in (refusal("old.doc", "", 1000, 10_000_000) or "")
    other = refusal("sheet.xlsx", "xlsx", 1000, 10_000_000) or ""
    assert "only PDF, Word (.docx), Markdown and text files" in other


def test_the_course_forms_file_input_takes_docx() -> None:
    form = course_modal("C1", None)
    [files] = [b for b in form["blocks"] if b.get("block_id") == "course_files"]
    assert "docx" in files["element"]["filetypes"]
    assert "Word (.docx)" in files["hint"]["text"]


def test_a_word_attachment_gives_its_text_and_a_broken_one_a_reason() -> None:
    assert attachments.kind_of(WORD_TYPE) is AttachmentKind.WORD
    text = attachments.attachment_text(AttachmentKind.WORD, docx_with("Essay", ["Solon."]))
    assert text == "Essay\nSolon."
    with pytest.raises(attachments.UnreadableAttachment, match="not a readable Word"):
        attachments.attachment_text(AttachmentKind.WORD, b"PK\x03\x04broken")
    assert attachments.kind_of("application/msword") is None
    assert "save it as .docx" in attachments.declined_type("old.doc", "application/msword")
