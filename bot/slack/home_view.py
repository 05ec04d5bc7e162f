"""The App Home tab in Block Kit: a learner's page, and for admins every course's figures.

Only rendering and parsing: the figures come from `bot.tutor.home`. Slack allows 100 blocks
in a Home view and 100 options in a select: the busiest courses are shown, the rest
counted in a note, and the DM course select lists the first 99 courses by name.
"""

from __future__ import annotations

import time
from typing import Any

from bot.slack.render import escape_mrkdwn
from bot.tutor.courses import Mode
from bot.tutor.home import CourseFigures, CoursesOverview, LearnerHome, QuizScore
from bot.tutor.prices import format_usd

Block = dict[str, Any]

HOME_CALLBACK = "tutor_home"
MODE_ACTION = "home_mode"
DM_COURSE_ACTION = "home_dm_course"
MAX_BLOCKS = 100  # Slack's limit for a Home view
MAX_OPTIONS = 100  # Slack's limit for a select's options
OPTION_TEXT_LIMIT = 75
BLOCKS_PER_COURSE = 2
COMMENT_SHOWN_LIMIT = 150
COURSE_DEFAULT = "course"  # the mode option that clears the learner's own choice
DEFAULT_TUTOR = "-"  # the DM course option of the default tutor

MODE_WORDS = {
    Mode.GUIDED: "*Guided*: I ask what you know and give hints first; *Show me the answer* "
    "under an answer gives it in full.",
    Mode.DIRECT: "*Direct*: I answer straight away.",
}


def home_view(learner: LearnerHome, overview: CoursesOverview | None = None) -> dict[str, Any]:
    """The Home view of one person; `overview` for admins (the courses' figures)."""
    blocks = learner_blocks(learner)
    if overview is not None:
        blocks += course_blocks(overview, MAX_BLOCKS - len(blocks))
    return {"type": "home", "callback_id": HOME_CALLBACK, "blocks": blocks[:MAX_BLOCKS]}


def courses_that_fit(blocks_used: int) -> int:
    """How many courses' figures fit under a learner's page of `blocks_used` blocks."""
    return max((MAX_BLOCKS - blocks_used - 3) // BLOCKS_PER_COURSE, 0)


# ---- a learner's page ---------------------------------------------------------------------


def learner_blocks(learner: LearnerHome) -> list[Block]:
    blocks: list[Block] = [
        {"type": "header", "text": _plain("Your tutor")},
        _section(_mode_text(learner.mode), accessory=_mode_select(learner.mode)),
        _context(
            "`/tutor mode guided` or `/tutor mode direct` does the same. Where you have not "
            "chosen, each course's default applies."
        ),
        _section(_my_courses_text(learner)),
    ]
    if learner.courses:
        blocks.append(
            _section(
                "*Course for our direct messages*: the tutor that answers when you write to me.",
                accessory=_dm_course_select(learner),
            )
        )
    blocks.append(_section(_quiz_text(learner)))  # QUIZ SCORES: rendered from the hook
    blocks.append(_section(_topics_text(learner)))
    return blocks


def _mode_text(mode: Mode | None) -> str:
    if mode is None:
        return "*Your answers*: each course's default (direct where there is none)."
    return f"*Your answers*: {MODE_WORDS[mode]}"


def _mode_select(mode: Mode | None) -> Block:
    options = [
        _option("Guided: hints first", Mode.GUIDED.value),
        _option("Direct: the answer at once", Mode.DIRECT.value),
        _option("Each course's default", COURSE_DEFAULT),
    ]
    chosen = {Mode.GUIDED: 0, Mode.DIRECT: 1, None: 2}[mode]
    return {
        "type": "static_select",
        "action_id": MODE_ACTION,
        "placeholder": _plain("Answer mode"),
        "options": options,
        "initial_option": options[chosen],
    }


def _dm_course_select(learner: LearnerHome) -> Block:
    by_name = sorted(learner.courses, key=lambda c: learner.courses[c].lower())
    options = [_option("The default tutor", DEFAULT_TUTOR)]
    options += [_option(learner.courses[c], c) for c in by_name[: MAX_OPTIONS - 1]]
    select: Block = {
        "type": "static_select",
        "action_id": DM_COURSE_ACTION,
        "placeholder": _plain("Course"),
        "options": options,
    }
    chosen = next((o for o in options if o["value"] == learner.dm_course), options[0])
    select["initial_option"] = chosen
    return select


def _my_courses_text(learner: LearnerHome) -> str:
    if not learner.my_courses:
        return "*Your courses*: none yet. Ask me in a course's channel and it shows up here."
    lines = [f"• *{escape_mrkdwn(learner.courses[c])}* in <#{c}>" for c in learner.my_courses]
    return _fit("*Your courses*\n" + "\n".join(lines))


def _quiz_text(learner: LearnerHome) -> str:
    scores: list[QuizScore] = learner.quiz_scores or []
    if not scores:
        return "*Quiz scores*: none yet. `/tutor quiz` starts a short quiz."
    lines = [
        f"• {_course_label(s.course_channel, learner.courses)}: {s.right} of {s.answered} right"
        for s in scores
    ]
    return _fit("*Quiz scores*\n" + "\n".join(lines))


def _course_label(channel: str, courses: dict[str, str]) -> str:
    if channel in courses:
        return f"*{escape_mrkdwn(courses[channel])}*"
    return "Outside courses" if not channel else f"<#{channel}>"


def _topics_text(learner: LearnerHome) -> str:
    """Where and when each recent conversation started (the bot keeps no question text: each
    reader's Slack shows the time in their own time zone)."""
    if not learner.topics:
        return "*Recent conversations*: none yet."
    lines = [f"• <#{t.channel_id}>, {_slack_date(t.at)}" for t in learner.topics]
    return _fit("*Recent conversations*\n" + "\n".join(lines))


def _slack_date(at: float) -> str:
    """Slack's date formatting, with a UTC fallback for clients that cannot show it."""
    fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
    return f"<!date^{int(at)}^{{date_short_pretty}} at {{time}}|{fallback}>"


# ---- the courses, for admins ----------------------------------------------------------------


def course_blocks(overview: CoursesOverview, room: int) -> list[Block]:
    """The courses' figures in at most `room` blocks (the busiest first, a note for the rest)."""
    head: list[Block] = [
        {"type": "divider"},
        {"type": "header", "text": _plain("Courses (you see this as an admin)")},
    ]
    if not overview.courses:
        return [*head, _context("No courses yet. `/tutor course` in a channel sets one up.")]
    fitting = max((room - len(head) - 1) // BLOCKS_PER_COURSE, 0)
    shown = overview.courses[:fitting]
    blocks = head + [block for course in shown for block in _course(course)]
    hidden = overview.total - len(shown)
    if hidden > 0:
        blocks.append(
            _context(
                f"{hidden} more course{'s' if hidden != 1 else ''} not shown: the busiest are."
            )
        )
    return blocks


def _course(course: CourseFigures) -> list[Block]:
    tokens = course.tokens
    spent = f"{tokens.input_tokens:,} in · {tokens.output_tokens:,} out"
    if tokens.priced_turns:
        spent += f" · ≈ {format_usd(tokens.cost_nanousd)}"
    fields = [
        f"*Questions*\n{course.questions:,}",
        f"*Learners*\n{course.learners:,}",
        f"*Feedback*\n👍 {course.thumbs_up:,} · 👎 {course.thumbs_down:,}",
        f"*Tokens*\n{spent}",
    ]
    section: Block = {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": f"*{escape_mrkdwn(course.name)}* in <#{course.channel_id}>",
        },
        "fields": [{"type": "mrkdwn", "text": text} for text in fields],
    }
    if course.latest_comments:
        said = " · ".join(
            f"“{escape_mrkdwn(_cut(c, COMMENT_SHOWN_LIMIT))}”" for c in course.latest_comments
        )
        note = _fit(f"Latest comments: {said}")
    else:
        note = "No comments on answers yet."
    return [section, _context(note)]


# ---- parsing the selects --------------------------------------------------------------------


def chosen_mode(value: str | None) -> tuple[bool, Mode | None]:
    """(understood, the mode) from the mode select: COURSE_DEFAULT clears the choice."""
    if value == COURSE_DEFAULT:
        return True, None
    if value in {m.value for m in Mode}:
        return True, Mode(value)
    return False, None


def chosen_dm_course(value: str | None) -> str | None:
    """The channel of the chosen DM course; None for the default tutor."""
    return None if not value or value == DEFAULT_TUTOR else value


# ---- Block Kit pieces -----------------------------------------------------------------------


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": _plain(_cut(text, OPTION_TEXT_LIMIT)), "value": value}


def _section(text: str, accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fit(text: str, limit: int = 3000) -> str:
    """A section's or context element's text within Slack's 3,000 characters."""
    return _cut(text, limit)
