"""A course's materials: the files a teacher added in the course form, as the bot keeps them.

What is kept here is the list (file names, kinds, sizes, pages, the provider's file id where
the file was uploaded) and a version raised at every change, so that search indexes built
from it are rebuilt. Where the text goes depends on the backend (`CourseLibrary`): a vector
store at the provider (`responses`, `assistants`, see `bot.backends.file_search`) or
passages in Redis (`chat`, see `bot.backends.passages`).

Keys (see `bot.storage.keys`): `materials:<team>:<channel>` (a hash: material id → JSON),
`materials-state:<team>:<channel>` (version, vector store id).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Protocol

from redis.asyncio import Redis

from bot.storage.keys import Keys
from bot.turns.forget import ForgetJob, ForgetOutcome

# Slack's file_input takes at most 10 files of at most 10 MB each.
MAX_FILES_PER_FORM = 10


class MaterialKind(StrEnum):
    """The kinds of file a course takes; each is read on the bot's machine."""

    PDF = "pdf"
    MARKDOWN = "markdown"
    TEXT = "text"
    WORD = "word"  # .docx (Office Open XML), read with python-docx


# Slack's `filetype` (and the name's extension) → kind. The old binary Word format (.doc) is
# not taken: no well-kept library reads it (`refusal` asks for .docx instead).
KIND_OF_FILETYPE: dict[str, MaterialKind] = {
    "pdf": MaterialKind.PDF,
    "markdown": MaterialKind.MARKDOWN,
    "md": MaterialKind.MARKDOWN,
    "text": MaterialKind.TEXT,
    "txt": MaterialKind.TEXT,
    "docx": MaterialKind.WORD,
}
ACCEPTED_EXTENSIONS = ("pdf", "md", "markdown", "txt", "docx")
OLD_WORD_FILETYPE = "doc"
# What the provider is told a material is, by kind (its file search goes by type).
MIMETYPE_OF_KIND: dict[MaterialKind, str] = {
    MaterialKind.PDF: "application/pdf",
    MaterialKind.MARKDOWN: "text/markdown",
    MaterialKind.TEXT: "text/plain",
    MaterialKind.WORD: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


@dataclass(frozen=True)
class Material:
    """One file of a course."""

    material_id: str
    name: str
    kind: MaterialKind
    size: int
    pages: int = 0  # PDF pages (0: not paged)
    added_by: str = ""
    added_at: float = 0.0
    provider_file_id: str = ""  # the file at the model provider (responses, assistants)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> Material | None:
        try:
            data = json.loads(raw)
            return cls(**{**data, "kind": MaterialKind(data["kind"])})
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True)
class Page:
    """Text of a material, with its page number where it has pages (None: not paged)."""

    text: str
    number: int | None = None


@dataclass(frozen=True)
class CourseRef:
    """Which course's materials a turn may search: a channel of a workspace."""

    team_id: str
    channel_id: str

    def __str__(self) -> str:
        return f"{self.team_id}:{self.channel_id}"

    @classmethod
    def parse(cls, text: str) -> CourseRef | None:
        team_id, _, channel_id = (text or "").partition(":")
        return cls(team_id, channel_id) if team_id and channel_id else None


def kind_of(name: str, filetype: str = "") -> MaterialKind | None:
    """The kind of a file from Slack's `filetype`, else its name's extension; None: refused."""
    found = KIND_OF_FILETYPE.get((filetype or "").lower())
    if found is not None:
        return found
    return KIND_OF_FILETYPE.get(extension_of(name))


def extension_of(name: str) -> str:
    """The file name's extension, lower case ("" without one)."""
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def refusal(name: str, filetype: str, size: int, max_bytes: int) -> str | None:
    """Why a file cannot be a course material (a sentence), or None when it can."""
    if kind_of(name, filetype) is None:
        if OLD_WORD_FILETYPE in ((filetype or "").lower(), extension_of(name)):
            return f"{name}: old Word files (.doc) cannot be read; save it as .docx and add that."
        return f"{name}: only PDF, Word (.docx), Markdown and text files can be course materials."
    if size > max_bytes:
        return f"{name}: larger than the {max_bytes // 1_000_000} MB a material may have."
    return None


def new_material(name: str, kind: MaterialKind, size: int, added_by: str) -> Material:
    return Material(f"mat_{uuid.uuid4().hex[:16]}", name, kind, size, 0, added_by, time.time())


class MaterialStore:
    """The materials of each course, and their version and vector store, in Redis."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def list(self, course: CourseRef) -> list[Material]:
        """The course's materials, oldest first."""
        stored = await self._redis.hgetall(self._keys.materials(course.team_id, course.channel_id))
        found = [Material.from_json(raw) for raw in stored.values()]
        return sorted((m for m in found if m is not None), key=lambda m: m.added_at)

    async def get(self, course: CourseRef, material_id: str) -> Material | None:
        key = self._keys.materials(course.team_id, course.channel_id)
        raw = await self._redis.hget(key, material_id)
        return Material.from_json(raw) if raw else None

    async def save(self, course: CourseRef, material: Material) -> None:
        """Add (or update) a material; the course's version moves on."""
        async with self._redis.pipeline(transaction=True) as pipe:
            key = self._keys.materials(course.team_id, course.channel_id)
            pipe.hset(key, material.material_id, material.to_json())
            pipe.hincrby(self.state_key(course), "version", 1)
            await pipe.execute()

    async def remove(self, course: CourseRef, material_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys.materials(course.team_id, course.channel_id), material_id)
            pipe.hincrby(self.state_key(course), "version", 1)
            await pipe.execute()

    async def version(self, course: CourseRef) -> int:
        return int(await self._redis.hget(self.state_key(course), "version") or 0)

    async def vector_store(self, course: CourseRef) -> str | None:
        return await self._redis.hget(self.state_key(course), "vector_store") or None

    async def set_vector_store(self, course: CourseRef, vector_store_id: str | None) -> None:
        if vector_store_id is None:
            await self._redis.hdel(self.state_key(course), "vector_store")
        else:
            await self._redis.hset(self.state_key(course), "vector_store", vector_store_id)

    async def forget(self, course: CourseRef) -> None:
        """Nothing of the course's materials stays in Redis: its list, state and passages
        (one slot on a cluster: the workspace's)."""
        await self._redis.delete(
            self._keys.materials(course.team_id, course.channel_id),
            self.state_key(course),
            self._keys.material_chunks(course.team_id, course.channel_id),
        )

    def state_key(self, course: CourseRef) -> str:
        """The course's version and vector store (a hash)."""
        return self._keys.materials_state(course.team_id, course.channel_id)


class CourseLibrary(Protocol):
    """Where a backend keeps the text of a course's materials for search."""

    async def add(
        self, course: CourseRef, material: Material, pages: list[Page], data: bytes
    ) -> Material:
        """Make the material searchable; return it with what the library noted (its
        provider file id). Raises on failure, leaving nothing of it behind."""
        ...

    async def remove(self, course: CourseRef, material: Material) -> None:
        """Delete the material's copies (at the provider, or its passages)."""
        ...

    async def remove_all(self, course: CourseRef) -> None:
        """Delete everything the library keeps for the course (a vector store, passages)."""
        ...

    async def held_at_provider(self, course: CourseRef) -> ProviderCopies:
        """What of the course the model provider holds (none where nothing leaves)."""
        ...


@dataclass(frozen=True)
class ProviderCopies:
    """A course's materials at the model provider: file ids and vector store ids."""

    file_ids: tuple[str, ...] = ()
    vector_store_ids: tuple[str, ...] = ()


class ProviderDeletes(Protocol):
    """Deleting at the provider what the bot no longer keeps, retried until done
    (`bot.turns.forget.ConversationForgetter`'s forget jobs)."""

    async def record_deletes(
        self, *, file_ids: Sequence[str], vector_store_ids: Sequence[str], void_while: str = ""
    ) -> ForgetJob | None: ...

    async def finish(self, job: ForgetJob) -> ForgetOutcome: ...

    async def cancel(self, job: ForgetJob) -> None: ...


class CourseMaterials:
    """Adding and removing a course's materials: the list in Redis and the library's copies."""

    def __init__(
        self, store: MaterialStore, library: CourseLibrary, deletes: ProviderDeletes
    ) -> None:
        self.store = store
        self._library = library
        self._deletes = deletes

    async def add(
        self, course: CourseRef, material: Material, pages: list[Page], data: bytes
    ) -> Material:
        paged = [p for p in pages if p.number is not None]
        material = replace(material, pages=len(paged))
        added = await self._library.add(course, material, pages, data)
        try:
            await self.store.save(course, added)
        except Exception:
            await self._library.remove(course, added)  # nothing of it behind
            raise
        return added

    async def remove(self, course: CourseRef, material_id: str) -> bool:
        """Remove one material everywhere; False when the course has no such material."""
        material = await self.store.get(course, material_id)
        if material is None:
            return False
        await self._library.remove(course, material)
        await self.store.remove(course, material_id)
        if not await self.store.list(course):  # the last one: its vector store goes too
            await self._library.remove_all(course)
        return True

    async def forget(self, course: CourseRef) -> ForgetOutcome:
        """Remove all of a course's materials everywhere (the course is deleted).

        What the provider holds of it becomes a forget job, then the course's keys go (one
        transaction), then the job is finished: FORGOTTEN, or PENDING when the provider
        failed (the job stays and the sweep tries it again). Raises redis errors (the
        course's keys are then kept, and the job cancelled or void)."""
        copies = await self._library.held_at_provider(course)
        job = await self._deletes.record_deletes(
            file_ids=copies.file_ids,
            vector_store_ids=copies.vector_store_ids,
            void_while=self.store.state_key(course),
        )
        try:
            await self.store.forget(course)
        except Exception:
            if job is not None:
                await self._deletes.cancel(job)
            raise
        return ForgetOutcome.FORGOTTEN if job is None else await self._deletes.finish(job)
