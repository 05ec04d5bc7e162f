"""`python -m bench.materials` (part of `make bench`): how long `chat` takes to index a
40-page PDF as a course material, beside a baseline measured in the same run.

The PDF is generated (bot/local/sample_pdf.py: about 2,500 characters of text a page). The
baseline only extracts its text (pypdf); indexing is what the bot does when an admin adds the
file on `chat`: extract, cut into passages, store them in Redis, then build the BM25 index
(the first question does) and rank the passages for one question. A redis-server of the
benchmark's own holds the passages. Each figure is the median of a few runs.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from bench.redis_server import RedisServer
from bot.backends.passages import LocalLibrary
from bot.local.sample_pdf import pdf_with_pages
from bot.storage.keys import Keys
from bot.turns.forget import ForgetJob, ForgetOutcome
from bot.tutor.material_text import pages_of
from bot.tutor.materials import (
    CourseMaterials,
    CourseRef,
    MaterialKind,
    MaterialStore,
    new_material,
)

PAGES = 40
RUNS = 3
WORDS = (
    "parliament charter baron king church council law court tax trade guild town abbey "
    "monastery crusade treaty knight sheriff manor harvest plague revolt succession crown"
).split()


def page_text(number: int) -> str:
    """About 2,500 characters of varied prose for page `number`."""
    sentences = []
    for i in range(40):
        picked = [WORDS[(number * 7 + i * 3 + k) % len(WORDS)] for k in range(8)]
        sentences.append(f"In {1000 + number * 10 + i} the {' '.join(picked)} changed.")
    return " ".join(sentences)


class NothingAtTheProvider:
    """`chat` sends no material anywhere: a forgotten course leaves no forget job."""

    async def record_deletes(self, **ids: object) -> ForgetJob | None:
        return None

    async def finish(self, job: ForgetJob) -> ForgetOutcome:
        return ForgetOutcome.FORGOTTEN

    async def cancel(self, job: ForgetJob) -> None:
        return None


async def index_once(redis: Redis, keys: Keys, data: bytes, run: int) -> float:
    store = MaterialStore(redis, keys)
    library = LocalLibrary(redis, keys, store)
    materials = CourseMaterials(store, library, NothingAtTheProvider())
    course = CourseRef("TBENCH", f"C{run}")
    started = time.perf_counter()
    pages = pages_of(MaterialKind.PDF, data)
    material = new_material("reader.pdf", MaterialKind.PDF, len(data), "UBENCH")
    await materials.add(course, material, pages, data)
    found = await library.passages_for(course, "Which charter did the barons force on the king?", 0)
    seconds = time.perf_counter() - started
    assert found, "the index found nothing"
    await materials.forget(course)
    return seconds


def extract_once(data: bytes) -> float:
    started = time.perf_counter()
    pages_of(MaterialKind.PDF, data)
    return time.perf_counter() - started


async def measure(redis_url: str) -> tuple[float, float, int]:
    data = pdf_with_pages([page_text(n) for n in range(1, PAGES + 1)])
    redis = Redis.from_url(redis_url, decode_responses=True)
    keys = Keys("bench-materials:")
    try:
        baseline = statistics.median(extract_once(data) for _ in range(RUNS))
        indexing = statistics.median(
            [await index_once(redis, keys, data, run) for run in range(RUNS)]
        )
    finally:
        await redis.aclose()
    return baseline, indexing, len(data)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="tutor-bench-materials-") as workdir:
        server = RedisServer(Path(workdir))
        server.start()
        try:
            baseline, indexing, size = asyncio.run(measure(server.url))
        finally:
            server.stop()
    print(f"Course materials on chat: a {PAGES}-page PDF ({size // 1024} kB), median of {RUNS}")
    print("| step | seconds |")
    print("| --- | --- |")
    print(f"| baseline: extracting its text only (pypdf) | {baseline:.2f} |")
    print(f"| indexing: extract, chunk, store in Redis, BM25 index, one query | {indexing:.2f} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
