"""What the model is told for one turn: the course's tutor (or the default one) and the mode.

Pure logic: a course, the learner's own mode and a turn's override in, a `Teaching` out.
The instructions are chosen once per turn, when its run is about to be created, and kept in
the turn's journal: a turn resumed after a crash uses the same ones, and changing a course
affects only turns that start afterwards.

`Teaching.instructions` replaces the backend's default instructions (TUTOR_INSTRUCTIONS) and
is None where the default tutor teaches; `Teaching.additional` is the mode's guidance,
added after them. Both are stable per course and mode, so prompt caches keep hitting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.tutor.courses import AnswerLength, Course, Mode

GUIDED_INSTRUCTIONS = """\
Teach in guided mode: help the learner reach the answer themselves instead of handing it \
over.
- Start from what they already know. If that is not clear from the conversation, first ask \
one short question about it, and explain nothing yet.
- Then give one hint or the next step only, never the whole solution, and end with a \
question that lets them try that step themselves.
- When they reply, say what is right, gently correct what is not, and give the next hint.
- Check understanding before moving on: ask them to explain the idea back in their own \
words, apply it to a small example, or predict what happens.
- Explain in full only once they have worked through it.
- Keep each reply short and about one step. Be warm and encouraging, never condescending.
- Do not write the final answer, a complete solution or a finished essay for them, even when \
asked to. Tell them instead that the "Show me the answer" button under your reply gives the \
full answer whenever they want it.
- Background facts that are not the point of the question (a date, a definition) may be \
given directly."""

LENGTH_GUIDANCE: Mapping[AnswerLength, str] = {
    AnswerLength.SHORT: "Keep answers short: three sentences or less, unless asked for more.",
    AnswerLength.MEDIUM: "Keep answers to a short paragraph or a few bullet points.",
    AnswerLength.LONG: "Give thorough answers, with the steps and an example where they help.",
}

# The question of a guided answer, asked again by its "Show me the answer" button.
REVEAL_REQUEST = (
    "Show me the answer to the question you just guided me through, directly and completely."
)
REVEAL_REQUEST_WITH_REPLY = REVEAL_REQUEST + ' (Your guided reply to it began: "{reply}")'
# How much of the guided reply names the question it answered.
REVEAL_REPLY_CHARS = 300


class ModeSource(StrEnum):
    """Where a turn's mode comes from (said by `/tutor mode`)."""

    TURN = "turn"  # this turn only ("Show me the answer")
    LEARNER = "learner"  # the learner's own `/tutor mode`
    COURSE = "course"  # the course's default
    DEFAULT = "default"  # neither: direct, as the tutor always answered


@dataclass(frozen=True)
class Teaching:
    """How one turn is taught: its mode and the instructions sent with its run."""

    mode: Mode
    instructions: str | None = None  # replaces the default instructions; None: the default
    additional: str = ""  # added after them: the mode's guidance
    course: str = ""  # whose materials the run may search ("team:channel"; "": none)

    @property
    def guided(self) -> bool:
        return self.mode is Mode.GUIDED

    def fields(self) -> dict[str, str]:
        """For the turn's journal (a Redis hash: strings only)."""
        fields = {"teaching_mode": self.mode.value, "additional_instructions": self.additional}
        if self.instructions is not None:
            fields["instructions"] = self.instructions
        if self.course:
            fields["materials_course"] = self.course
        return fields

    @classmethod
    def from_fields(cls, stored: Mapping[str, str]) -> Teaching | None:
        """The teaching a journal recorded; None when it recorded none."""
        mode = stored.get("teaching_mode")
        if mode not in {m.value for m in Mode}:
            return None
        return cls(
            Mode(mode),
            stored.get("instructions"),
            stored.get("additional_instructions", ""),
            stored.get("materials_course", ""),
        )


DEFAULT_TEACHING = Teaching(Mode.DIRECT)


def effective_mode(
    course: Course | None, learner_mode: Mode | None, override: Mode | None = None
) -> tuple[Mode, ModeSource]:
    """The mode a turn is answered in, and why: this turn's override, else the learner's own
    choice, else the course's default, else direct."""
    if override is not None:
        return override, ModeSource.TURN
    if learner_mode is not None:
        return learner_mode, ModeSource.LEARNER
    if course is not None:
        return course.mode, ModeSource.COURSE
    return Mode.DIRECT, ModeSource.DEFAULT


def course_instructions(course: Course) -> str:
    """The instructions of a course's tutor: who it is, the teacher's words, the length."""
    about = f'You are the tutor of the course "{course.name}"'
    about += f", on {course.subject}." if course.subject else "."
    parts = [about]
    if course.instructions:
        parts.append(f"The teacher's instructions for this course:\n{course.instructions}")
    parts.append(LENGTH_GUIDANCE[course.length])
    return "\n\n".join(parts)


def choose_teaching(
    course: Course | None, learner_mode: Mode | None, override: Mode | None = None
) -> Teaching:
    """How a turn is taught, from its course (None: the default tutor), the learner's own
    mode and the turn's override."""
    mode, _ = effective_mode(course, learner_mode, override)
    instructions = course_instructions(course) if course is not None else None
    additional = GUIDED_INSTRUCTIONS if mode is Mode.GUIDED else ""
    return Teaching(mode, instructions, additional)


def reveal_request(guided_reply: str) -> str:
    """The text of the turn a "Show me the answer" click asks. The bot keeps no question's
    text: the backend's conversation holds the question, and the start of the guided reply
    (the clicked message) says which one."""
    reply = " ".join(guided_reply.split())[:REVEAL_REPLY_CHARS]
    return REVEAL_REQUEST_WITH_REPLY.format(reply=reply) if reply else REVEAL_REQUEST
