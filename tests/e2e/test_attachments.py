"""Files shared with a question, web search, and the steps shown while tools work."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import pytest

from bot.local.sample_docx import docx_with
from bot.settings import BackendKind, StreamingMode
from bot.slack.listeners.forget import FORGET_SHORTCUT
from tests.conftest import RedisServer
from tests.e2e.conftest import Harness, running_harness

CHANNEL = "C900"
USER = "U900"
# A 1×1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kg"
    "AAAABJRU5ErkJggg=="
)


def pdf_with_text(text: str) -> bytes:
    """A one-page PDF whose page says `text` (built by hand: offsets in the xref table)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


@pytest.fixture
async def harness(
    redis_server: RedisServer,
    redis_prefix: str,
    backend: BackendKind,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Harness]:
    changes = getattr(request, "param", {})
    async with running_harness(redis_server.url, redis_prefix, backend, **changes) as harness:
        yield harness


async def ask(harness: Harness, question: str, files: list[dict[str, object]]) -> str:
    """Mention the bot with files; the answer's text once it is there."""
    _, _, root = await harness.events.mention(CHANNEL, USER, f"<@UBOT> {question}", files=files)
    [reply] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.wait_idle()
    return harness.slack.visible_text(CHANNEL, reply.ts)


def last_request(harness: Harness, path: str) -> dict[str, object]:
    requests = [r for r in harness.openai.requests if r.path.endswith(path) and r.method == "POST"]
    assert requests, f"no request to {path}"
    body = requests[-1].json
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_an_image_reaches_the_model_as_image_input_on_responses(harness: Harness) -> None:
    shared = harness.slack.add_file("diagram.png", "image/png", PNG)
    answer = await ask(harness, "What is in this picture?", [shared])
    assert f"I see an image (image/png, {len(PNG)} bytes)" in answer
    [part] = [p for p in last_request(harness, "/responses")["input"][0]["content"]  # type: ignore[index]
              if p["type"] == "input_image"]  # fmt: skip
    assert part["image_url"].startswith("data:image/png;base64,")
    assert harness.slack.downloads == [(shared["id"], True)], "downloaded with the bot token"
    assert harness.slack.calls_to("files.info")[0].args["file"] == shared["id"]


@pytest.mark.parametrize("backend", [BackendKind.CHAT], ids=["chat"])
async def test_an_image_reaches_the_model_as_an_image_url_on_chat(harness: Harness) -> None:
    shared = harness.slack.add_file("map.jpg", "image/jpeg", b"\xff\xd8fakejpeg")
    answer = await ask(harness, "Where is this?", [shared])
    assert "I see an image (image/jpeg, 10 bytes)" in answer
    user = last_request(harness, "/chat/completions")["messages"][-1]  # type: ignore[index]
    assert user["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,")


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
async def test_a_pdf_goes_as_an_uploaded_input_file_on_responses(harness: Harness) -> None:
    shared = harness.slack.add_file("essay.pdf", "application/pdf", pdf_with_text("Solon"))
    answer = await ask(harness, "Is my essay right?", [shared])
    assert "I see a file named essay.pdf" in answer
    [stored] = harness.openai.files.files.values()
    assert stored.purpose == "user_data" and stored.filename == "essay.pdf"
    key = f"{harness.settings.redis_prefix}provider-files:"
    redis = harness.bot.redis
    listed = [k async for k in redis.scan_iter(match=key + "*")]
    assert len(listed) == 1 and await redis.smembers(listed[0]) == {stored.id}


@pytest.mark.parametrize("backend", [BackendKind.CHAT], ids=["chat"])
async def test_a_pdf_is_read_as_text_on_chat(harness: Harness) -> None:
    shared = harness.slack.add_file("notes.pdf", "application/pdf", pdf_with_text("Cleisthenes"))
    await ask(harness, "Summarise my notes", [shared])
    user = last_request(harness, "/chat/completions")["messages"][-1]  # type: ignore[index]
    assert "[Attached file notes.pdf]" in user["content"] and "Cleisthenes" in user["content"]
    assert not [r for r in harness.openai.requests if "/files" in r.path], "nothing uploaded"


WORD_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# Where each backend sends the question to the model server.
QUESTION_PATH = {
    BackendKind.CHAT: "/chat/completions",
    BackendKind.RESPONSES: "/responses",
    BackendKind.ASSISTANTS: "/messages",
}


async def test_a_word_document_is_read_as_text_on_every_backend(
    harness: Harness, backend: BackendKind
) -> None:
    essay = docx_with("My essay", ["Solon reformed the laws of Athens."], [["Year", "594 BC"]])
    shared = harness.slack.add_file("essay.docx", WORD_TYPE, essay)
    broken = harness.slack.add_file("draft.docx", WORD_TYPE, b"PK\x03\x04 torn")
    answer = await ask(harness, "Is my essay right?", [shared, broken])
    assert "I couldn't read the text of “draft.docx” (not a readable Word (.docx) file)." in (
        answer
    )
    sent = json.dumps(last_request(harness, QUESTION_PATH[backend]))
    assert "[Attached file essay.docx]\\nMy essay\\nSolon reformed the laws of Athens." in sent
    assert "Year | 594 BC" in sent
    assert "draft.docx" not in sent
    assert not harness.openai.files.files, "nothing uploaded: the text went with the question"


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
@pytest.mark.parametrize("harness", [{"max_attachment_mb": 0.001}], indirect=True)
async def test_unsupported_or_too_big_files_are_declined_kindly(harness: Harness) -> None:
    big = harness.slack.add_file("scan.png", "image/png", b"x" * 5000)
    sheet = harness.slack.add_file("grades.xlsx", "application/vnd.ms-excel", b"cells")
    answer = await ask(harness, "Who was Pericles?", [big, sheet])
    assert "Answer 1: Who was Pericles?" in answer, "the question is still answered"
    assert "“scan.png” is larger than the 0.001 MB I can read." in answer
    assert "I can't read “grades.xlsx”: I can look at images" in answer
    assert harness.slack.downloads == [], "neither was downloaded"


WEB = {"web_search": True}


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
@pytest.mark.parametrize("harness", [{**WEB, "streaming": StreamingMode.EDIT}], indirect=True)
async def test_web_search_sources_are_footnotes_and_the_placeholder_says_searching(
    harness: Harness,
) -> None:
    searching = harness.openai.hold_searches()

    def says_searching() -> bool:
        edits = [c.args.get("text", "") for c in harness.slack.calls_to("chat.update")]
        return any("Searching the web…" in str(text) for text in edits)

    asked = asyncio.create_task(ask(harness, "Who wrote the Histories?", []))
    await harness.slack.wait_for(says_searching)  # while the search is still going
    searching.set()
    answer = await asked
    assert last_request(harness, "/responses")["tools"] == [{"type": "web_search"}]
    assert "**Sources**" in answer or "Sources" in answer
    assert "Herodotus" in answer and "https://en.wikipedia.org/wiki/Herodotus" in answer


@pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])
@pytest.mark.parametrize("harness", [{**WEB, "streaming": StreamingMode.NATIVE}], indirect=True)
async def test_a_native_stream_shows_the_search_as_a_task_ending_complete_with_sources(
    harness: Harness,
) -> None:
    _, _, root = await harness.events.mention(CHANNEL, USER, "<@UBOT> Who wrote the Histories?")
    [reply] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.wait_idle()
    tasks = [c for c in reply.chunks if c["type"] == "task_update"]
    statuses = [c["status"] for c in tasks]
    assert statuses[0] == "in_progress" and statuses[-1] == "complete", statuses
    assert tasks[0]["title"] == "Searching the web"
    urls = {s["url"] for c in tasks for s in c.get("sources", []) if s["type"] == "url"}
    assert "https://en.wikipedia.org/wiki/Herodotus" in urls
    assert reply.ts == harness.slack.calls_to("chat.startStream")[0].response["ts"]


@pytest.mark.parametrize("backend", [BackendKind.CHAT], ids=["chat"])
@pytest.mark.parametrize("harness", [WEB], indirect=True)
async def test_web_search_is_ignored_on_chat(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    answer = await ask(harness, "Who wrote the Histories?", [])
    assert "tools" not in last_request(harness, "/chat/completions")
    assert "Sources" not in answer


@pytest.mark.parametrize("backend", [BackendKind.ASSISTANTS], ids=["assistants"])
async def test_on_assistants_an_image_is_an_image_file_a_pdf_its_text_and_forgetting_deletes_them(
    harness: Harness,
) -> None:
    """The Assistants API's message content: a `text` part, and an `image_file` part naming a
    file uploaded with purpose `vision` (PDFs cannot be message content there: their text is
    read here). Forgetting the conversation deletes the uploaded image."""
    image = harness.slack.add_file("diagram.png", "image/png", PNG)
    pdf = harness.slack.add_file("essay.pdf", "application/pdf", pdf_with_text("Cleisthenes"))
    _, _, root = await harness.events.mention(
        CHANNEL, USER, "<@UBOT> Is my essay right?", files=[image, pdf]
    )
    [reply] = await harness.wait_for_bot_replies(CHANNEL, root, 1)
    await harness.wait_idle()
    assert "I see an image named diagram.png" in harness.slack.visible_text(CHANNEL, reply.ts)

    [text, picture] = last_request(harness, "/messages")["content"]  # type: ignore[misc]
    assert text["type"] == "text" and "Is my essay right?" in text["text"]
    assert "[Attached file essay.pdf]" in text["text"] and "Cleisthenes" in text["text"]
    assert picture["type"] == "image_file" and set(picture["image_file"]) == {"file_id"}
    [stored] = harness.openai.files.files.values()
    assert (stored.id, stored.purpose, stored.filename) == (
        picture["image_file"]["file_id"], "vision", "diagram.png",
    )  # fmt: skip
    assert {d[0] for d in harness.slack.downloads} == {image["id"], pdf["id"]}

    posts = harness.slack.response_url_posts
    status, _ = await harness.events.message_shortcut(
        FORGET_SHORTCUT, channel=CHANNEL, message_ts=reply.ts, thread_ts=root,
        user_id=USER, response_url=harness.slack.new_response_url(),
    )  # fmt: skip
    assert status == 200
    await harness.slack.wait_for(lambda: len(posts) == 1)
    assert not harness.openai.files.files, "the uploaded image is deleted with the conversation"
    assert not harness.openai.threads, "and its thread"
