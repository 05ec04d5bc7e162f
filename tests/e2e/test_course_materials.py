"""Course materials: an admin adds files in the course form, answers cite them, removing them
leaves nothing behind: not at the model provider, not in Redis; nor does deleting the course."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.local.sample_docx import docx_with
from bot.local.sample_pdf import pdf_with_pages
from bot.settings import BackendKind, StreamingMode
from bot.turns.forget import JOB_RETRY_SECONDS
from tests.conftest import RedisServer
from tests.e2e.conftest import Harness, running_harness
from tests.e2e.test_courses import ADMIN, CHANNEL, LEARNER, open_course_form
from tests.redis_contents import naming, redis_contents

PDF_PAGES = [
    "Medieval England. The Norman conquest began in 1066 with the battle of Hastings.",
    "The Magna Carta was sealed at Runnymede in June 1215 by King John and his barons.",
    "Simon de Montfort called a parliament in 1265 that included knights and burgesses.",
]
WORD_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
NOTES = (
    "# Revision notes\n\nThe Domesday Book surveyed the land and livestock of England in 1086.\n"
)


async def add_materials(harness: Harness) -> None:
    """The admin adds a three-page PDF and a Markdown file to the channel's course."""
    harness.slack.workspace_admins.add(ADMIN)
    pdf = harness.slack.upload_file("history.pdf", pdf_with_pages(PDF_PAGES), user_id=ADMIN)
    notes = harness.slack.upload_file("notes.md", NOTES.encode(), user_id=ADMIN)
    form = await open_course_form(harness)
    kinds = {b["block_id"]: b["element"]["type"] for b in form["blocks"] if b["type"] == "input"}
    assert kinds["course_files"] == "file_input"
    status, body = await harness.events.submit_view(
        form, user_id=ADMIN,
        answers={"course_name": "History 8", "course_mode": "direct", "course_files": [pdf, notes]},
    )  # fmt: skip
    assert status == 200 and not body, body
    await wait_for_ephemeral(harness, "Added to the course's materials")
    added = ephemeral_texts(harness)[-1]
    assert "history.pdf (3 pages)" in added and "notes.md" in added


def ephemeral_texts(harness: Harness) -> list[str]:
    return [str(e["text"]) for e in harness.slack.ephemerals]


async def wait_for_ephemeral(harness: Harness, words: str) -> None:
    await harness.slack.wait_for(lambda: any(words in t for t in ephemeral_texts(harness)))


async def ask(harness: Harness, question: str) -> str:
    _, _, root = await harness.events.mention(CHANNEL, LEARNER, f"<@UBOT> {question}")
    [reply] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.wait_idle()
    return harness.slack.visible_text(CHANNEL, reply.ts)


async def test_materials_added_in_the_course_form_are_cited_in_answers(
    harness: Harness, backend: BackendKind, redis_server: RedisServer, redis_prefix: str
) -> None:
    await add_materials(harness)
    downloads = harness.slack.downloads
    assert downloads and all(with_token for _, with_token in downloads)

    answer = await ask(harness, "Where was the Magna Carta sealed?")
    assert "Runnymede" in answer, answer
    assert "Sources" in answer and "history.pdf" in answer, answer
    if backend is BackendKind.CHAT:
        assert "history.pdf, p. 2" in answer, "local passages know their page"
    if backend is BackendKind.RESPONSES:
        [create] = [r for r in harness.openai.requests if r.path.endswith("/responses")]
        [tool] = create.json["tools"]
        assert tool["type"] == "file_search" and tool["vector_store_ids"]
        assert create.json["include"] == ["file_search_call.results"]

    # Removing every material leaves nothing behind, at the provider or in Redis.
    form = await open_course_form(harness)
    [remove] = [b for b in form["blocks"] if b.get("block_id") == "course_remove_files"]
    ids = [o["value"] for o in remove["element"]["options"]]
    assert len(ids) == 2
    status, body = await harness.events.submit_view(
        form, user_id=ADMIN, answers={"course_remove_files": ids}
    )
    assert status == 200 and not body, body
    await wait_for_ephemeral(harness, "Removed:")
    assert not harness.openai.files.files, "no file left at the provider"
    assert not harness.openai.files.vector_stores, "no vector store left at the provider"
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        kept = [k async for k in redis.scan_iter(match=f"{redis_prefix}material*")]
        state = f"{redis_prefix}materials-state:T1:{CHANNEL}"
        assert kept == [state], "no list of materials, no passages: only the version stamp"
        assert set(await redis.hgetall(state)) == {"version"}
    finally:
        await redis.aclose()
    answer = await ask(harness, "Where was the Magna Carta sealed?")
    assert "Sources" not in answer


@pytest.mark.parametrize("backend", [BackendKind.CHAT], ids=["chat"])
async def test_on_chat_only_the_model_server_gets_the_passages_and_nothing_else_is_contacted(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    await add_materials(harness)
    allowed = {_port(harness.slack.base_url), _port(harness.openai.base_url)}
    allowed.add(_port(redis_server.url))
    contacted: list[tuple[Any, Any]] = []
    loop = asyncio.get_running_loop()
    original = type(loop).create_connection

    async def recording(self: Any, protocol: Any, host: Any = None, port: Any = None, **kw: Any):
        contacted.append((host, port))
        return await original(self, protocol, host, port, **kw)

    monkeypatch.setattr(type(loop), "create_connection", recording)
    before = len(harness.openai.requests)
    answer = await ask(harness, "Who surveyed the land and livestock in the Domesday Book?")
    assert "notes.md" in answer, answer
    sent = harness.openai.requests[before:]
    assert {r.path for r in sent} == {"/v1/chat/completions"}, "no files, no vector stores"
    [completion] = sent
    system = completion.json["messages"][0]["content"]
    assert "The Domesday Book surveyed the land and livestock" in system
    assert re.search(r"\[1\] \(notes\.md\)", system)
    assert all(port in allowed for _, port in contacted), contacted


def _port(url: str) -> int:
    return int(url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_a_refused_file_is_said_in_the_form(harness: Harness) -> None:
    harness.slack.workspace_admins.add(ADMIN)
    sheet = harness.slack.upload_file("grades.xlsx", b"PK\x03\x04", user_id=ADMIN)
    word = harness.slack.upload_file("essay.doc", b"\xd0\xcf\x11\xe0", user_id=ADMIN)
    form = await open_course_form(harness)
    status, body = await harness.events.submit_view(
        form, user_id=ADMIN, answers={"course_name": "History 8", "course_files": [sheet, word]}
    )
    errors = json.loads(body)["errors"]
    assert status == 200 and "only PDF, Word (.docx), Markdown and text" in errors["course_files"]
    assert (
        "essay.doc: old Word files (.doc) cannot be read; save it as .docx"
        in (errors["course_files"])
    )
    assert not harness.slack.downloads and not harness.openai.files.files


@pytest.mark.parametrize(
    "backend", [BackendKind.CHAT, BackendKind.RESPONSES], ids=["chat", "responses"]
)
async def test_a_word_document_is_a_material_answered_from_and_cited(
    harness: Harness, backend: BackendKind
) -> None:
    harness.slack.workspace_admins.add(ADMIN)
    reading = docx_with(
        "The Great Charter",
        ["King John met his barons in 1215."],
        [["Where", "When"], ["Magna Carta was sealed at Runnymede.", "June 1215"]],
    )
    good = harness.slack.upload_file("reading.docx", reading, user_id=ADMIN)
    broken = harness.slack.upload_file("broken.docx", b"PK\x03\x04 torn", user_id=ADMIN)
    form = await open_course_form(harness)
    status, body = await harness.events.submit_view(
        form, user_id=ADMIN, answers={"course_name": "History 8", "course_files": [good, broken]}
    )
    assert status == 200 and not body, body
    await wait_for_ephemeral(harness, "Added to the course's materials")
    report = ephemeral_texts(harness)[-1]
    assert "Added to the course's materials: reading.docx." in report, "no pages said"
    assert "broken.docx: I could not read its text (not a readable Word (.docx) file)" in report

    answer = await ask(harness, "Where was the Magna Carta sealed?")
    assert "Sources" in answer and "1. reading.docx" in answer, answer
    assert "reading.docx, p." not in answer, "Word has no pages to cite"
    if backend is BackendKind.RESPONSES:
        assert "Runnymede" in answer, "file search read the .docx"
        [stored] = harness.openai.files.files.values()
        assert stored.filename == "reading.docx" and stored.content_type == WORD_TYPE
    else:
        [completion] = [r for r in harness.openai.requests if r.path.endswith("/completions")]
        system = completion.json["messages"][0]["content"]
        assert "[1] (reading.docx)" in system, "a passage named by its file, without a page"
        assert "Magna Carta was sealed at Runnymede. | June 1215" in system, "the table row"
        assert not harness.openai.files.files, "on chat nothing is uploaded"


async def delete_course(harness: Harness) -> None:
    """The admin ticks "Delete this course" in the course form and saves it."""
    form = await open_course_form(harness)
    status, body = await harness.events.submit_view(
        form, user_id=ADMIN, answers={"course_delete": ["delete"]}
    )
    assert status == 200 and not body, body


async def test_a_deleted_course_leaves_no_file_vector_store_or_passage_behind(
    harness: Harness, backend: BackendKind, redis_server: RedisServer, redis_prefix: str
) -> None:
    await add_materials(harness)
    if backend is not BackendKind.CHAT:
        assert harness.openai.files.files and harness.openai.files.vector_stores

    await delete_course(harness)
    await wait_for_ephemeral(harness, "is deleted, with its materials")
    assert not harness.openai.files.files, "no file left at the provider"
    assert not harness.openai.files.vector_stores, "no vector store left at the provider"
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        contents = await redis_contents(redis, redis_prefix)
    finally:
        await redis.aclose()
    left = naming(contents, "material", "forget-job", f"course:T1:{CHANNEL}", "History 8")
    assert not left, left
    answer = await ask(harness, "Where was the Magna Carta sealed?")
    assert "Sources" not in answer, "the channel has the default tutor, without materials"


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_what_the_provider_failed_to_delete_is_deleted_by_a_later_sweep(
    harness: Harness, redis_server: RedisServer, redis_prefix: str
) -> None:
    await add_materials(harness)
    [store_id] = harness.openai.files.vector_stores
    harness.openai.fail_next("DELETE", r"/vector_stores/", 500, count=3)  # and the retries

    await delete_course(harness)
    await wait_for_ephemeral(harness, "I keep trying until it does")
    assert list(harness.openai.files.vector_stores) == [store_id]
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        contents = await redis_contents(redis, redis_prefix)
        kept = [name for name in naming(contents, "material") if ":forget-job" not in name]
        assert not kept, "the course's keys are gone at once (the job names the state key)"
        assert naming(contents, store_id), "its id is kept in a forget job, for a retry"

        await harness.bot.retention.sweep(now=time.time() + JOB_RETRY_SECONDS + 1)
        assert not harness.openai.files.vector_stores and not harness.openai.files.files
        assert not naming(await redis_contents(redis, redis_prefix), store_id, "forget-job")
    finally:
        await redis.aclose()


async def test_a_native_stream_shows_the_materials_search_as_a_task(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    """The responses stand-in streams file_search_call progress as OpenAI does; the reply
    shows it as a task_update, in progress while the search is held, complete after."""
    native = {"streaming": StreamingMode.NATIVE}
    async with running_harness(
        redis_server.url, redis_prefix, BackendKind.RESPONSES, **native
    ) as harness:
        await add_materials(harness)
        searching = harness.openai.hold_searches()
        question = "<@UBOT> Where was the Magna Carta sealed?"
        _, _, root = await harness.events.mention(CHANNEL, LEARNER, question)

        def tasks() -> list[dict[str, Any]]:
            chunks = [c for m in harness.slack.thread(CHANNEL, root) for c in m.chunks]
            return [c for c in chunks if c["type"] == "task_update"]

        await harness.slack.wait_for(lambda: bool(tasks()))  # while the search is held
        assert [(t["title"], t["status"]) for t in tasks()] == [
            ("Searching the course materials", "in_progress")
        ]
        searching.set()
        [reply] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
        await harness.wait_idle()
        assert tasks()[-1]["status"] == "complete", tasks()
        assert {t["id"] for t in tasks()} == {tasks()[0]["id"]}, "one task, updated"
        assert "Runnymede" in harness.slack.visible_text(CHANNEL, reply.ts)
