"""Quiz logic: the prompt, the strict check of the model's quiz, shuffling, one retry."""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
import pytest

from bot.backends.base import BackendError, Usage
from bot.local.scripted_model import quiz_json
from bot.tutor.quiz import (
    MAX_CHOICE_CHARS,
    QUIZ_SCHEMA,
    InvalidQuiz,
    ModelText,
    Question,
    Quiz,
    QuizNotWritten,
    QuizPrompt,
    asking_for_json,
    parse_quiz,
    quiz_prompt,
    quiz_topic,
    shuffled,
    validate_quiz,
    write_quiz,
)


def question(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "question": "Which road led from Rome to Brindisi?",
        "choices": [
            {"text": "Via Appia", "right": True},
            {"text": "Via Flaminia", "right": False},
            {"text": "Via Aurelia", "right": False},
        ],
        "explanation": "The Via Appia ran south-east to Brindisi.",
    }
    item.update(changes)
    return item


def quiz_data(*questions: dict[str, Any]) -> dict[str, Any]:
    return {"title": "Roman roads", "questions": list(questions) or [question()]}


def test_a_good_quiz_is_read_as_written() -> None:
    quiz = validate_quiz(quiz_data(question(), question(question="Who built it?")))
    assert quiz.title == "Roman roads"
    assert quiz.questions[0] == Question(
        "Which road led from Rome to Brindisi?",
        ("Via Appia", "Via Flaminia", "Via Aurelia"),
        0,
        "The Via Appia ran south-east to Brindisi.",
    )
    assert quiz.questions[1].text == "Who built it?"


def choices(*rights: bool, texts: tuple[str, ...] = ("A1", "B2", "C3", "D4")) -> list[Any]:
    return [{"text": text, "right": right} for text, right in zip(texts, rights, strict=False)]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ([], "not an object"),
        ({"title": "t"}, "questions"),
        ({"title": "t", "questions": []}, "questions"),
        (quiz_data(*[question()] * 6), "questions"),
        (quiz_data(question(choices=choices(True, True, False))), "2 right choices"),
        (quiz_data(question(choices=choices(False, False, False))), "0 right choices"),
        (quiz_data(question(choices=choices(True))), "choices"),
        (
            quiz_data(question(choices=choices(True, *[False] * 5, texts=tuple("abcdef")))),
            "choices",
        ),
        (quiz_data(question(choices=choices(True, False, texts=("Rome", "rome")))), "repeats"),
        (quiz_data(question(choices=[{"text": "x", "right": "true"}, *choices(True)])), "right"),
        (quiz_data(question(choices=choices(True, False, texts=("ok", "  ")))), "empty"),
        (quiz_data(question(choices=choices(True, False, texts=("ok", "x" * 76)))), "longer"),
        (quiz_data(question(question="")), "empty"),
        (quiz_data(question(question="?" * 301)), "longer"),
        (quiz_data(question(explanation=None)), "not text"),
        (quiz_data(question(explanation="\u0000\u0001")), "empty"),
        ({"title": 3, "questions": [question()]}, "title"),
    ],
)
def test_a_quiz_slack_cannot_show_or_with_other_than_one_right_choice_is_refused(
    data: Any, why: str
) -> None:
    with pytest.raises(InvalidQuiz, match=why):
        validate_quiz(data)


def test_a_choice_fills_a_button_at_most() -> None:
    longest = "x" * MAX_CHOICE_CHARS
    quiz = validate_quiz(quiz_data(question(choices=choices(True, False, texts=(longest, "y")))))
    assert quiz.questions[0].choices[0] == longest


def test_texts_are_cleaned_and_choices_kept_on_one_line() -> None:
    item = question(choices=choices(True, False, texts=("Via\nAppia", "Via\u0000 Flaminia")))
    quiz = validate_quiz({"title": " Roads\nof Rome ", "questions": [item]})
    assert quiz.title == "Roads of Rome"
    assert quiz.questions[0].choices == ("Via Appia", "Via Flaminia")


def test_the_json_may_come_in_a_code_fence_but_must_be_json() -> None:
    text = json.dumps(quiz_data())
    assert parse_quiz(f"```json\n{text}\n```") == parse_quiz(text)
    with pytest.raises(InvalidQuiz, match="not JSON"):
        parse_quiz(text[:-5])


def test_shuffling_moves_the_right_choice_with_its_text() -> None:
    quiz = validate_quiz(quiz_data(*[question()] * 5))
    seen = set()
    for seed in range(20):
        mixed = shuffled(quiz, random.Random(seed))
        for q in mixed.questions:
            assert q.choices[q.right] == "Via Appia"
            assert sorted(q.choices) == sorted(quiz.questions[0].choices)
            seen.add(q.right)
    assert seen == {0, 1, 2}, "the right choice stands anywhere"


def test_the_topic_is_what_follows_the_word() -> None:
    assert quiz_topic("quiz Roman roads") == "Roman roads"
    assert quiz_topic("QUIZ me on the Silk\nRoad") == "the Silk Road"
    assert quiz_topic("quiz about Solon") == "Solon"
    assert quiz_topic("quiz") == ""
    assert quiz_topic("quiz " + "x" * 500) == "x" * 300


def test_the_prompt_names_the_topic_the_passage_or_neither() -> None:
    on_topic = quiz_prompt(tutor_instructions="You teach history.", topic="Roman roads")
    assert on_topic.message == "Roman roads"
    assert "names the topic" in on_topic.instructions
    assert "Write 3 questions" in on_topic.instructions
    assert '"You teach history."' in on_topic.instructions
    passage = quiz_prompt(tutor_instructions="t", passage="Rome\u0000 fell.", questions=5)
    assert passage.message == "Rome fell." and "passage" in passage.instructions
    assert "Write 5 questions" in passage.instructions
    anything = quiz_prompt(tutor_instructions="t")
    assert anything.message == "Quiz me." and "leaves the topic to you" in anything.instructions
    in_words = asking_for_json(on_topic)
    assert in_words.message == on_topic.message
    assert json.dumps(QUIZ_SCHEMA, separators=(",", ":")) in in_words.instructions


def test_the_schema_is_a_strict_one_and_the_stand_in_answers_it() -> None:
    """Structured outputs' strict mode: every property required, no others allowed."""

    def check(schema: dict[str, Any]) -> None:
        if schema.get("type") == "object":
            assert schema["additionalProperties"] is False
            assert sorted(schema["required"]) == sorted(schema["properties"])
            for sub in schema["properties"].values():
                check(sub)
        if schema.get("type") == "array":
            check(schema["items"])

    check(QUIZ_SCHEMA)
    written = json.loads(quiz_json("The Via Appia linked Rome to Brindisi", 4))
    jsonschema.validate(written, QUIZ_SCHEMA)
    assert len(validate_quiz(written).questions) == 4


class ScriptedWriter:
    """Answers the quiz calls with the given texts, in order."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.prompts: list[QuizPrompt] = []

    async def write(self, prompt: QuizPrompt) -> ModelText:
        self.prompts.append(prompt)
        return ModelText(self.texts.pop(0), Usage(10, 5))


PROMPT = QuizPrompt("instructions", "Roman roads")


async def test_an_unusable_quiz_is_asked_for_once_more() -> None:
    good = json.dumps(quiz_data())
    writer = ScriptedWriter("not json", good)
    written = await write_quiz(writer, PROMPT)
    assert written.quiz == Quiz("Roman roads", validate_quiz(quiz_data()).questions)
    assert written.usage == Usage(20, 10), "both calls are counted"
    assert writer.prompts == [PROMPT, PROMPT]


async def test_two_unusable_quizzes_are_no_quiz() -> None:
    two_right = json.dumps(quiz_data(question(choices=choices(True, True))))
    writer = ScriptedWriter("{", two_right, "never asked")
    with pytest.raises(QuizNotWritten) as raised:
        await write_quiz(writer, PROMPT)
    assert raised.value.usage == Usage(20, 10)
    assert writer.texts == ["never asked"]


async def test_a_model_server_error_is_not_asked_again() -> None:
    class Failing:
        calls = 0

        async def write(self, prompt: QuizPrompt) -> ModelText:
            Failing.calls += 1
            raise BackendError("write quiz: 500", reason="the model server had an internal error")

    with pytest.raises(BackendError):
        await write_quiz(Failing(), PROMPT)
    assert Failing.calls == 1
