"""The OpenAI stand-in counts tokens and keeps prompts within the model's context as the APIs do:
truncation, server-side compaction, `max_prompt_tokens`, prompt caching and usage shapes,
driven through the real SDK (whose parsed objects are re-validated strictly).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from openai import AsyncOpenAI

from bot.local.context_window import Summary, compacted, prompt_tokens, truncated
from bot.local.openai_api import OpenAIStandIn
from bot.local.scripted_model import respond
from tests.unit.test_openai_standin import strict, until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MODEL = "gpt-5.4-mini"
COMPACTION = [{"type": "compaction", "compact_threshold": 1000}]


def text_of(tokens: int) -> str:
    """A text the stand-in counts as `tokens` tokens (4 characters each)."""
    return "abcd" * tokens


@pytest.fixture
async def stand_in() -> AsyncIterator[OpenAIStandIn]:
    server = OpenAIStandIn(queued_seconds=0.0, in_progress_seconds=0.01, context_window=4000)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(stand_in: OpenAIStandIn) -> AsyncIterator[AsyncOpenAI]:
    sdk = AsyncOpenAI(base_url=stand_in.base_url, api_key="sk-test", max_retries=0)
    yield sdk
    await sdk.close()


# -- counting --------------------------------------------------------------------------------


def test_a_prompt_costs_four_tokens_a_message_and_one_per_four_characters() -> None:
    prompt = [("system", "x" * 40), ("user", "y" * 7)]
    assert prompt_tokens(prompt) == (4 + 10) + (4 + 1)
    assert respond(prompt).prompt_tokens == 19


def test_a_summary_keeps_the_questions_it_replaces_at_an_eighth_of_their_size() -> None:
    earlier = [("user", text_of(396)), ("assistant", text_of(396)), ("user", "two")]
    summary = compacted(earlier)
    assert summary.questions == 2 and summary.tokens == prompt_tokens(earlier) // 8
    assert Summary.decoded(summary.encoded()) == summary
    assert respond([summary, ("user", "three")]).text == "Answer 3: three"


def test_truncation_drops_the_oldest_history_but_never_instructions_or_input() -> None:
    prompt = [("system", "rules"), ("user", text_of(96)), ("assistant", "a"), ("user", "now")]
    assert truncated(prompt, 20, keep_last=1) == [("system", "rules"), *prompt[2:]]
    assert truncated(prompt, 1, keep_last=1) == [("system", "rules"), ("user", "now")]


# -- Responses -------------------------------------------------------------------------------


async def answered(client: AsyncOpenAI, conversation: str, text: str, **extra: object) -> object:
    created = await client.responses.create(
        model=MODEL, conversation=conversation, input=text, background=True, **extra
    )
    return await until(
        lambda: client.responses.retrieve(created.id), lambda r: r.status == "completed"
    )


async def test_past_the_window_disabled_truncation_refuses_and_auto_drops_the_oldest(
    client: AsyncOpenAI,
) -> None:
    conversation = (await client.conversations.create()).id
    await answered(client, conversation, text_of(2500))
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model=MODEL, conversation=conversation, input=text_of(1000), background=True
        )
    assert refused.value.code == "context_length_exceeded"
    response = await answered(client, conversation, text_of(1000), truncation="auto")
    strict(response)
    assert response.output_text.startswith("Answer 1: ")  # the first question was dropped
    first_answer = 4 + len("Answer 1: " + text_of(2500)) // 4
    assert response.usage.input_tokens == first_answer + (4 + 1000)


async def test_compaction_replaces_the_history_past_the_threshold_and_remembers_it(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    conversation = (await client.conversations.create()).id
    first = await answered(client, conversation, text_of(900), context_management=COMPACTION)
    assert [item.type for item in first.output] == ["message"]
    second = await answered(client, conversation, "Who?", context_management=COMPACTION)
    strict(second)
    assert [item.type for item in second.output] == ["compaction", "message"]
    assert second.output_text == "Answer 2: Who?"
    history = (4 + 900) + (4 + len("Answer 1: " + text_of(900)) // 4)
    assert second.usage.input_tokens == history // 8 + (4 + 1)  # its summary, the question
    items = (await client.conversations.items.list(conversation, order="asc")).data
    assert [item.type for item in items] == ["message"] * 3 + ["compaction", "message"]
    third = await answered(client, conversation, "And?", context_management=COMPACTION)
    assert [item.type for item in third.output] == ["message"]
    assert third.output_text == "Answer 3: And?"  # the summary remembers two questions
    summary = (history + 4 + 1) // 8
    assert third.usage.input_tokens == summary + (4 + len("Answer 2: Who?") // 4) + (4 + 1)


async def test_a_streamed_compaction_comes_before_the_message(client: AsyncOpenAI) -> None:
    conversation = (await client.conversations.create()).id
    await answered(client, conversation, text_of(1200))
    stream = await client.responses.create(
        model=MODEL,
        conversation=conversation,
        input="Who?",
        stream=True,
        context_management=COMPACTION,
    )
    events = [event async for event in stream]
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    deltas = {e.output_index for e in events if e.type == "response.output_text.delta"}
    assert added == ["compaction", "message"] and deltas == {1}
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "Answer 2: Who?"


async def test_compaction_a_server_refuses_or_asked_below_its_minimum_is_a_400(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    conversation = (await client.conversations.create()).id
    low = [{"type": "compaction", "compact_threshold": 500}]
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model=MODEL, conversation=conversation, input="x", context_management=low
        )
    assert refused.value.param == "context_management[0].compact_threshold"
    stand_in.accepts_compaction = False
    with pytest.raises(openai.BadRequestError) as refused:
        await client.responses.create(
            model=MODEL, conversation=conversation, input="x", context_management=COMPACTION
        )
    assert refused.value.param == "context_management"
    assert not stand_in.conversation_items(conversation)  # nothing was created


async def test_a_prompt_cache_key_bills_the_repeated_prefix_as_cached(
    client: AsyncOpenAI,
) -> None:
    instructions = text_of(1100)  # past the 1,024 tokens caching starts at
    conversation = (await client.conversations.create()).id
    ask = {"instructions": instructions, "prompt_cache_key": "k1"}
    first = await answered(client, conversation, "one", **ask)
    second = await answered(client, conversation, "two", **ask)
    assert first.usage.input_tokens_details.cached_tokens == 0
    shared = first.usage.input_tokens  # all of the first prompt is the second's prefix
    assert second.usage.input_tokens_details.cached_tokens == shared // 128 * 128
    assert second.prompt_cache_key == "k1"
    other = await answered(client, conversation, "three", **{**ask, "prompt_cache_key": "k2"})
    assert other.usage.input_tokens_details.cached_tokens == 0


# -- Chat Completions ------------------------------------------------------------------------


async def test_chat_bills_a_repeated_prefix_as_cached_and_refuses_past_the_window(
    client: AsyncOpenAI,
) -> None:
    system = {"role": "system", "content": text_of(1100)}
    first = await client.chat.completions.create(
        model=MODEL, messages=[system, {"role": "user", "content": "one"}]
    )
    second = await client.chat.completions.create(
        model=MODEL, messages=[system, {"role": "user", "content": "two"}]
    )
    strict(second)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == 1104 // 128 * 128
    with pytest.raises(openai.BadRequestError) as refused:
        await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text_of(4000)}]
        )
    assert refused.value.code == "context_length_exceeded"


async def test_chat_servers_that_refuse_stream_options_or_report_no_usage(
    client: AsyncOpenAI, stand_in: OpenAIStandIn
) -> None:
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    stand_in.chat.reports_usage = False
    stream = await client.chat.completions.create(**ask, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert chunks and all(chunk.usage is None and chunk.choices for chunk in chunks)
    stand_in.chat.accepts_stream_options = False
    with pytest.raises(openai.BadRequestError, match="stream_options"):
        await client.chat.completions.create(**ask, stream_options={"include_usage": True})


# -- Assistants ------------------------------------------------------------------------------


async def run_on(client: AsyncOpenAI, texts: list[str], **extra: object) -> object:
    assistant = await client.beta.assistants.create(model=MODEL, instructions="Teach.")
    thread = await client.beta.threads.create(
        messages=[{"role": "user", "content": text} for text in texts]
    )
    run = await client.beta.threads.runs.create(thread.id, assistant_id=assistant.id, **extra)
    return await until(
        lambda: client.beta.threads.runs.retrieve(run.id, thread_id=thread.id),
        lambda r: r.status not in ("queued", "in_progress"),
    )


async def test_a_run_reads_the_latest_messages_that_fit_max_prompt_tokens(
    client: AsyncOpenAI,
) -> None:
    texts = [text_of(400), text_of(400), "last"]
    run = await run_on(client, texts, max_prompt_tokens=600, truncation_strategy={"type": "auto"})
    strict(run)
    assert run.status == "completed" and run.usage.prompt_tokens <= 600
    assert run.usage.prompt_tokens == (4 + len("Teach.") // 4) + (4 + 400) + (4 + 1)
    assert run.max_prompt_tokens == 600


async def test_a_run_whose_last_messages_exceed_max_prompt_tokens_ends_incomplete(
    client: AsyncOpenAI,
) -> None:
    last_two = {"type": "last_messages", "last_messages": 2}
    run = await run_on(
        client, [text_of(400), text_of(400)], max_prompt_tokens=600, truncation_strategy=last_two
    )
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_prompt_tokens"
    with pytest.raises(openai.BadRequestError):
        await run_on(client, ["x"], max_prompt_tokens=100)
