"""A quiz in Block Kit: buttons that say where they stand and nothing else, marks after."""

from __future__ import annotations

import dataclasses
import json
from itertools import permutations

from bot.slack.quiz_blocks import (
    CHOICE_ACTION,
    choice_value,
    parse_choice_value,
    quiz_message,
)
from bot.tutor.quiz import Question, Quiz
from bot.tutor.quiz_store import CourseScore, Progress, QuizRecord

QUIZ_ID = "quiz_0123456789abcdef"
QUIZ = Quiz(
    "Roman <roads> & more",
    (
        Question("Which road led to <!channel> Brindisi?", ("Via Flaminia", "Via Appia",
                 "Via Aurelia"), 1, "The Via Appia ran to Brindisi."),
        Question("Who began it?", ("Appius Claudius", "Augustus"), 0, "Begun in 312 BC."),
    ),
)  # fmt: skip
RECORD = QuizRecord(QUIZ_ID, QUIZ, "T1", "C1", "U1", "T1:C1")
NOTHING = Progress({}, {})


def with_right(record: QuizRecord, rights: tuple[int, ...]) -> QuizRecord:
    questions = tuple(
        dataclasses.replace(q, right=r) for q, r in zip(record.quiz.questions, rights, strict=True)
    )
    return dataclasses.replace(record, quiz=dataclasses.replace(record.quiz, questions=questions))


def test_where_the_right_choice_stands_changes_nothing_in_the_message() -> None:
    shown = quiz_message(RECORD, NOTHING)
    for first in range(3):
        for second in range(2):
            assert quiz_message(with_right(RECORD, (first, second)), NOTHING) == shown
    payload = json.dumps(shown)
    assert "ran to Brindisi" not in payload and "312 BC" not in payload, "no explanations"


def test_buttons_carry_the_quiz_the_question_and_the_position() -> None:
    _, blocks = quiz_message(RECORD, NOTHING)
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [len(a["elements"]) for a in actions] == [3, 2]
    first = actions[0]["elements"]
    assert [b["action_id"] for b in first] == ["quiz_choice_0", "quiz_choice_1", "quiz_choice_2"]
    assert all(CHOICE_ACTION.fullmatch(b["action_id"]) for b in first)
    assert [b["value"] for b in first] == [f"{QUIZ_ID}:0:{c}" for c in range(3)]
    assert [b["text"]["text"] for b in first] == list(QUIZ.questions[0].choices)
    assert all(set(b) == {"type", "action_id", "text", "value"} for b in first), "no style"


def test_choice_values_read_back_and_nothing_else_does() -> None:
    assert parse_choice_value(choice_value(QUIZ_ID, 2, 3)) == (QUIZ_ID, 2, 3)
    for value in ("", QUIZ_ID, f"{QUIZ_ID}:1", f"{QUIZ_ID}:1:2:3", f"{QUIZ_ID}:a:1",
                  f"{QUIZ_ID}:1:-1", "quiz_x:1:1", f"{QUIZ_ID}:100:1", "up:turn_1"):  # fmt: skip
        assert parse_choice_value(value) is None, value


def test_text_is_escaped_so_nothing_pings_or_links() -> None:
    text, blocks = quiz_message(RECORD, NOTHING)
    assert blocks[0]["text"]["text"] == "Quiz: Roman <roads> & more", "plain text header"
    assert "&lt;!channel&gt;" in blocks[2]["text"]["text"]
    assert text == "Quiz: Roman <roads> & more (2 questions)"


def test_an_answer_is_marked_with_its_explanation_and_the_first_one_counts() -> None:
    progress = Progress(first={0: 0}, last={0: 1})
    _, blocks = quiz_message(RECORD, progress)
    marks = [b["elements"][0]["text"] for b in blocks if b["type"] == "context"]
    assert marks[1] == (
        "✅ *Via Appia* is right. The Via Appia ran to Brindisi. "
        "_(Your first answer, *Via Flaminia*, is the one that counts.)_"
    )
    assert marks[-1] == "1 of 2 answered, 0 right so far."
    wrong = Progress(first={0: 2}, last={0: 2})
    _, blocks = quiz_message(RECORD, wrong)
    assert "❌ *Via Aurelia* is not right. The Via Appia ran to Brindisi." in json.dumps(
        blocks, ensure_ascii=False
    )


def test_once_all_is_answered_the_course_score_is_shown() -> None:
    progress = Progress(first={0: 1, 1: 1}, last={0: 1, 1: 1})
    _, blocks = quiz_message(RECORD, progress, CourseScore("T1:C1", 7, 9))
    assert blocks[-1]["elements"][0]["text"] == (
        "Done: 1 of 2 right. Your score in <#C1>: 7 of 9 right."
    )
    in_dm = dataclasses.replace(RECORD, channel_id="D1", course_key="T1:dm")
    _, blocks = quiz_message(in_dm, progress, CourseScore("T1:dm", 1, 2))
    assert "Your score in our direct messages: 1 of 2 right." in blocks[-1]["elements"][0]["text"]


def test_every_order_of_choices_fits_block_kit() -> None:
    long_choice = "x" * 75
    question = Question("q" * 300, (long_choice, "b", "c", "d"), 0, "e" * 300)
    for order in permutations(range(4)):
        choices = tuple(question.choices[i] for i in order)
        quiz = Quiz("t" * 150, (dataclasses.replace(question, choices=choices),) * 5)
        record = dataclasses.replace(RECORD, quiz=quiz)
        _, blocks = quiz_message(
            record, Progress({i: 0 for i in range(5)}, {i: 1 for i in range(5)})
        )
        assert len(blocks) <= 50
        assert len(blocks[0]["text"]["text"]) <= 150
        for block in blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
            if block["type"] == "actions":
                assert all(len(b["text"]["text"]) <= 75 for b in block["elements"])
