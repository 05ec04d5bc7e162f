"""Course materials on `responses` and `assistants`: one vector store per course at the provider.

A material is uploaded as a file (`purpose: assistants`, with its kind's media type: the
provider's file search goes by type) and attached to the course's vector store, which is
made with the first material; the bot waits for the store to index it (polling, bounded).
Runs of the course's turns then get the `file_search` tool over that store (`tools_for`),
and the provider's `file_citation` annotations become footnotes naming the file. Removing
a material deletes it from the store and the file itself; removing all of a course's
deletes the store and every file (forgetting a course hands them to a forget job instead,
`held_at_provider`, so that a failure is retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import openai

from bot.backends.openai_client import translated_errors
from bot.tutor.materials import (
    MIMETYPE_OF_KIND,
    CourseRef,
    Material,
    MaterialStore,
    Page,
    ProviderCopies,
)

log = logging.getLogger(__name__)

INDEXING_SECONDS = 60.0  # how long a material may take to be indexed before it is refused
POLL_SECONDS = 0.1  # the first wait between checks; each next one doubles, up to 2 s
MAX_POLL_SECONDS = 2.0


class MaterialNotIndexed(Exception):
    """The provider did not finish indexing a material (failed, or took too long)."""


class VectorStoreLibrary:
    """The `CourseLibrary` of `responses` and `assistants`: files in a vector store per course."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        store: MaterialStore,
        *,
        indexing_seconds: float = INDEXING_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._client = client
        self._store = store
        self._indexing_seconds = indexing_seconds
        self._poll_seconds = poll_seconds

    async def add(
        self, course: CourseRef, material: Material, pages: list[Page], data: bytes
    ) -> Material:
        with translated_errors("upload material"):
            uploaded = await self._client.files.create(
                file=(material.name, data, MIMETYPE_OF_KIND[material.kind]), purpose="assistants"
            )
        try:
            vector_store_id = await self._vector_store(course)
            with translated_errors("attach material"):
                await self._client.vector_stores.files.create(
                    vector_store_id, file_id=uploaded.id, attributes={"material": material.name}
                )
            await self._indexed(vector_store_id, uploaded.id)
        except BaseException:
            await self._delete_file(None, uploaded.id)
            raise
        return replace(material, provider_file_id=uploaded.id)

    async def remove(self, course: CourseRef, material: Material) -> None:
        if material.provider_file_id:
            await self._delete_file(
                await self._store.vector_store(course), material.provider_file_id
            )

    async def remove_all(self, course: CourseRef) -> None:
        for material in await self._store.list(course):
            await self._delete_file(None, material.provider_file_id)
        vector_store_id = await self._store.vector_store(course)
        if vector_store_id:
            with translated_errors("delete vector store"), _gone_is_fine():
                await self._client.vector_stores.delete(vector_store_id)
            await self._store.set_vector_store(course, None)

    async def held_at_provider(self, course: CourseRef) -> ProviderCopies:
        materials = await self._store.list(course)
        vector_store_id = await self._store.vector_store(course)
        return ProviderCopies(
            tuple(m.provider_file_id for m in materials if m.provider_file_id),
            (vector_store_id,) if vector_store_id else (),
        )

    async def vector_store_ids(self, course: CourseRef) -> list[str]:
        """The course's vector store, for its runs' `file_search` (none without materials)."""
        vector_store_id = await self._store.vector_store(course)
        return [vector_store_id] if vector_store_id else []

    async def _vector_store(self, course: CourseRef) -> str:
        existing = await self._store.vector_store(course)
        if existing:
            return existing
        with translated_errors("create vector store"):
            created = await self._client.vector_stores.create(
                name=f"tutor course {course}"[:64], metadata={"course": str(course)[:512]}
            )
        await self._store.set_vector_store(course, created.id)
        return created.id

    async def _indexed(self, vector_store_id: str, file_id: str) -> None:
        """Wait until the store has indexed the file; raise MaterialNotIndexed otherwise."""
        deadline = time.monotonic() + self._indexing_seconds
        wait = self._poll_seconds
        while True:
            with translated_errors("check material"):
                attached = await self._client.vector_stores.files.retrieve(
                    file_id, vector_store_id=vector_store_id
                )
            if attached.status == "completed":
                return
            if attached.status in ("failed", "cancelled"):
                reason = attached.last_error.message if attached.last_error else attached.status
                raise MaterialNotIndexed(reason)
            if time.monotonic() >= deadline:
                raise MaterialNotIndexed("indexing took too long")
            await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
            wait = min(wait * 2, MAX_POLL_SECONDS)

    async def _delete_file(self, vector_store_id: str | None, file_id: str) -> None:
        """Delete a file (from the store first, where it is attached); one already gone is fine."""
        if not file_id:
            return
        if vector_store_id:
            with translated_errors("detach material"), _gone_is_fine():
                await self._client.vector_stores.files.delete(
                    file_id, vector_store_id=vector_store_id
                )
        with translated_errors("delete material"), _gone_is_fine():
            await self._client.files.delete(file_id)


@contextlib.contextmanager
def _gone_is_fine() -> Iterator[None]:
    """Deleting what the provider no longer has (404) is what was wanted."""
    try:
        yield
    except openai.NotFoundError:
        log.info("already deleted at the provider")


def file_search_tools(vector_store_ids: list[str]) -> list[dict[str, Any]]:
    """The `file_search` tool over these stores (none: no tool)."""
    if not vector_store_ids:
        return []
    return [{"type": "file_search", "vector_store_ids": vector_store_ids}]
