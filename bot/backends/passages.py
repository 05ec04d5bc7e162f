"""Course materials on `chat`: passages in Redis, ranked with BM25 on the bot's machine.

Nothing leaves the bot's machines: a material's text is cut into passages (about
`CHUNK_CHARS` characters, overlapping, each with its file name and page), kept in Redis per
course, and ranked per question with `rank_bm25.BM25Plus` (Okapi BM25 gives a term found in
half of the passages or more no weight: a course of one or two short files would never be
found), among the passages that share a word with the question. The best passages go into the
system message, numbered [1], [2]…, within a share of the context budget; the model is asked
to cite them by number, and those marks become footnotes naming the file and page.

The index is built once per process and course, and again when the course's materials
version (in Redis) has moved on.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from rank_bm25 import BM25Plus
from redis.asyncio import Redis

from bot.backends.base import Citation
from bot.backends.chat_history import estimate_tokens
from bot.storage.keys import Keys
from bot.tutor.materials import CourseRef, Material, MaterialStore, Page, ProviderCopies

CHUNK_CHARS = 800
CHUNK_OVERLAP = 150
TOP_PASSAGES = 4
# Of the context budget, at most this share goes to passages (the rest: instructions, history).
PASSAGE_SHARE = 0.4
PASSAGE_TOKENS_WITHOUT_BUDGET = 1500
MATERIALS_PREAMBLE = (
    "Passages from the course's materials that may help with the learner's question follow, "
    "numbered. Use them where they are relevant, and cite each one you use with its number "
    "in square brackets, such as [1], right after what it supports."
)
_WORD = re.compile(r"\w+", re.UNICODE)
_MARK = re.compile(r"\[(\d{1,2})\]")


@dataclass(frozen=True)
class Passage:
    """A piece of a material: its text, file name and page (None: not paged)."""

    text: str
    name: str
    page: int | None = None

    @property
    def label(self) -> str:
        return f"{self.name}, p. {self.page}" if self.page is not None else self.name


def chunks_of(name: str, pages: list[Page]) -> list[Passage]:
    """The material's passages: each page cut into overlapping pieces, at word boundaries."""
    passages: list[Passage] = []
    for page in pages:
        text = " ".join(page.text.split())
        start = 0
        while start < len(text):
            end = min(len(text), start + CHUNK_CHARS)
            if end < len(text):  # end at a space, not inside a word
                space = text.rfind(" ", start + CHUNK_CHARS // 2, end)
                end = space if space > start else end
            passages.append(Passage(text[start:end].strip(), name, page.number))
            if end >= len(text):
                break
            start = max(end - CHUNK_OVERLAP, start + 1)
            space = text.find(" ", start, end)
            start = space + 1 if space != -1 else start
    return [p for p in passages if p.text]


def words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


@dataclass
class _Index:
    version: int
    material_ids: tuple[str, ...]  # with the version: a course forgotten and made anew
    passages: list[Passage]
    terms: list[frozenset[str]]  # each passage's words
    ranking: BM25Plus | None


class LocalLibrary:
    """The `CourseLibrary` of `chat`: passages in Redis, nothing sent anywhere."""

    def __init__(self, redis: Redis, keys: Keys, store: MaterialStore) -> None:
        self._redis = redis
        self._keys = keys
        self._store = store
        self._indexes: dict[str, _Index] = {}  # per course, while its version holds

    async def add(
        self, course: CourseRef, material: Material, pages: list[Page], data: bytes
    ) -> Material:
        passages = [asdict(p) for p in chunks_of(material.name, pages)]
        await self._redis.hset(self._key(course), material.material_id, json.dumps(passages))
        return material

    async def remove(self, course: CourseRef, material: Material) -> None:
        await self._redis.hdel(self._key(course), material.material_id)

    async def remove_all(self, course: CourseRef) -> None:
        await self._redis.delete(self._key(course))
        self._indexes.pop(str(course), None)

    async def held_at_provider(self, course: CourseRef) -> ProviderCopies:
        return ProviderCopies()  # nothing leaves the bot's machines

    async def passages_for(self, course: CourseRef, question: str, budget: int) -> list[Passage]:
        """The passages that best answer `question`, best first, within `budget` tokens
        (0: no budget of the turn's; a share of a default applies)."""
        index = await self._index(course)
        terms = words(question)
        if index.ranking is None or not terms:
            return []
        scores = index.ranking.get_scores(terms)
        asked = set(terms)
        ranked = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
        allowed = int(budget * PASSAGE_SHARE) if budget > 0 else PASSAGE_TOKENS_WITHOUT_BUDGET
        chosen: list[Passage] = []
        used = 0
        for i in ranked[:TOP_PASSAGES]:
            if not asked & index.terms[i]:  # BM25+ scores every passage: these rank last
                break
            cost = estimate_tokens(index.passages[i].text)
            if used + cost > allowed:
                break
            chosen.append(index.passages[i])
            used += cost
        return chosen

    async def _index(self, course: CourseRef) -> _Index:
        version = await self._store.version(course)
        material_ids = tuple(sorted(await self._redis.hkeys(self._key(course))))
        cached = self._indexes.get(str(course))
        if cached is not None and (cached.version, cached.material_ids) == (version, material_ids):
            return cached
        stored = await self._redis.hgetall(self._key(course))
        passages = [
            Passage(p["text"], p["name"], p.get("page"))
            for material_id in sorted(stored)
            for p in json.loads(stored[material_id])
        ]
        tokens = [words(p.text) for p in passages]
        ranking = BM25Plus(tokens) if passages else None
        terms = [frozenset(t) for t in tokens]
        index = _Index(version, tuple(sorted(stored)), passages, terms, ranking)
        self._indexes[str(course)] = index
        return index

    def _key(self, course: CourseRef) -> str:
        return self._keys.material_chunks(course.team_id, course.channel_id)


def with_passages(instructions: str, passages: list[Passage]) -> str:
    """The system message of a turn: its instructions, then the numbered passages."""
    if not passages:
        return instructions
    listed = "\n\n".join(f"[{n}] ({p.label})\n{p.text}" for n, p in enumerate(passages, start=1))
    return f"{instructions}\n\n{MATERIALS_PREAMBLE}\n\n{listed}"


def passage_citations(text: str, passages: list[Passage]) -> list[Citation]:
    """The answer's [n] marks that name a passage, as citations replacing those marks."""
    citations = []
    for match in _MARK.finditer(text):
        number = int(match.group(1))
        if 1 <= number <= len(passages):
            label = passages[number - 1].label
            citations.append(Citation(label, None, match.start(), match.end(), replaces_span=True))
    return citations


def passages_to_json(passages: list[Passage]) -> str:
    return json.dumps([asdict(p) for p in passages])


def passages_from_json(raw: str | None) -> list[Passage]:
    if not raw:
        return []
    try:
        return [Passage(p["text"], p["name"], p.get("page")) for p in json.loads(raw)]
    except (ValueError, KeyError, TypeError):
        return []
