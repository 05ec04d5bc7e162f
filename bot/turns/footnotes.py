"""Citations as numbered footnotes: a mark after each cited passage, the sources listed below.

Backends differ in how they cite (Responses: URL citations over a passage; Assistants:
markers such as `【4:0†source】` in the text); both arrive here as `Citation`s, and the
answer the user sees is plain Markdown either way.
"""

from __future__ import annotations

from bot.backends.base import Citation

SOURCES_HEADING = "**Sources**"


def with_footnotes(text: str, citations: list[Citation]) -> str:
    """`text` with a `[n]` after each cited passage and a numbered list of the sources.

    A source cited several times keeps its first number; citations whose offsets do not
    fit the text (or overlap an earlier one) are listed without a mark.
    """
    if not citations:
        return text
    numbers: dict[tuple[str, str | None], int] = {}
    for citation in citations:
        numbers.setdefault(_source(citation), len(numbers) + 1)
    marked = text
    limit = len(text)  # marks go in from the end, so earlier offsets stay valid
    placed: set[tuple[int, int]] = set()
    for citation in sorted(_positioned(citations, len(text)), key=_end, reverse=True):
        start, end = citation.start or 0, citation.end or 0
        number = numbers[_source(citation)]
        if end > limit or (end, number) in placed:
            continue
        mark = f"[{number}]"
        if citation.replaces_span:
            marked = marked[:start] + mark + marked[end:]
            limit = start
        else:
            marked = marked[:end] + mark + marked[end:]
            limit = end
        placed.add((end, number))
    sources = [_listed(citation) for citation in _first_of_each(citations)]
    lines = [f"{index}. {source}" for index, source in enumerate(sources, start=1)]
    return "\n".join([marked.rstrip(), "", SOURCES_HEADING, *lines])


def _source(citation: Citation) -> tuple[str, str | None]:
    return (citation.label if citation.url is None else "", citation.url)


def _end(citation: Citation) -> int:
    return citation.end or 0


def _positioned(citations: list[Citation], length: int) -> list[Citation]:
    return [
        c
        for c in citations
        if c.start is not None and c.end is not None and 0 <= c.start <= c.end <= length
    ]


def _first_of_each(citations: list[Citation]) -> list[Citation]:
    seen: set[tuple[str, str | None]] = set()
    first: list[Citation] = []
    for citation in citations:
        if _source(citation) not in seen:
            seen.add(_source(citation))
            first.append(citation)
    return first


def _listed(citation: Citation) -> str:
    label = citation.label.replace("[", "(").replace("]", ")").strip() or (citation.url or "")
    return f"[{label}]({citation.url})" if citation.url else label
