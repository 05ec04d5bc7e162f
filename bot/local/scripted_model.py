"""The deterministic model behind the local OpenAI stand-in.

It answers `Answer {n}: {last user text}`, where n counts the user messages it saw (those a
compaction summarised included), so a test can tell whether context was kept. Directives in
square brackets in the last user message steer it (and the stand-in's timing and outcome);
they are stripped from the echoed text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from bot.local.context_window import Part, output_tokens, prompt_tokens, questions

DIRECTIVE = re.compile(
    r"[ \t]*\[(slow:\d+(?:\.\d+)?|long:\d+|fail|expire|incomplete|echo|markdown|cut|cite)\][ \t]*",
    re.IGNORECASE,
)

MARKDOWN_SAMPLE = """## Key points

**Caesar** crossed the Rubicon in *49 BC*.

- He was a general
- He became dictator

```python
print("veni, vidi, vici")
```

Read more on [Wikipedia](https://en.wikipedia.org/wiki/Julius_Caesar)."""

# [cite]: sentences the answer cites, each with the source it cites (one cited twice).
CITED_SENTENCES = (
    ("Herodotus wrote the Histories.", "Herodotus", "https://en.wikipedia.org/wiki/Herodotus"),
    (
        "Thucydides wrote about the Peloponnesian War.",
        "Thucydides",
        "https://en.wikipedia.org/wiki/Thucydides",
    ),
    (
        "Herodotus was born in Halicarnassus.",
        "Herodotus",
        "https://en.wikipedia.org/wiki/Herodotus",
    ),
)

LOREM = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation "
)
PARAGRAPH_LENGTH = 400
PARAGRAPH_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Directives:
    """What the last user message asked of the model and of the stand-in around it."""

    slow: float | None = None
    long: int | None = None
    fail: bool = False
    expire: bool = False
    incomplete: bool = False
    echo: bool = False
    markdown: bool = False
    cut: bool = False
    cite: bool = False


@dataclass(frozen=True)
class ScriptedCitation:
    """A cited passage of the answer: text[start:end], and its source."""

    start: int
    end: int
    title: str
    url: str
    file_id: str = ""  # a file's (file_search), cited by name: `title` is its file name


@dataclass(frozen=True)
class Reply:
    """One answer with its token counts (see `bot.local.context_window`)."""

    text: str
    directives: Directives
    prompt_tokens: int
    completion_tokens: int
    citations: tuple[ScriptedCitation, ...] = ()

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def parse_directives(text: str) -> tuple[str, Directives]:
    """Split `text` into the text without directives and the directives found in it."""
    found: dict[str, object] = {}
    for match in DIRECTIVE.finditer(text):
        name, _, value = match.group(1).lower().partition(":")
        found[name] = _directive_value(name, value)
    clean = DIRECTIVE.sub(" ", text).strip()
    return clean, Directives(**found)  # type: ignore[arg-type]


def _directive_value(name: str, value: str) -> object:
    if name == "slow":
        return float(value)
    if name == "long":
        return int(value)
    return True


def respond(prompt: Sequence[Part], *, cite: bool = False) -> Reply:
    """The answer to a prompt of (role, text) messages (and maybe a compaction's summary),
    as the stand-in's model gives it."""
    user_texts = [part[1] for part in prompt if isinstance(part, tuple) and part[0] == "user"]
    last = user_texts[-1] if user_texts else ""
    clean, directives = parse_directives(last)
    if cite:  # it searched the web: it cites what it found
        directives = replace(directives, cite=True)
    text = compose(questions(prompt), clean, directives)
    citations = cited_passages(text) if directives.cite else ()
    return Reply(text, directives, prompt_tokens(prompt), output_tokens(text), citations)


def compose(count: int, clean: str, directives: Directives) -> str:
    """The answer text itself; `count` is the number of user messages seen."""
    header = f"Answer {count}: {clean}"
    if directives.long is not None:
        return long_answer(directives.long, header)
    text = clean if directives.echo else header
    if directives.markdown:
        text = f"{text}{PARAGRAPH_SEPARATOR}{MARKDOWN_SAMPLE}"
    if directives.cite:
        text = f"{text}{PARAGRAPH_SEPARATOR}{' '.join(s for s, _, _ in CITED_SENTENCES)}"
    return text


def cited_passages(text: str) -> tuple[ScriptedCitation, ...]:
    """Where each cited sentence stands in `text`, with its source."""
    found: list[ScriptedCitation] = []
    for sentence, title, url in CITED_SENTENCES:
        start = text.find(sentence)
        if start >= 0:
            found.append(ScriptedCitation(start, start + len(sentence), title, url))
    return tuple(found)


def long_answer(length: int, header: str = "") -> str:
    """Exactly `length` characters: the header if it fits, then numbered paragraphs in order.

    The last paragraph is shortened or stretched rather than dropped, so no number is ever cut
    into a smaller one (a cut "Paragraph 12" must not read as "Paragraph 1").
    """
    parts = [header] if header and len(header) + len(PARAGRAPH_SEPARATOR) + 20 <= length else []
    used = len(header) if parts else 0
    number = 1
    while True:
        room = length - used - (len(PARAGRAPH_SEPARATOR) if parts else 0)
        if room <= 0:
            break
        size = room if room < 2 * PARAGRAPH_LENGTH else PARAGRAPH_LENGTH
        parts.append(paragraph(number, size))
        used += size + (len(PARAGRAPH_SEPARATOR) if len(parts) > 1 else 0)
        number += 1
        if size == room:
            break
    return PARAGRAPH_SEPARATOR.join(parts)


def paragraph(number: int, size: int) -> str:
    """`size` characters starting "Paragraph {number}." and never ending in a space."""
    head = f"Paragraph {number}. "
    filler = LOREM * (size // len(LOREM) + 1)
    text = (head + filler)[:size]
    return text[:-1] + "." if text.endswith(" ") else text


def pieces(text: str, size: int = 20) -> list[str]:
    """`text` in consecutive pieces of `size` characters (the last may be shorter)."""
    return [text[start : start + size] for start in range(0, len(text), size)]


# ---- quizzes ---------------------------------------------------------------------------------
# Asked for structured output (a JSON schema), or for JSON in its instructions, the model
# writes a quiz on the words of the last user message: question n asks which of its choices
# is a word of that message; the right choice is such a word, the others are not. It writes
# as many questions as its instructions ask for ("Write 3 questions"), 3 by default.
# `QuizScript.faults` makes the next quizzes faulty: "malformed" (JSON cut in two),
# "two_right" (a question with two right choices).

QUIZ_FAULTS = frozenset({"malformed", "two_right"})
QUIZ_DISTRACTORS = ("Carthage", "Byzantium", "Babylon", "Nineveh", "Persepolis", "Knossos")
_QUESTION_COUNT = re.compile(r"\bWrite (\d+) questions\b")
_WORD = re.compile(r"[^\W\d_]{4,40}")


@dataclass
class QuizScript:
    """Faults for the next quizzes the model writes, one each, oldest first."""

    faults: list[str] = field(default_factory=list)

    def next_fault(self) -> str | None:
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None and fault not in QUIZ_FAULTS:
            raise ValueError(f"unknown quiz fault {fault!r}; known: {sorted(QUIZ_FAULTS)}")
        return fault


def asks_for_quiz_in_words(prompt: Sequence[Part]) -> bool:
    """The instructions ask for a quiz as JSON (a server without structured output)."""
    system = " ".join(p[1] for p in prompt if isinstance(p, tuple) and p[0] == "system").lower()
    return "quiz" in system and "json" in system


def quiz_reply(prompt: Sequence[Part], fault: str | None = None) -> Reply:
    """The quiz the model writes for this prompt, as JSON text, with its token counts."""
    system = " ".join(p[1] for p in prompt if isinstance(p, tuple) and p[0] == "system")
    user_texts = [p[1] for p in prompt if isinstance(p, tuple) and p[0] == "user"]
    asked = _QUESTION_COUNT.search(system)
    text = quiz_json(
        user_texts[-1] if user_texts else "", int(asked.group(1)) if asked else 3, fault
    )
    return Reply(text, Directives(), prompt_tokens(prompt), output_tokens(text))


def quiz_json(topic: str, questions: int = 3, fault: str | None = None) -> str:
    """A quiz on the words of `topic` (see above), as the model's JSON text."""
    words: list[str] = []
    for word in _WORD.findall(topic):
        if word.casefold() not in {w.casefold() for w in words}:
            words.append(word)
    words = words or ["History"]
    taken = {w.casefold() for w in _WORD.findall(topic)}
    distractors = [d for d in QUIZ_DISTRACTORS if d.casefold() not in taken][:3]
    shown = " ".join(topic.split())[:120]
    items = []
    for index in range(questions):
        word = words[index % len(words)]
        choices = [{"text": word, "right": True}]
        for number, other in enumerate(distractors):
            choices.append({"text": other, "right": fault == "two_right" and number == 0})
        items.append({
            "question": f"Question {index + 1}: which of these words is in “{shown}”?",
            "choices": choices,
            "explanation": f"“{word}” is a word of “{shown}”.",
        })  # fmt: skip
    text = json.dumps({"title": shown[:60] or "History", "questions": items}, ensure_ascii=False)
    return text[: len(text) // 2] if fault == "malformed" else text
