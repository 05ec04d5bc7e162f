"""A quiz as Slack shows it (Block Kit), and its buttons' clicks read back.

Each question is a section with one button per choice. A button carries only where it
stands: the quiz's id, the question's index and the choice's index (`quiz_…:1:2`), with an
action id per position (`quiz_choice_2`). The choices were shuffled when the quiz was made
and which one is right is kept in Redis only, so nothing in the message (values, action ids,
block ids, the fallback text) tells the right choice before it is clicked; the explanation
appears only once the question is answered.
"""

from __future__ import annotations

import re
from typing import Any

from bot.slack.render import escape_mrkdwn
from bot.tutor.quiz_store import DM_COURSE, CourseScore, Progress, QuizRecord, is_quiz_id

Block = dict[str, Any]

CHOICE_ACTION = re.compile(r"quiz_choice_\d{1,2}")  # every choice button's action id
HEADER_LIMIT = 150  # a header block's text
RIGHT = "✅ *{choice}* is right. {explanation}"
WRONG = "❌ *{choice}* is not right. {explanation}"
FIRST_COUNTS = " _(Your first answer, *{choice}*, is the one that counts.)_"
ONLY_YOU = (
    "Only you see this quiz. Click an answer: your first answer to each question counts for "
    "your score {where}."
)
PROGRESS = "{answered} of {count} answered, {right} right so far."
DONE = "Done: {right} of {count} right. Your score {where}: {total_right} of {total} right."


def choice_action_id(choice: int) -> str:
    return f"quiz_choice_{choice}"


def choice_value(quiz_id: str, question: int, choice: int) -> str:
    return f"{quiz_id}:{question}:{choice}"


def parse_choice_value(value: str) -> tuple[str, int, int] | None:
    """(quiz id, question index, choice index) of a choice button; None for anything else."""
    if value.count(":") != 2:
        return None
    quiz_id, question, choice = value.split(":")
    if not is_quiz_id(quiz_id):
        return None
    if not (question.isdigit() and choice.isdigit() and len(question) < 3 and len(choice) < 3):
        return None
    return quiz_id, int(question), int(choice)


def quiz_message(
    record: QuizRecord, progress: Progress, score: CourseScore | None = None
) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of the quiz with the answers clicked so far marked.

    `score` is the learner's score in the course, shown once every question is answered.
    """
    quiz = record.quiz
    title = quiz.title or "Quiz"
    where = _where(record.course_key)
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": _header(title)}},
        _context(ONLY_YOU.format(where=where)),
    ]
    for index, question in enumerate(quiz.questions):
        blocks.append({
            "type": "section", "block_id": f"quiz_q{index}",
            "text": {"type": "mrkdwn", "text": f"*{index + 1}.* {escape_mrkdwn(question.text)}"},
        })  # fmt: skip
        blocks.append({
            "type": "actions", "block_id": f"quiz_a{index}",
            "elements": [
                {"type": "button", "action_id": choice_action_id(choice),
                 "text": {"type": "plain_text", "text": text, "emoji": True},
                 "value": choice_value(record.quiz_id, index, choice)}
                for choice, text in enumerate(question.choices)
            ],
        })  # fmt: skip
        if index in progress.last:
            blocks.append(_context(_mark(record, progress, index)))
    blocks.append(_context(_tally(record, progress, score, where)))
    text = f"Quiz: {title} ({len(quiz.questions)} questions)"
    return text, blocks


def _mark(record: QuizRecord, progress: Progress, index: int) -> str:
    question = record.quiz.questions[index]
    clicked = progress.last[index]
    template = RIGHT if clicked == question.right else WRONG
    mark = template.format(
        choice=escape_mrkdwn(question.choices[clicked]),
        explanation=escape_mrkdwn(question.explanation),
    )
    first = progress.first.get(index, clicked)
    if first != clicked:
        mark += FIRST_COUNTS.format(choice=escape_mrkdwn(question.choices[first]))
    return mark


def _tally(record: QuizRecord, progress: Progress, score: CourseScore | None, where: str) -> str:
    count = len(record.quiz.questions)
    right = progress.right(record.quiz)
    if len(progress.first) < count or score is None:
        return PROGRESS.format(answered=len(progress.first), count=count, right=right)
    return DONE.format(
        right=right, count=count, where=where, total_right=score.right, total=score.answered
    )


def _where(course_key: str) -> str:
    place = course_key.partition(":")[2]
    return "in our direct messages" if place == DM_COURSE else f"in <#{place}>"


def _header(title: str) -> str:
    text = f"Quiz: {title}"
    return text if len(text) <= HEADER_LIMIT else text[: HEADER_LIMIT - 1] + "…"


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
