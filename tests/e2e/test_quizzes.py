"""Quizzes from outside: `/tutor quiz [topic]` and *Quiz me on this* write a quiz with the
model's structured output, show it only to the learner with buttons, mark each answer and
keep the score; an unusable quiz from the model is asked for again, then told plainly.

The scripted model's quiz asks which choice is a word of the topic: the right choice is a
word of it, the others are ancient cities (`bot.local.scripted_model`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.local.scripted_model import QUIZ_DISTRACTORS
from bot.settings import BackendKind
from bot.slack.quiz_blocks import parse_choice_value, quiz_message
from bot.storage.keys import Keys
from bot.tutor.ledger import UsageLedger
from bot.tutor.quiz_store import CourseScore, CourseTotals, Progress, QuizScores, QuizStore
from tests.e2e.conftest import Harness

CHANNEL = "C950"
USER = "U950"
OTHER = "U951"
COURSE = f"T1:{CHANNEL}"
responses_only = pytest.mark.parametrize("backend", [BackendKind.RESPONSES], ids=["responses"])


async def ask_quiz(harness: Harness, text: str, channel: str = CHANNEL) -> tuple[str, str]:
    """`/tutor quiz …`: (the ack's text, the response_url the quiz goes to)."""
    response_url = harness.slack.new_response_url()
    status, body = await harness.events.slash_command(
        "/tutor", text, channel_id=channel, user_id=USER, response_url=response_url
    )
    assert status == 200
    return json.loads(body)["text"] if body else "", response_url


async def next_post(harness: Harness, count: int) -> dict[str, Any]:
    """The `count`-th message sent to any response_url (waiting for it)."""
    posts = harness.slack.response_url_posts
    await harness.slack.wait_for(lambda: len(posts) >= count)
    return posts[count - 1]


def buttons(post: dict[str, Any], question: int) -> list[dict[str, Any]]:
    [actions] = [b for b in post["blocks"] if b.get("block_id") == f"quiz_a{question}"]
    return list(actions["elements"])


def right_button(post: dict[str, Any], question: int) -> dict[str, Any]:
    """The choice that is a word of the topic (the scripted model's right answer)."""
    [right] = [b for b in buttons(post, question) if b["text"]["text"] not in QUIZ_DISTRACTORS]
    return right


def wrong_button(post: dict[str, Any], question: int) -> dict[str, Any]:
    return next(b for b in buttons(post, question) if b["text"]["text"] in QUIZ_DISTRACTORS)


async def click(
    harness: Harness, button: dict[str, Any], question: int, user: str = USER
) -> dict[str, Any]:
    """`user` clicks `button` of the ephemeral quiz; the bot's reply to it."""
    before = len(harness.slack.response_url_posts)
    action = {"type": "button", "action_id": button["action_id"], "block_id": f"quiz_a{question}",
              "value": button["value"], "text": button["text"]}  # fmt: skip
    status, _ = await harness.events.block_action(
        action, channel=CHANNEL, message_ts="1800000000.000001", user_id=user,
        response_url=harness.slack.new_response_url(), ephemeral=True,
    )  # fmt: skip
    assert status == 200
    return await next_post(harness, before + 1)


def marks(post: dict[str, Any]) -> list[str]:
    """The context lines of a quiz message (marks and tally)."""
    return [
        e["text"] for b in post["blocks"] if b["type"] == "context" for e in b["elements"]
    ]  # fmt: skip


def quiz_requests(harness: Harness, path: str) -> list[dict[str, Any]]:
    return [r.json for r in harness.openai.requests if r.path.endswith(path)]


@responses_only
async def test_a_quiz_is_shown_answered_and_scored(
    harness: Harness, redis: Redis, keys: Keys
) -> None:
    ack, _ = await ask_quiz(harness, "quiz Roman roads")
    assert ack.startswith("Writing a quiz on *Roman roads*")
    quiz = await next_post(harness, 1)
    assert quiz["response_type"] == "ephemeral" and not quiz["replace_original"]
    headers = [b["text"]["text"] for b in quiz["blocks"] if b["type"] == "header"]
    assert headers == ["Quiz: Roman roads"]
    sections = [b for b in quiz["blocks"] if b["type"] == "section"]
    assert [s["text"]["text"][:3] for s in sections] == ["*1.", "*2.", "*3."]
    assert all(len(buttons(quiz, q)) == 4 for q in range(3))
    [request] = quiz_requests(harness, "/responses")
    assert request["store"] is False and request["input"] == "Roman roads"
    assert request["text"]["format"]["type"] == "json_schema"
    assert request["text"]["format"]["strict"] is True

    marked = await click(harness, wrong_button(quiz, 0), 0)
    assert marked["replace_original"] and marked["response_type"] == "ephemeral"
    assert any("is not right" in line for line in marks(marked))
    assert marks(marked)[-1] == "1 of 3 answered, 0 right so far."
    again = await click(harness, right_button(marked, 0), 0)
    assert any("is right" in line and "is the one that counts" in line for line in marks(again))
    assert marks(again)[-1] == "1 of 3 answered, 0 right so far.", "the first answer counts"
    await click(harness, right_button(quiz, 1), 1)
    done = await click(harness, right_button(quiz, 2), 2)
    assert marks(done)[-1] == f"Done: 2 of 3 right. Your score in <#{CHANNEL}>: 2 of 3 right."

    scores = QuizScores(redis, keys)
    assert await scores.for_learner("T1", USER) == [CourseScore(COURSE, 2, 3)]
    assert await scores.for_team("T1") == [CourseTotals(COURSE, 1, 3, 2, 1)]

    refused = await click(harness, right_button(quiz, 1), 1, user=OTHER)
    assert refused["text"] == f"This quiz is <@{USER}>'s. `/tutor quiz` writes one for you."
    assert not refused.get("replace_original")
    assert await scores.for_learner("T1", OTHER) == []

    report = await UsageLedger(redis, keys).report("T1", USER)
    assert report.user_today.turns == 1 and report.user_today.output_tokens > 0, "counted"


@responses_only
async def test_nothing_in_the_quiz_payload_tells_the_right_choice(
    harness: Harness, redis: Redis, keys: Keys
) -> None:
    await ask_quiz(harness, "quiz the Silk Road")
    posted = await next_post(harness, 1)
    quiz_id, _, _ = parse_choice_value(buttons(posted, 0)[0]["value"]) or ("", 0, 0)
    record = await QuizStore(redis, keys).load(quiz_id)
    assert record is not None
    payload = json.dumps(posted)
    for question in record.quiz.questions:
        assert question.explanation not in payload, "explanations only once answered"
    # The same quiz with the right answer anywhere else is the same message, to the byte.
    for index, question in enumerate(record.quiz.questions):
        for right in range(len(question.choices)):
            moved = dataclasses.replace(question, right=right)
            questions = list(record.quiz.questions)
            questions[index] = moved
            other = dataclasses.replace(
                record, quiz=dataclasses.replace(record.quiz, questions=tuple(questions))
            )
            text, blocks = quiz_message(other, Progress({}, {}))
            assert (text, blocks) == (posted["text"], posted["blocks"])


@responses_only
@pytest.mark.parametrize("fault", ["malformed", "two_right"])
async def test_an_unusable_quiz_is_asked_for_again(harness: Harness, fault: str) -> None:
    harness.openai.quiz_faults.append(fault)
    await ask_quiz(harness, "quiz Hadrian's Wall")
    quiz = await next_post(harness, 1)
    assert len([b for b in quiz["blocks"] if b["type"] == "actions"]) == 3
    assert len(quiz_requests(harness, "/responses")) == 2


@responses_only
async def test_two_unusable_quizzes_get_a_plain_message(harness: Harness) -> None:
    harness.openai.quiz_faults.extend(["malformed", "two_right"])
    await ask_quiz(harness, "quiz Hadrian's Wall")
    told = await next_post(harness, 1)
    assert told["text"].startswith("I couldn't write a quiz on that this time")
    assert not told.get("blocks") and told["response_type"] == "ephemeral"
    assert len(quiz_requests(harness, "/responses")) == 2


@responses_only
async def test_a_model_server_error_is_told_plainly(harness: Harness) -> None:
    harness.openai.fail_next("POST", r"/responses$", 400)
    ack, _ = await ask_quiz(harness, "quiz")
    assert ack == "Writing a quiz for you… it appears here in a few seconds."
    told = await next_post(harness, 1)
    assert told["text"] == (
        "I couldn't write a quiz just now: the model server rejected the request. "
        "Please tell whoever runs the tutor."
    )


@pytest.mark.parametrize("backend", [BackendKind.CHAT], ids=["chat"])
async def test_a_chat_server_without_response_format_is_asked_in_words(harness: Harness) -> None:
    harness.openai.chat.accepts_response_format = False
    await ask_quiz(harness, "quiz Roman roads")
    await next_post(harness, 1)
    first, second = quiz_requests(harness, "/chat/completions")
    assert first["response_format"]["json_schema"]["strict"] is True
    assert "response_format" not in second and "JSON schema" in second["messages"][0]["content"]
    await ask_quiz(harness, "quiz Greek temples")
    quiz = await next_post(harness, 2)
    assert right_button(quiz, 0)["text"]["text"] in ("Greek", "temples")
    requests = quiz_requests(harness, "/chat/completions")
    assert len(requests) == 3 and "response_format" not in requests[2], "remembered"


@pytest.mark.parametrize("backend", [BackendKind.ASSISTANTS], ids=["assistants"])
async def test_an_assistants_server_is_asked_by_chat_completions_else_responses(
    harness: Harness,
) -> None:
    await ask_quiz(harness, "quiz Roman roads")
    await next_post(harness, 1)
    assert len(quiz_requests(harness, "/chat/completions")) == 1
    assert harness.openai.count("POST", r"/threads") == 0, "no thread left behind"
    harness.openai.leave_out("chat")
    await ask_quiz(harness, "quiz Greek temples")
    await next_post(harness, 2)
    await ask_quiz(harness, "quiz Egyptian tombs")
    await next_post(harness, 3)
    assert len(quiz_requests(harness, "/chat/completions")) == 2, "one 404, then remembered"
    assert [r["input"] for r in quiz_requests(harness, "/responses")] == [
        "Greek temples",
        "Egyptian tombs",
    ]


@responses_only
async def test_quiz_me_on_this_quizzes_on_the_message(harness: Harness) -> None:
    message = {"ts": harness.events.next_ts(), "user": OTHER,
               "text": "The Via Appia linked Rome to Brindisi."}  # fmt: skip
    status, _ = await harness.events.message_shortcut(
        "quiz_me", channel=CHANNEL, message_ts=message["ts"], user_id=USER,
        response_url=harness.slack.new_response_url(), author=OTHER, text=message["text"],
    )  # fmt: skip
    assert status == 200
    writing = await next_post(harness, 1)
    assert writing["text"].startswith("Writing a quiz on that message")
    quiz = await next_post(harness, 2)
    [request] = quiz_requests(harness, "/responses")
    assert request["input"] == message["text"]
    assert "passage from their conversation" in request["instructions"]
    words = {right_button(quiz, q)["text"]["text"] for q in range(3)}
    assert words == {"Appia", "linked", "Rome"}
    marked = await click(harness, right_button(quiz, 0), 0)
    assert any("is right" in line for line in marks(marked))
