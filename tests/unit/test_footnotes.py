"""Citations become numbered footnote marks and a list of sources."""

from __future__ import annotations

from bot.backends.base import Citation
from bot.turns.footnotes import with_footnotes

WIKI = "https://en.wikipedia.org/wiki/"


def test_no_citations_leave_the_text_alone() -> None:
    assert with_footnotes("Plain answer.", []) == "Plain answer."


def test_cited_passages_get_marks_and_a_source_cited_twice_keeps_its_number() -> None:
    text = "Herodotus wrote. Thucydides wrote. Herodotus travelled."
    citations = [
        Citation("Herodotus", WIKI + "Herodotus", 0, 16),
        Citation("Thucydides", WIKI + "Thucydides", 17, 34),
        Citation("Herodotus", WIKI + "Herodotus", 35, 55),
    ]
    assert with_footnotes(text, citations) == (
        "Herodotus wrote.[1] Thucydides wrote.[2] Herodotus travelled.[1]\n\n"
        "**Sources**\n"
        f"1. [Herodotus]({WIKI}Herodotus)\n"
        f"2. [Thucydides]({WIKI}Thucydides)"
    )


def test_server_markers_are_replaced_by_marks() -> None:
    text = "Solon reformed Athens【0:0†source】. He wrote poems【1:0†source】."
    first = text.index("【0")
    second = text.index("【1")
    citations = [
        Citation("File file-a", start=first, end=first + len("【0:0†source】"), replaces_span=True),
        Citation(
            "File file-b", start=second, end=second + len("【1:0†source】"), replaces_span=True
        ),
    ]
    assert with_footnotes(text, citations) == (
        "Solon reformed Athens[1]. He wrote poems[2].\n\n"
        "**Sources**\n1. File file-a\n2. File file-b"
    )


def test_citations_that_do_not_fit_the_text_are_only_listed() -> None:
    citations = [
        Citation("Far away", "https://example.org/a", 50, 80),
        Citation("No place [draft]", None),
    ]
    assert with_footnotes("Short.", citations) == (
        "Short.\n\n**Sources**\n1. [Far away](https://example.org/a)\n2. No place (draft)"
    )
