"""Quizzes: what the model is asked for, what it must answer, and how its answer is checked.

A quiz is written by the model in one call outside the learner's conversation, as
structured output: a JSON object matching `QUIZ_SCHEMA`. Its answer is then checked here
(`parse_quiz`, a pure function) as strictly as Slack will show it: exactly one right choice
per question, no empty or repeated texts, every text within Block Kit's limits (a button's
text is at most 75 characters). An answer that fails is asked for once more (`write_quiz`);
then the learner is told plainly that no quiz could be written.

The choices are shuffled here, once, when the quiz is made: where the right one stands says
nothing, and only the stored quiz (`bot.tutor.quiz_store`) knows it.

Pure except `write_quiz`, which talks to a `QuizWriter` (one per model API, in
`bot.backends.quiz_writer`).
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass, replace
from typing import Any, Protocol

from bot.backends.base import Usage
from bot.turns.text import clean_text

log = logging.getLogger(__name__)

SCHEMA_NAME = "quiz"
DEFAULT_QUESTIONS = 3
MAX_QUESTIONS = 5
MIN_CHOICES = 2
MAX_CHOICES = 5
# Block Kit: a button's text is at most 75 characters, a section's at most 3,000.
MAX_CHOICE_CHARS = 75
MAX_QUESTION_CHARS = 300
MAX_EXPLANATION_CHARS = 300
MAX_TITLE_CHARS = 150
# What the model is given to write about.
MAX_TOPIC_CHARS = 300
MAX_PASSAGE_CHARS = 4000
# Tokens one quiz may cost in output (reasoning models count their reasoning in it).
QUIZ_OUTPUT_TOKENS = 4096
ATTEMPTS = 2  # the first answer, and one more when it is not a usable quiz

_CHOICE = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "The choice, at most 60 characters."},
        "right": {"type": "boolean", "description": "True for the one right choice."},
    },
    "required": ["text", "right"],
    "additionalProperties": False,
}
QUIZ_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "description": "The quiz's topic in a few words."},
        "questions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "question": {"type": "string"},
                    "choices": {"type": "array", "items": _CHOICE},
                    "explanation": {
                        "type": "string",
                        "description": "One sentence: why the right choice is right.",
                    },
                },
                "required": ["question", "choices", "explanation"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["title", "questions"],
    "additionalProperties": False,
}

_INSTRUCTIONS = """You write short multiple-choice quizzes that let a learner check what they \
understood. {source}
Write {count} questions. Each has 3 or 4 choices: exactly one is right ("right": true), the \
others are plausible but wrong. Each explanation is one sentence of at most 200 characters \
saying why the right choice is right. Keep each question under 250 characters and each choice \
under 60; no Markdown. The title names the topic in a few words. Write in the language of the \
learner's message.
The tutor you write for has these instructions, which say what it teaches: "{tutor}\""""
_ON_TOPIC = "The learner's message names the topic of the quiz."
_ON_PASSAGE = (
    "The learner's message is a passage from their conversation with the tutor: the quiz "
    "checks that they understood it."
)
_ANY_TOPIC = "The learner leaves the topic to you: pick one from what the tutor teaches."
ANY_TOPIC_MESSAGE = "Quiz me."
JSON_BY_INSTRUCTIONS = (
    "\nAnswer with one JSON object and nothing else (no code fence, no comment), matching this "
    "JSON schema:\n{schema}"
)


@dataclass(frozen=True)
class Question:
    """One question: its choices in the order shown, which is right, and why."""

    text: str
    choices: tuple[str, ...]
    right: int
    explanation: str


@dataclass(frozen=True)
class Quiz:
    title: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class QuizPrompt:
    """What one quiz call sends: the instructions and the learner's message."""

    instructions: str
    message: str


@dataclass(frozen=True)
class ModelText:
    """What the model answered to a quiz call, as text, and what it cost."""

    text: str
    usage: Usage | None = None


class QuizWriter(Protocol):
    """A model API asked for one quiz, outside any conversation (nothing stored)."""

    async def write(self, prompt: QuizPrompt) -> ModelText:
        """The model's answer (meant to be the quiz's JSON). Raises BackendError."""
        ...


class InvalidQuiz(ValueError):
    """The model's answer is no usable quiz; the message says why (never its content)."""


class QuizNotWritten(Exception):
    """The model gave no usable quiz, also when asked again; `usage`: what the tries cost."""

    def __init__(self, usage: Usage | None) -> None:
        super().__init__("no usable quiz in two attempts")
        self.usage = usage


@dataclass(frozen=True)
class WrittenQuiz:
    quiz: Quiz
    usage: Usage | None  # of every attempt, added up


def quiz_topic(text: str) -> str:
    """The topic of `/tutor quiz <text>`: the text after the word, without a leading
    "me on" / "about" ("" when none), trimmed to MAX_TOPIC_CHARS."""
    topic = clean_text(text).strip()
    topic = re.sub(r"^quiz\b", "", topic, flags=re.IGNORECASE).strip()
    topic = re.sub(r"^(me\s+)?(on|about)\b", "", topic, flags=re.IGNORECASE).strip()
    return _one_line(topic)[:MAX_TOPIC_CHARS]


def quiz_prompt(
    *,
    tutor_instructions: str,
    topic: str = "",
    passage: str = "",
    questions: int = DEFAULT_QUESTIONS,
) -> QuizPrompt:
    """The prompt for a quiz on `topic`, or on `passage` (a message of a conversation), or,
    with neither, on a topic the model picks from what the tutor teaches."""
    passage = clean_text(passage).strip()[:MAX_PASSAGE_CHARS]
    if passage:
        source, message = _ON_PASSAGE, passage
    elif topic:
        source, message = _ON_TOPIC, topic
    else:
        source, message = _ANY_TOPIC, ANY_TOPIC_MESSAGE
    instructions = _INSTRUCTIONS.format(
        source=source, count=questions, tutor=_one_line(tutor_instructions)
    )
    return QuizPrompt(instructions, message)


def asking_for_json(prompt: QuizPrompt) -> QuizPrompt:
    """The same prompt for a server that takes no JSON schema: the schema in the words."""
    schema = json.dumps(QUIZ_SCHEMA, separators=(",", ":"))
    instructions = prompt.instructions + JSON_BY_INSTRUCTIONS.format(schema=schema)
    return replace(prompt, instructions=instructions)


def parse_quiz(text: str) -> Quiz:
    """The quiz in the model's answer; raises InvalidQuiz saying what is wrong with it.

    Tolerates a code fence around the JSON (models asked in words add one).
    """
    body = text.strip()
    fenced = re.fullmatch(r"```[A-Za-z]*\s*\n?(.*?)\n?```", body, flags=re.DOTALL)
    if fenced:
        body = fenced.group(1).strip()
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidQuiz("not JSON") from None
    return validate_quiz(data)


def validate_quiz(data: object) -> Quiz:
    """The quiz `data` (decoded JSON) holds; raises InvalidQuiz unless it is one Slack can
    show: 1–5 questions, each with 2–5 distinct choices of which exactly one is right, an
    explanation, and every text non-empty and within its limit."""
    if not isinstance(data, dict):
        raise InvalidQuiz("not an object")
    title = data.get("title", "")
    if not isinstance(title, str):
        raise InvalidQuiz("title is not text")
    questions = data.get("questions")
    if not isinstance(questions, list) or not 1 <= len(questions) <= MAX_QUESTIONS:
        raise InvalidQuiz(f"not 1 to {MAX_QUESTIONS} questions")
    checked = tuple(_question(item, index) for index, item in enumerate(questions, 1))
    return Quiz(_one_line(clean_text(title)).strip()[:MAX_TITLE_CHARS], checked)


def _question(item: object, number: int) -> Question:
    where = f"question {number}"
    if not isinstance(item, dict):
        raise InvalidQuiz(f"{where} is not an object")
    text = _text(item.get("question"), MAX_QUESTION_CHARS, where)
    explanation = _text(item.get("explanation"), MAX_EXPLANATION_CHARS, f"{where}'s explanation")
    choices = item.get("choices")
    if not isinstance(choices, list) or not MIN_CHOICES <= len(choices) <= MAX_CHOICES:
        raise InvalidQuiz(f"{where} has not {MIN_CHOICES} to {MAX_CHOICES} choices")
    texts: list[str] = []
    right: list[int] = []
    for index, choice in enumerate(choices):
        if not isinstance(choice, dict) or not isinstance(choice.get("right"), bool):
            raise InvalidQuiz(f"{where}: a choice without text and right")
        texts.append(_one_line(_text(choice.get("text"), MAX_CHOICE_CHARS, f"{where}'s choice")))
        if choice["right"]:
            right.append(index)
    if len(right) != 1:
        raise InvalidQuiz(f"{where} has {len(right)} right choices")
    if len({t.casefold() for t in texts}) != len(texts):
        raise InvalidQuiz(f"{where} repeats a choice")
    return Question(text, tuple(texts), right[0], explanation)


def _text(value: object, limit: int, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidQuiz(f"{where} is not text")
    text = clean_text(value).strip()
    if not text:
        raise InvalidQuiz(f"{where} is empty")
    if len(text) > limit:
        raise InvalidQuiz(f"{where} is longer than {limit} characters")
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def shuffled(quiz: Quiz, rng: random.Random) -> Quiz:
    """The quiz with each question's choices in a random order (the right one followed)."""
    questions = []
    for question in quiz.questions:
        order = list(range(len(question.choices)))
        rng.shuffle(order)
        choices = tuple(question.choices[i] for i in order)
        questions.append(replace(question, choices=choices, right=order.index(question.right)))
    return replace(quiz, questions=tuple(questions))


async def write_quiz(writer: QuizWriter, prompt: QuizPrompt) -> WrittenQuiz:
    """Ask `writer` for a quiz, once more when its answer is no usable quiz.

    Raises QuizNotWritten after two unusable answers, BackendError when the model server
    fails (the SDK has retried what is worth retrying).
    """
    usages: list[Usage] = []
    for attempt in range(1, ATTEMPTS + 1):
        answer = await writer.write(prompt)
        if answer.usage is not None:
            usages.append(answer.usage)
        try:
            quiz = parse_quiz(answer.text)
        except InvalidQuiz as error:
            log.warning("the model's quiz was not usable (attempt %d): %s", attempt, error)
            continue
        return WrittenQuiz(quiz, added(usages))
    raise QuizNotWritten(added(usages))


def added(usages: list[Usage]) -> Usage | None:
    """The usages of several calls as one (None when none was reported)."""
    if not usages:
        return None
    return Usage(
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        cached_tokens=sum(u.cached_tokens for u in usages),
        estimated=any(u.estimated for u in usages),
    )
