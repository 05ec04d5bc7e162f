"""The course form, a modal `/tutor course` opens: rendering it, reading what was submitted,
and the errors shown next to its fields (`response_action: errors`).

The channel it sets travels in `private_metadata` (a channel id, nothing secret); the
submitted values arrive in `view.state.values`, by block id and action id.
"""

from __future__ import annotations

import json
from typing import Any

from bot.tutor.courses import (
    INSTRUCTIONS_LIMIT,
    NAME_LIMIT,
    SUBJECT_LIMIT,
    AnswerLength,
    Course,
    CourseField,
    CourseForm,
    Mode,
)
from bot.tutor.materials import ACCEPTED_EXTENSIONS, MAX_FILES_PER_FORM, Material

COURSE_CALLBACK = "tutor_course"
VALUE = "value"  # each input's action id
BLOCK_OF: dict[CourseField, str] = {field: f"course_{field.value}" for field in CourseField}

MODE_OPTIONS = {
    Mode.GUIDED: "Guided: questions and hints first",
    Mode.DIRECT: "Direct: the answer at once",
}
LENGTH_OPTIONS = {
    AnswerLength.SHORT: "Short: a few sentences",
    AnswerLength.MEDIUM: "Medium: a paragraph",
    AnswerLength.LONG: "Long: thorough, with examples",
}


FILES_BLOCK = "course_files"
REMOVE_BLOCK = "course_remove_files"
DELETE_BLOCK = "course_delete"
DELETE_VALUE = "delete"
DELETE_TEXT = "Delete this course and its materials"
DELETE_HINT = (
    "The channel goes back to the default tutor; the course's files are deleted everywhere "
    "(at the model provider too)."
)
FILES_HINT = (
    "PDF, Word (.docx), Markdown or text, up to 10 files; the tutor answers from them and "
    "cites them."
)


def course_modal(
    channel_id: str,
    course: Course | None,
    materials: list[Material] | None = None,
    *,
    with_files: bool = True,
) -> dict[str, Any]:
    """The form for the course of `channel_id`, filled in with its current course and
    materials (files to add; checkboxes to remove those it has)."""
    mode = course.mode if course else Mode.GUIDED
    length = course.length if course else AnswerLength.SHORT
    blocks = [
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"The tutor of <#{channel_id}>: every question asked there from "
                    "now on is answered this way. A learner's own `/tutor mode` beats the "
                    "default mode.",
                }
            ],
        },
        _text_input(
            CourseField.NAME, "Course name", course.name if course else "", NAME_LIMIT,
            placeholder="e.g. Physics, Year 9",
        ),
        _text_input(
            CourseField.SUBJECT, "Subject", course.subject if course else "", SUBJECT_LIMIT,
            placeholder="e.g. mechanics: forces and motion", optional=True,
        ),
        _text_input(
            CourseField.INSTRUCTIONS, "Instructions for the tutor",
            course.instructions if course else "", INSTRUCTIONS_LIMIT,
            placeholder="What the tutor should know and do: the level, the syllabus, what to "
            "stress, what to avoid.",
            optional=True, multiline=True,
        ),
        _select(CourseField.MODE, "Default answer mode", MODE_OPTIONS, mode),
        _select(CourseField.LENGTH, "Answer length", LENGTH_OPTIONS, length),
        *(_materials_blocks(materials or []) if with_files else []),
        *([_delete_block()] if course is not None else []),
    ]  # fmt: skip
    return {
        "type": "modal",
        "callback_id": COURSE_CALLBACK,
        "private_metadata": json.dumps({"channel": channel_id}),
        "title": {"type": "plain_text", "text": "Course settings"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def channel_of(view: dict[str, Any]) -> str | None:
    """The channel a submitted course form is for (None: not a form the bot made)."""
    try:
        channel = json.loads(view.get("private_metadata") or "").get("channel")
    except (ValueError, AttributeError):
        return None
    return channel if isinstance(channel, str) and channel else None


def submitted_form(view: dict[str, Any]) -> CourseForm:
    """What the form held when it was submitted."""
    values = (view.get("state") or {}).get("values") or {}

    def read(field: CourseField) -> str | None:
        state = (values.get(BLOCK_OF[field]) or {}).get(VALUE) or {}
        if "selected_option" in state:
            return ((state.get("selected_option") or {}).get("value")) or None
        value = state.get("value")
        return value if isinstance(value, str) else None

    return CourseForm(
        name=read(CourseField.NAME),
        subject=read(CourseField.SUBJECT),
        instructions=read(CourseField.INSTRUCTIONS),
        mode=read(CourseField.MODE),
        length=read(CourseField.LENGTH),
    )


def submitted_files(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The files added in the form's file input (Slack's file objects, as submitted)."""
    values = (view.get("state") or {}).get("values") or {}
    files = ((values.get(FILES_BLOCK) or {}).get(VALUE) or {}).get("files") or []
    return [f for f in files if isinstance(f, dict) and isinstance(f.get("id"), str)]


def materials_to_remove(view: dict[str, Any]) -> list[str]:
    """The material ids ticked for removal."""
    values = (view.get("state") or {}).get("values") or {}
    chosen = ((values.get(REMOVE_BLOCK) or {}).get(VALUE) or {}).get("selected_options") or []
    return [str(o.get("value")) for o in chosen if isinstance(o, dict) and o.get("value")]


def delete_asked(view: dict[str, Any]) -> bool:
    """True when "Delete this course" was ticked."""
    values = (view.get("state") or {}).get("values") or {}
    chosen = ((values.get(DELETE_BLOCK) or {}).get(VALUE) or {}).get("selected_options") or []
    return any(isinstance(o, dict) and o.get("value") == DELETE_VALUE for o in chosen)


def _delete_block() -> dict[str, Any]:
    option = {"text": {"type": "plain_text", "text": DELETE_TEXT}, "value": DELETE_VALUE}
    return {
        "type": "input",
        "block_id": DELETE_BLOCK,
        "optional": True,
        "label": {"type": "plain_text", "text": "Delete"},
        "hint": {"type": "plain_text", "text": DELETE_HINT},
        "element": {"type": "checkboxes", "action_id": VALUE, "options": [option]},
    }


def _materials_blocks(materials: list[Material]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "input",
            "block_id": FILES_BLOCK,
            "optional": True,
            "label": {"type": "plain_text", "text": "Add course materials"},
            "hint": {"type": "plain_text", "text": FILES_HINT},
            "element": {
                "type": "file_input",
                "action_id": VALUE,
                "filetypes": list(ACCEPTED_EXTENSIONS),
                "max_files": MAX_FILES_PER_FORM,
            },
        }
    ]
    if materials:
        options = [
            {"text": {"type": "plain_text", "text": _shown(m)[:75]}, "value": m.material_id}
            for m in materials[:10]
        ]
        blocks.append(
            {
                "type": "input",
                "block_id": REMOVE_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Remove materials"},
                "element": {"type": "checkboxes", "action_id": VALUE, "options": options},
            }
        )
    return blocks


def _shown(material: Material) -> str:
    pages = f", {material.pages} pages" if material.pages else ""
    return f"{material.name}{pages}"


def slack_errors(errors: dict[CourseField, str]) -> dict[str, str]:
    """The errors by block id, as `response_action: errors` takes them."""
    return {BLOCK_OF[field]: message for field, message in errors.items()}


def _text_input(
    field: CourseField,
    label: str,
    initial: str,
    limit: int,
    *,
    placeholder: str,
    optional: bool = False,
    multiline: bool = False,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": VALUE,
        "max_length": limit,
        "multiline": multiline,
        "placeholder": {"type": "plain_text", "text": placeholder[:150]},
    }
    if initial:
        element["initial_value"] = initial
    return {
        "type": "input",
        "block_id": BLOCK_OF[field],
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }


def _select(field: CourseField, label: str, options: dict[Any, str], chosen: Any) -> dict[str, Any]:
    shown = [
        {"text": {"type": "plain_text", "text": text}, "value": value.value}
        for value, text in options.items()
    ]
    initial = next(option for option in shown if option["value"] == chosen.value)
    return {
        "type": "input",
        "block_id": BLOCK_OF[field],
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "static_select",
            "action_id": VALUE,
            "options": shown,
            "initial_option": initial,
        },
    }
