"""The local OpenAI stand-in, driven through the real AsyncOpenAI SDK over real HTTP.

Every object the SDK parses is re-validated strictly against the SDK's own types (the SDK itself
builds models without validating), so a wrong shape fails here rather than in the bot.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

from bot.local.openai_api import OpenAIStandIn
from bot.local.scripted_model import MARKDOWN_SAMPLE, long_answer, parse_directives, respond
from bot.tutor.quiz import QUIZ_SCHEMA

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[2]
MODEL = "gpt-4o-mini"
LOCKED = (
    "Another process is currently operating on this conversation. Please retry after a few seconds."
)
T = TypeVar("T")


@pytest.fixture
async def stand_in() -> AsyncIterator[OpenAIStandIn]:
    server = OpenAIStandIn(queued_seconds=0.02, in_progress_seconds=0.05)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(stand_in: OpenAIStandIn) -> AsyncIterator[AsyncOpenAI]:
    sdk = AsyncOpenAI(base_url=stand_in.base_url, api_key="sk-test", max_retries=0)
    yield sdk
    await sdk.close()


def strict(obj: Any) -> None:
    """Validate what the SDK parsed against its type, and refuse fields the type lacks."""
    assert isinstance(obj, BaseModel)
    # By alias: the API's field names (a JSON schema format's `schema` is `schema_` in Python).
    data = obj.model_dump(mode="json", exclude_unset=True, by_alias=True, warnings=False)
    assert _extras(type(obj).model_validate(data), type(obj).__name__) == []


def _extras(value: Any, path: str) -> list[str]:
    if isinstance(value, BaseModel):
        found = [f"{path}.{name}" for name in value.model_extra or {}]
        for name in type(value).model_fields:
            found += _extras(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, list):
        return [
            extra for index, item in enumerate(value) for extra in _extras(item, f"{path}[{index}]")
        ]
    return []


async def until(
    fetch: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float = 5
) -> T:
    """Poll `fetch` until `done` holds, failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await fetch()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"gave up waiting; last value: {value!r}"
        await asyncio.sleep(0.01)


async def condition(check: Callable[[], bool], timeout: float = 5) -> None:
    async def probe() -> bool:
        return check()

    await until(probe, bool, timeout)


# -- the scripted model ----------------------------------------------------------------------


def test_directives_are_parsed_from_the_text_and_stripped() -> None:
    clean, steer = parse_directives("[slow:1.5] Who was [fail]Caesar? [long:300] [echo][markdown]")
    assert clean == "Who was Caesar?"
    assert (steer.slow, steer.long, steer.fail, steer.echo, steer.markdown) == (
        1.5, 300, True, True, True,
    )  # fmt: skip
    assert parse_directives("a [link] b")[0] == "a [link] b"


def test_the_answer_counts_user_messages_and_tokens() -> None:
    reply = respond([("system", "Be brief."), ("user", "one"), ("assistant", "x"), ("user", "two")])
    assert reply.text == "Answer 2: two"
    # 4 tokens a message, plus one per 4 characters of its text (rounded down)
    assert reply.prompt_tokens == 4 * 4 + len("Be brief.") // 4
    assert reply.completion_tokens == len("Answer 2: two") // 4


def test_only_the_last_user_message_steers() -> None:
    reply = respond([("user", "[fail] first"), ("user", "second")])
    assert reply.text == "Answer 2: second" and not reply.directives.fail


@pytest.mark.parametrize("length", [0, 1, 15, 50, 399, 400, 801, 4000, 9000, 12345])
def test_long_answers_are_exact_and_in_order(length: int) -> None:
    text = long_answer(length, "Answer 1: Tell me all")
    assert len(text) == length
    numbers = [
        int(part.split()[1].rstrip(".")) for part in text.split("\n\n") if "Paragraph" in part
    ]
    assert numbers == list(range(1, len(numbers) + 1))
    assert not text.endswith(" ")


def test_echo_and_markdown() -> None:
    assert respond([("user", "[echo] <!channel> hi")]).text == "<!channel> hi"
    marked = respond([("user", "Show me [markdown]")]).text
    assert marked.startswith("Answer 1: Show me") and marked.endswith(MARKDOWN_SAMPLE)
    for sample in ("## ", "**", "\n- ", "```", "]("):
        assert sample in MARKDOWN_SAMPLE


# -- assistants, threads, messages --------------------------------------------------------------


async def test_assistants_are_created_read_and_deleted(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    created = await client.beta.assistants.create(
        model=MODEL, name="Tutor", instructions="Teach.", metadata={"by": "test"}
    )
    strict(created)
    assert created.id.startswith("asst_") and created.object == "assistant"
    fetched = await client.beta.assistants.retrieve(created.id)
    assert (fetched.name, fetched.model, fetched.instructions) == ("Tutor", MODEL, "Teach.")
    assert stand_in.assistants[created.id]["metadata"] == {"by": "test"}
    deleted = await client.beta.assistants.delete(created.id)
    strict(deleted)
    assert deleted.deleted
    with pytest.raises(openai.NotFoundError):
        await client.beta.assistants.retrieve(created.id)


async def test_thread_messages_take_image_files_that_exist_and_image_urls(
    client: AsyncOpenAI,
) -> None:
    """The documented content parts: image_file names an uploaded file, image_url a URL."""
    thread = await client.beta.threads.create()
    uploaded = await client.files.create(file=("a.png", b"png"), purpose="vision")
    message = await client.beta.threads.messages.create(
        thread.id, role="user", content=[
            {"type": "text", "text": "Look"},
            {"type": "image_file", "image_file": {"file_id": uploaded.id}},
            {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
        ],
    )  # fmt: skip
    strict(message)
    assert [part.type for part in message.content] == ["text", "image_file", "image_url"]
    for wrong in (
        {"type": "image_file", "image_file": {"file_id": "file-missing"}},
        {"type": "image_file", "image_file": "file-x"},
        {"type": "image_url", "image_url": {}},
    ):
        with pytest.raises(openai.BadRequestError):
            await client.beta.threads.messages.create(
                thread.id,
                role="user",
                content=[wrong],  # type: ignore[list-item]
            )


async def test_threads_are_created_read_updated_and_deleted(client: AsyncOpenAI) -> None:
    thread = await client.beta.threads.create(
        messages=[{"role": "user", "content": "Hello"}], metadata={"slack": "C1:1.2"}
    )
    strict(thread)
    assert thread.id.startswith("thread_") and thread.metadata == {"slack": "C1:1.2"}
    fetched = await client.beta.threads.retrieve(thread.id)
    assert fetched.id == thread.id
    updated = await client.beta.threads.update(thread.id, metadata={"slack": "C2:3.4"})
    assert updated.metadata == {"slack": "C2:3.4"}
    messages = await client.beta.threads.messages.list(thread.id)
    assert [m.content[0].text.value for m in messages.data] == ["Hello"]  # type: ignore[union-attr]
    deleted = await client.beta.threads.delete(thread.id)
    strict(deleted)
    assert deleted.deleted and deleted.object == "thread.deleted"
    with pytest.raises(openai.NotFoundError):
        await client.beta.threads.retrieve(thread.id)


async def test_messages_take_strings_or_text_parts(client: AsyncOpenAI) -> None:
    thread = await client.beta.threads.create()
    plain = await client.beta.threads.messages.create(
        thread.id, role="user", content="plain", metadata={"turn_id": "t1"}
    )
    parts = await client.beta.threads.messages.create(
        thread.id, role="user", content=[{"type": "text", "text": "in parts"}]
    )
    for message in (plain, parts):
        strict(message)
        assert message.object == "thread.message" and message.role == "user"
        assert message.run_id is None and message.status == "completed"
    assert plain.metadata == {"turn_id": "t1"}
    assert parts.content[0].text.value == "in parts"  # type: ignore[union-attr]
    fetched = await client.beta.threads.messages.retrieve(plain.id, thread_id=thread.id)
    assert fetched.id == plain.id


async def test_messages_page_by_order_after_before_and_limit(client: AsyncOpenAI) -> None:
    thread = await client.beta.threads.create()
    ids = [
        (await client.beta.threads.messages.create(thread.id, role="user", content=f"m{i}")).id
        for i in range(5)
    ]
    newest = await client.beta.threads.messages.list(thread.id, limit=2)
    assert [m.id for m in newest.data] == [ids[4], ids[3]] and newest.has_more
    after = await client.beta.threads.messages.list(thread.id, order="asc", after=ids[1], limit=2)
    assert [m.id for m in after.data] == ids[2:4] and after.has_more
    before = await client.beta.threads.messages.list(thread.id, order="asc", before=ids[2])
    assert [m.id for m in before.data] == ids[:2] and not before.has_more
    nearest = await client.beta.threads.messages.list(
        thread.id, order="asc", before=ids[3], limit=2
    )
    assert [m.id for m in nearest.data] == ids[1:3] and nearest.has_more
    everything = [
        m.id async for m in await client.beta.threads.messages.list(thread.id, order="asc", limit=2)
    ]
    assert everything == ids
    with pytest.raises(openai.BadRequestError):
        await client.beta.threads.messages.list(thread.id, limit=101)


# -- runs ------------------------------------------------------------------------------------


async def start_run(client: AsyncOpenAI, text: str, **run: Any) -> tuple[str, Any]:
    """A new assistant and thread with one user message, and a run on it."""
    assistant = await client.beta.assistants.create(model=MODEL, instructions="Teach.")
    thread = await client.beta.threads.create()
    await client.beta.threads.messages.create(thread.id, role="user", content=text)
    created = await client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, **run)
    return thread.id, created


async def final_run(client: AsyncOpenAI, thread_id: str, run_id: str) -> Any:
    def final(run: Any) -> bool:
        return run.status not in ("queued", "in_progress", "cancelling")

    return await until(
        lambda: client.beta.threads.runs.retrieve(run_id, thread_id=thread_id), final
    )


async def test_a_run_goes_queued_in_progress_completed_and_answers_once(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    stand_in.in_progress_seconds = 0.3
    thread_id, run = await start_run(
        client, "Who was Ashoka?", max_completion_tokens=500, truncation_strategy={"type": "auto"},
        metadata={"turn_id": "t1"},
    )  # fmt: skip
    strict(run)
    assert run.status == "queued" and run.usage is None and run.object == "thread.run"
    assert run.metadata == {"turn_id": "t1"} and run.max_completion_tokens == 500
    seen: list[str] = []

    async def poll() -> Any:
        raw = await client.beta.threads.runs.with_raw_response.retrieve(run.id, thread_id=thread_id)
        assert raw.headers["openai-poll-after-ms"] == "100"
        parsed = raw.parse()
        seen.append(parsed.status)
        return parsed

    done = await until(poll, lambda r: r.status == "completed")
    strict(done)
    assert "in_progress" in seen and done.started_at and done.completed_at
    assert done.usage is not None and done.usage.total_tokens == (
        done.usage.prompt_tokens + done.usage.completion_tokens
    )
    page = await client.beta.threads.messages.list(thread_id, order="asc")
    answers = [m for m in page.data if m.role == "assistant"]
    assert len(answers) == 1
    strict(answers[0])
    assert answers[0].content[0].text.value == "Answer 1: Who was Ashoka?"  # type: ignore[union-attr]
    assert (answers[0].run_id, answers[0].assistant_id) == (run.id, run.assistant_id)
    by_run = await client.beta.threads.messages.list(thread_id, run_id=run.id)
    assert [m.id for m in by_run.data] == [answers[0].id]
    await client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert len(stand_in.thread_messages(thread_id)) == 2


async def test_a_thread_keeps_its_context(client: AsyncOpenAI) -> None:
    thread_id, run = await start_run(client, "Who was Ashoka?")
    await final_run(client, thread_id, run.id)
    await client.beta.threads.messages.create(thread_id, role="user", content="What did he do?")
    second = await client.beta.threads.runs.create_and_poll(
        thread_id=thread_id, assistant_id=run.assistant_id, poll_interval_ms=10
    )
    assert second.status == "completed"
    latest = await client.beta.threads.messages.list(thread_id, limit=1)
    assert latest.data[0].content[0].text.value == "Answer 2: What did he do?"  # type: ignore[union-attr]


async def test_runs_advance_without_being_read(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    thread_id, run = await start_run(client, "Unwatched")
    await condition(lambda: stand_in.runs[run.id].status == "completed")
    assert stand_in.threads[thread_id].messages[-1]["run_id"] == run.id


async def test_an_active_run_blocks_new_messages_and_runs(client: AsyncOpenAI) -> None:
    thread_id, run = await start_run(client, "[slow:5] Busy")
    with pytest.raises(openai.BadRequestError) as adding:
        await client.beta.threads.messages.create(thread_id, role="user", content="more")
    assert adding.value.body["message"] == (  # type: ignore[index]
        f"Can't add messages to {thread_id} while a run {run.id} is active."
    )
    with pytest.raises(openai.BadRequestError) as running:
        await client.beta.threads.runs.create(thread_id, assistant_id=run.assistant_id)
    assert running.value.body["message"] == (  # type: ignore[index]
        f"Thread {thread_id} already has an active run {run.id}."
    )


async def test_cancel_goes_through_cancelling_and_adds_no_answer(client: AsyncOpenAI) -> None:
    thread_id, run = await start_run(client, "[slow:5] Never mind")
    cancelling = await client.beta.threads.runs.cancel(run.id, thread_id=thread_id)
    strict(cancelling)
    assert cancelling.status == "cancelling"
    cancelled = await client.beta.threads.runs.retrieve(run.id, thread_id=thread_id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    messages = await client.beta.threads.messages.list(thread_id)
    assert [m.role for m in messages.data] == ["user"]
    with pytest.raises(openai.BadRequestError):
        await client.beta.threads.runs.cancel(run.id, thread_id=thread_id)
    await client.beta.threads.messages.create(thread_id, role="user", content="next")


@pytest.mark.parametrize(
    ("directive", "status"),
    [("[fail]", "failed"), ("[expire]", "expired"), ("[incomplete]", "incomplete")],
)
async def test_run_outcomes_follow_directives(
    client: AsyncOpenAI, directive: str, status: str
) -> None:
    thread_id, run = await start_run(client, f"{directive} Question")
    done = await final_run(client, thread_id, run.id)
    strict(done)
    assert done.status == status
    messages = (await client.beta.threads.messages.list(thread_id, order="asc")).data
    if status == "failed":
        assert done.last_error is not None and done.failed_at is not None
        assert (done.last_error.code, done.last_error.message) == (
            "server_error", "The model failed (scripted).",
        )  # fmt: skip
    if status == "incomplete":
        assert done.incomplete_details is not None
        assert done.incomplete_details.reason == "max_completion_tokens"
        assert messages[-1].status == "incomplete"
        assert messages[-1].incomplete_details.reason == "max_tokens"  # type: ignore[union-attr]
    else:
        assert [m.role for m in messages] == ["user"]


async def test_slow_runs_stay_in_progress(client: AsyncOpenAI) -> None:
    started = time.monotonic()
    thread_id, run = await start_run(client, "[slow:0.3] Take your time")
    done = await final_run(client, thread_id, run.id)
    assert done.status == "completed" and time.monotonic() - started >= 0.3


async def test_long_answers_reach_the_thread_whole(client: AsyncOpenAI) -> None:
    thread_id, run = await start_run(client, "[long:9000] Tell me all")
    await final_run(client, thread_id, run.id)
    latest = await client.beta.threads.messages.list(thread_id, limit=1)
    assert len(latest.data[0].content[0].text.value) == 9000  # type: ignore[union-attr]


async def test_runs_are_listed_newest_first(client: AsyncOpenAI) -> None:
    thread_id, first = await start_run(client, "one")
    await final_run(client, thread_id, first.id)
    await client.beta.threads.messages.create(thread_id, role="user", content="two")
    second = await client.beta.threads.runs.create(thread_id, assistant_id=first.assistant_id)
    runs = await client.beta.threads.runs.list(thread_id)
    assert [r.id for r in runs.data] == [second.id, first.id]
    for run in runs.data:
        strict(run)


async def test_unknown_ids_are_404(client: AsyncOpenAI) -> None:
    thread = await client.beta.threads.create()
    calls = [
        client.beta.assistants.retrieve("asst_nope"),
        client.beta.threads.retrieve("thread_nope"),
        client.beta.threads.runs.retrieve("run_nope", thread_id=thread.id),
        client.beta.threads.messages.retrieve("msg_nope", thread_id=thread.id),
        client.beta.threads.runs.create(thread.id, assistant_id="asst_nope"),
        client.conversations.retrieve("conv_nope"),
        client.responses.retrieve("resp_nope"),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError) as caught:
            await call
        assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]


# -- conversations ---------------------------------------------------------------------------


async def test_conversations_are_created_read_updated_and_deleted(client: AsyncOpenAI) -> None:
    conversation = await client.conversations.create(
        items=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        metadata={"slack": "C1:1.2"},
    )
    strict(conversation)
    assert conversation.id.startswith("conv_") and conversation.metadata == {"slack": "C1:1.2"}
    assert (await client.conversations.retrieve(conversation.id)).id == conversation.id
    updated = await client.conversations.update(conversation.id, metadata={"slack": "C9"})
    assert updated.metadata == {"slack": "C9"}
    deleted = await client.conversations.delete(conversation.id)
    strict(deleted)
    assert (deleted.id, deleted.object, deleted.deleted) == (
        conversation.id, "conversation.deleted", True,
    )  # fmt: skip
    with pytest.raises(openai.NotFoundError):
        await client.conversations.retrieve(conversation.id)


async def test_conversation_items_are_listed_added_read_and_removed(client: AsyncOpenAI) -> None:
    conversation = await client.conversations.create(items=[{"role": "user", "content": "one"}])
    added = await client.conversations.items.create(
        conversation.id,
        items=[
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "two"}]}
        ],
    )
    strict(added)
    assert [item.content[0].text for item in added.data] == ["two"]  # type: ignore[union-attr]
    newest = await client.conversations.items.list(conversation.id, limit=1)
    assert newest.has_more and newest.data[0].id == added.data[0].id
    for item in newest.data:
        strict(item)
    everything = [
        item.id
        async for item in await client.conversations.items.list(
            conversation.id, order="asc", limit=1
        )
    ]
    assert len(everything) == 2 and everything[1] == added.data[0].id
    item = await client.conversations.items.retrieve(
        added.data[0].id, conversation_id=conversation.id
    )
    assert item.id == added.data[0].id
    after = await client.conversations.items.delete(
        added.data[0].id, conversation_id=conversation.id
    )
    assert after.id == conversation.id
    remaining = await client.conversations.items.list(conversation.id)
    assert [i.id for i in remaining.data] == [everything[0]]


async def test_conversation_limits_are_enforced(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as too_many_items:
        await client.conversations.create(items=[{"role": "user", "content": "x"}] * 21)
    assert too_many_items.value.code == "array_above_max_length"
    with pytest.raises(openai.BadRequestError) as too_much_metadata:
        await client.conversations.create(metadata={f"k{i}": "v" for i in range(17)})
    assert too_much_metadata.value.code == "object_above_max_properties"
    with pytest.raises(openai.BadRequestError):
        await client.conversations.create(metadata={"long": "x" * 513})


# -- responses -------------------------------------------------------------------------------


async def test_a_plain_response_answers_at_once_and_extends_its_conversation(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    conversation = await client.conversations.create()
    response = await client.responses.create(
        model=MODEL, input="Who was Caesar?", instructions="Teach.", conversation=conversation.id,
        metadata={"turn_id": "t1"}, truncation="auto", store=True,
    )  # fmt: skip
    strict(response)
    assert response.status == "completed" and response.object == "response"
    assert response.output_text == "Answer 1: Who was Caesar?"
    assert response.conversation is not None and response.conversation.id == conversation.id
    assert (
        response.usage is not None
        and response.usage.output_tokens == len(response.output_text) // 4
    )
    assert response.usage.input_tokens_details.cached_tokens == 0
    items = stand_in.conversation_items(conversation.id)
    assert [(i["role"], i["content"][0]["type"]) for i in items] == [
        ("user", "input_text"), ("assistant", "output_text"),
    ]  # fmt: skip
    second = await client.responses.create(
        model=MODEL,
        input=[{"role": "user", "content": "And then?"}],
        conversation={"id": conversation.id},
    )
    assert second.output_text == "Answer 2: And then?"


async def test_a_background_response_queues_works_and_completes(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    stand_in.in_progress_seconds = 0.3
    conversation = await client.conversations.create()
    created = await client.responses.create(
        model=MODEL, input="[echo] <!channel> hi", conversation=conversation.id, background=True
    )
    strict(created)
    assert created.status == "queued" and created.background and created.output == []
    assert [i["role"] for i in stand_in.conversation_items(conversation.id)] == ["user"]
    seen: list[str] = []

    async def poll() -> Any:
        response = await client.responses.retrieve(created.id)
        seen.append(response.status or "")
        return response

    done = await until(poll, lambda r: r.status == "completed")
    strict(done)
    assert "in_progress" in seen and done.output_text == "<!channel> hi"
    items = await client.conversations.items.list(conversation.id, order="asc")
    assert [i.role for i in items.data] == ["user", "assistant"]  # type: ignore[union-attr]
    assert items.data[1].id == done.output[0].id


async def test_a_busy_conversation_is_locked(client: AsyncOpenAI) -> None:
    conversation = await client.conversations.create()
    first = await client.responses.create(
        model=MODEL, input="[slow:0.2] one", conversation=conversation.id, background=True
    )
    with pytest.raises(openai.BadRequestError) as locked:
        await client.responses.create(model=MODEL, input="two", conversation=conversation.id)
    assert locked.value.code == "conversation_locked"
    assert locked.value.body == {  # type: ignore[comparison-overlap]
        "message": LOCKED, "type": "invalid_request_error", "param": None,
        "code": "conversation_locked",
    }  # fmt: skip
    await until(lambda: client.responses.retrieve(first.id), lambda r: r.status == "completed")
    second = await client.responses.create(model=MODEL, input="two", conversation=conversation.id)
    assert second.output_text == "Answer 2: two"


async def test_background_needs_store(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(model=MODEL, input="x", background=True, store=False)


async def test_a_background_response_can_be_cancelled(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    conversation = await client.conversations.create()
    created = await client.responses.create(
        model=MODEL, input="[slow:5] long", conversation=conversation.id, background=True
    )
    cancelled = await client.responses.cancel(created.id)
    strict(cancelled)
    assert cancelled.status == "cancelled" and cancelled.output == []
    assert (await client.responses.retrieve(created.id)).status == "cancelled"
    assert [i["role"] for i in stand_in.conversation_items(conversation.id)] == ["user"]
    with pytest.raises(openai.BadRequestError):
        await client.responses.cancel(created.id)
    plain = await client.responses.create(model=MODEL, input="next", conversation=conversation.id)
    with pytest.raises(openai.BadRequestError):
        await client.responses.cancel(plain.id)


@pytest.mark.parametrize("background", [False, True])
async def test_failed_and_incomplete_responses(client: AsyncOpenAI, background: bool) -> None:
    async def outcome(text: str) -> Any:
        created = await client.responses.create(model=MODEL, input=text, background=background)
        return await until(
            lambda: client.responses.retrieve(created.id),
            lambda r: r.status not in ("queued", "in_progress"),
        )

    failed = await outcome("[fail] Question")
    strict(failed)
    assert failed.status == "failed" and failed.output == [] and failed.error is not None
    assert (failed.error.code, failed.error.message) == (
        "server_error",
        "The model failed (scripted).",
    )
    incomplete = await outcome("[incomplete] Question")
    strict(incomplete)
    assert incomplete.status == "incomplete" and incomplete.incomplete_details is not None
    assert incomplete.incomplete_details.reason == "max_output_tokens"
    assert incomplete.output_text == "Answer 1: Question"


async def test_slow_plain_responses_take_their_time(client: AsyncOpenAI) -> None:
    started = time.monotonic()
    response = await client.responses.create(model=MODEL, input="[slow:0.3] Wait")
    assert response.status == "completed" and time.monotonic() - started >= 0.3


async def test_previous_response_id_keeps_context(client: AsyncOpenAI) -> None:
    first = await client.responses.create(model=MODEL, input="first")
    second = await client.responses.create(
        model=MODEL, input="second", previous_response_id=first.id
    )
    assert second.output_text == "Answer 2: second"


async def collect(stream: Any) -> list[Any]:
    return [event async for event in stream]


async def test_a_streamed_response_emits_the_events_in_order(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    conversation = await client.conversations.create()
    stream = await client.responses.create(
        model=MODEL, input="[long:120] Stream it", conversation=conversation.id, stream=True
    )
    events = await collect(stream)
    for event in events:
        strict(event)
    kinds = [event.type for event in events]
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert kinds[:4] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added",
    ]  # fmt: skip
    assert kinds[-4:] == [
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed",
    ]  # fmt: skip
    assert len(deltas) > 2 and all(len(d) <= 20 for d in deltas)
    assert [event.sequence_number for event in events] == list(range(len(events)))
    final = events[-1].response
    assert "".join(deltas) == final.output_text and len(final.output_text) == 120
    assert stand_in.conversation_items(conversation.id)[-1]["id"] == final.output[0].id


async def test_a_streamed_background_response_reports_queued(client: AsyncOpenAI) -> None:
    stream = await client.responses.create(model=MODEL, input="hi", background=True, stream=True)
    kinds = [event.type for event in await collect(stream)]
    assert kinds[:3] == ["response.created", "response.queued", "response.in_progress"]
    assert kinds[-1] == "response.completed"


async def test_a_streamed_failure_ends_with_response_failed(client: AsyncOpenAI) -> None:
    stream = await client.responses.create(model=MODEL, input="[fail] hi", stream=True)
    events = await collect(stream)
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]
    assert events[-1].response.error.code == "server_error"


async def test_a_cut_response_stream_breaks_off(client: AsyncOpenAI) -> None:
    stream = await client.responses.create(
        model=MODEL, input="[cut] a question long enough for several pieces", stream=True
    )
    kinds: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for event in stream:
            kinds.append(event.type)
    assert "response.output_text.delta" in kinds and "response.completed" not in kinds


# -- chat completions ------------------------------------------------------------------------


async def test_a_chat_completion_answers_with_usage(client: AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Teach."},
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "Answer 1: one"},
            {"role": "user", "content": [{"type": "text", "text": "two [markdown]"}]},
        ],
        max_tokens=100,
        temperature=0.2,
        stop=["\n\n\n"],
    )
    strict(completion)
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason == "stop"
    assert choice.message.content == f"Answer 2: two\n\n{MARKDOWN_SAMPLE}"
    assert (
        completion.usage is not None
        and completion.usage.completion_tokens == len(choice.message.content) // 4
    )


async def test_an_incomplete_chat_completion_stops_for_length(client: AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "[incomplete] hi"}],
        max_completion_tokens=5,
    )
    assert completion.choices[0].finish_reason == "length"


async def test_a_failing_chat_completion_is_a_500(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "[fail]"}]
        )
    assert caught.value.status_code == 500 and caught.value.code == "server_error"


@pytest.mark.parametrize(
    "roles",
    [["user", "user"], ["system", "assistant", "user"], ["user", "assistant", "assistant", "user"],
     ["system", "user", "system", "user"]],
)  # fmt: skip
async def test_strict_roles_refuse_what_alternation_templates_refuse(
    stand_in: OpenAIStandIn, client: AsyncOpenAI, roles: list[str]
) -> None:
    """Like vLLM or llama.cpp serving Mistral or Gemma: 400, whatever the stream flag."""
    stand_in.require_alternation = True
    messages: Any = [{"role": role, "content": "hi"} for role in roles]
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model=MODEL, messages=messages, stream=stream)
        assert "Conversation roles must alternate user/assistant/user/assistant" in str(
            caught.value
        )
    stand_in.require_alternation = False
    await client.chat.completions.create(model=MODEL, messages=messages)


async def test_strict_roles_take_an_alternation_after_one_system_message(
    stand_in: OpenAIStandIn, client: AsyncOpenAI
) -> None:
    stand_in.require_alternation = True
    roles = ["system", "user", "assistant", "user"]
    messages: Any = [{"role": role, "content": f"m{i}"} for i, role in enumerate(roles)]
    completion = await client.chat.completions.create(model=MODEL, messages=messages)
    assert completion.choices[0].message.content == "Answer 2: m3"


@pytest.mark.parametrize("include_usage", [False, True])
async def test_a_streamed_chat_completion(client: AsyncOpenAI, include_usage: bool) -> None:
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "[long:100] stream"}],
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    chunks = await collect(stream)
    for chunk in chunks:
        strict(chunk)
    with_choices = [c for c in chunks if c.choices]
    assert with_choices[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in with_choices[1:-1]]
    assert len(pieces) == 5 and all(len(p or "") <= 20 for p in pieces)
    assert "".join(p or "" for p in pieces) == long_answer(100, "Answer 1: stream")
    assert with_choices[-1].choices[0].finish_reason == "stop"
    usage_chunks = [c for c in chunks if not c.choices]
    if include_usage:
        assert chunks[-1] is usage_chunks[0] and usage_chunks[0].usage.completion_tokens == 25
    else:
        assert usage_chunks == [] and all(c.usage is None for c in chunks)


async def test_a_slow_chat_completion_waits(client: AsyncOpenAI) -> None:
    started = time.monotonic()
    await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "[slow:0.2] hi"}]
    )
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    stream = await client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "[slow:0.2] hi"}], stream=True
    )
    await collect(stream)
    assert time.monotonic() - started >= 0.2


async def test_a_cut_chat_stream_breaks_off_without_a_finish(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "[cut] tell me a long story please"}],
        stream=True,
    )
    chunks: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            chunks.append(chunk)
    assert len(chunks) >= 2 and all(c.choices[0].finish_reason is None for c in chunks)


# -- steering, inspection, the process ---------------------------------------------------------


async def test_left_out_apis_answer_404_like_any_unknown_url(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    stand_in.leave_out("conversations", "assistants")
    with pytest.raises(openai.NotFoundError) as raised:
        await client.conversations.create()
    assert "Invalid URL (POST /v1/conversations)" in raised.value.message
    with pytest.raises(openai.NotFoundError):
        await client.beta.threads.create()
    with pytest.raises(openai.NotFoundError):
        await client.beta.assistants.create(model=MODEL)
    response = await client.responses.create(model=MODEL, input="Still here?")
    assert response.output_text == "Answer 1: Still here?"
    with pytest.raises(ValueError, match="unknown APIs"):
        stand_in.leave_out("embeddings")


async def test_requests_are_recorded_in_order(client: AsyncOpenAI, stand_in: OpenAIStandIn) -> None:
    thread = await client.beta.threads.create(metadata={"a": "b"})
    await client.beta.threads.messages.list(thread.id, order="asc", limit=5)
    first, second = stand_in.requests
    assert (first.method, first.path, first.json) == (
        "POST",
        "/v1/threads",
        {"metadata": {"a": "b"}},
    )
    assert first.headers["openai-beta"] == "assistants=v2"
    assert first.headers["authorization"] == "Bearer sk-test"
    assert (second.method, second.path, second.json) == (
        "GET",
        f"/v1/threads/{thread.id}/messages",
        None,
    )
    assert second.query == {"order": "asc", "limit": "5"}
    assert stand_in.count("GET", r"/messages$") == 1 and stand_in.count("*", r"^/v1/") == 2


async def test_injected_failures_are_retried_by_the_sdk(stand_in: OpenAIStandIn) -> None:
    stand_in.fail_next("POST", r"/chat/completions$", 429, count=2, retry_after=0.01)
    async with AsyncOpenAI(base_url=stand_in.base_url, api_key="sk-test", max_retries=2) as sdk:
        completion = await sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    assert completion.choices[0].message.content == "Answer 1: hi"
    attempts = [r.headers.get("x-stainless-retry-count") for r in stand_in.requests]
    assert attempts == ["0", "1", "2"]


async def test_injected_failures_reach_the_caller(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    stand_in.fail_next("GET", r"/responses/", 503, code="overloaded")
    stand_in.fail_next("POST", r"/responses$", 429, retry_after=7)
    with pytest.raises(openai.RateLimitError) as limited:
        await client.responses.create(model=MODEL, input="hi")
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "7"
    created = await client.responses.create(model=MODEL, input="hi")
    with pytest.raises(openai.InternalServerError) as unavailable:
        await client.responses.retrieve(created.id)
    assert unavailable.value.status_code == 503 and unavailable.value.code == "overloaded"
    assert (await client.responses.retrieve(created.id)).status == "completed"


async def test_held_requests_wait_for_their_event(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    thread = await client.beta.threads.create()
    release = stand_in.hold("POST", r"/messages$")
    adding = asyncio.create_task(
        client.beta.threads.messages.create(thread.id, role="user", content="held")
    )
    await condition(lambda: stand_in.count("POST", r"/messages$") == 1)
    assert not adding.done() and stand_in.thread_messages(thread.id) == []
    release.set()
    message = await adding
    assert stand_in.thread_messages(thread.id)[0]["id"] == message.id


async def test_a_missing_key_is_401_and_an_unknown_url_404(stand_in: OpenAIStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
            async with session.get(
                f"{stand_in.base_url}/assistants/x", headers=headers
            ) as response:
                body = await response.json()
            assert response.status == 401 and body["error"]["code"] == "invalid_api_key"
            assert (
                body["error"]["type"] == "invalid_request_error" and body["error"]["param"] is None
            )
        auth = {"Authorization": "Bearer sk-test"}
        async with session.get(f"{stand_in.base_url}/nowhere", headers=auth) as response:
            body = await response.json()
        assert (
            response.status == 404 and body["error"]["message"] == "Invalid URL (GET /v1/nowhere)"
        )


async def test_the_module_runs_as_a_process_until_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.local.openai_api", "--port", "0", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        base_url = line.decode().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        async with AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0) as sdk:
            response = await sdk.responses.create(model=MODEL, input="over the wire")
        assert response.output_text == "Answer 1: over the wire"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0


async def test_a_json_schema_gets_a_quiz_in_the_sdks_shapes(
    stand_in: OpenAIStandIn, client: AsyncOpenAI
) -> None:
    text_format: Any = {
        "type": "json_schema",
        "name": "quiz",
        "schema": QUIZ_SCHEMA,
        "strict": True,
    }
    response = await client.responses.create(
        model=MODEL, instructions="Write 2 questions.", input="Roman roads", store=False,
        text={"format": text_format},
    )  # fmt: skip
    strict(response)
    assert response.text is not None and response.text.format.type == "json_schema"
    assert [len(q["choices"]) for q in json.loads(response.output_text)["questions"]] == [4, 4]
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)  # store=false: kept nowhere

    messages: Any = [{"role": "user", "content": "Roman roads"}]
    response_format: Any = {"type": "json_schema", "json_schema": text_format}
    completion = await client.chat.completions.create(
        model=MODEL, messages=messages, response_format=response_format
    )
    strict(completion)
    assert len(json.loads(completion.choices[0].message.content or "")["questions"]) == 3

    stand_in.quiz_faults.append("two_right")
    completion = await client.chat.completions.create(
        model=MODEL, messages=messages, response_format=response_format
    )
    first = json.loads(completion.choices[0].message.content or "")["questions"][0]
    assert [c["right"] for c in first["choices"]] == [True, True, False, False]

    with pytest.raises(openai.BadRequestError, match=r"text\.format\.name"):
        await client.responses.create(
            model=MODEL, input="x", text={"format": {"type": "json_schema", "schema": {}}}
        )
    stand_in.chat.accepts_response_format = False
    with pytest.raises(openai.BadRequestError, match="response_format"):
        await client.chat.completions.create(
            model=MODEL, messages=messages, response_format=response_format
        )
