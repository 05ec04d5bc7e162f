"""How the OpenAI stand-in counts tokens and keeps a prompt within its model's context.

The count is deterministic and simple, not a tokenizer: a message costs 4 tokens (its role and
separators) plus one token per 4 characters of its text, rounded down; an answer costs one
token per 4 characters (at least 1). It is the rule the bot's own estimate uses
(`bot.backends.chat_history.estimate_tokens`), so the two agree on the stand-in.

A prompt is what the model reads for one answer: messages, and where a conversation was
compacted, the compaction's `Summary` in place of everything before it. On top of the count:

- the model's context window (`ContextLimits.window_tokens`): a prompt past it is refused,
  or, where the API truncates, loses its oldest parts first;
- compaction (the Responses API's `context_management`): past the threshold, the history
  before the new input becomes one `Summary`, an eighth of its size, that remembers how many
  questions it holds (the scripted model counts them);
- prompt caching (`PromptCache`): a request is billed cached for the prefix it shares with
  the previous request in its bucket, as OpenAI does from 1,024 tokens on, in steps of 128.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
DEFAULT_WINDOW_TOKENS = 128_000
CACHE_MIN_TOKENS = 1024
CACHE_STEP_TOKENS = 128
MIN_COMPACT_THRESHOLD = 1000  # the Responses API's lower bound for `compact_threshold`
COMPACTION_RATIO = 8  # a summary is this many times smaller than what it replaces

Message = tuple[str, str]  # (role, text)


@dataclass(frozen=True)
class Summary:
    """What a compaction item stands for: the questions folded into it, and its own size.

    `key` tells two compactions apart (a cache never mistakes one for the other).
    """

    questions: int
    tokens: int
    key: str = field(default_factory=lambda: secrets.token_hex(8))

    def encoded(self) -> str:
        """The compaction item's opaque `encrypted_content`."""
        raw = json.dumps({"q": self.questions, "t": self.tokens, "k": self.key})
        return base64.b64encode(raw.encode()).decode()

    @classmethod
    def decoded(cls, content: str) -> Summary | None:
        """The summary an `encrypted_content` holds; None for content not made here."""
        try:
            raw = json.loads(base64.b64decode(content, validate=True))
            return cls(int(raw["q"]), int(raw["t"]), str(raw["k"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None


Part = Message | Summary


@dataclass
class ContextLimits:
    """The served model's context, as tests and benchmarks set it (mutable on the stand-in)."""

    window_tokens: int = DEFAULT_WINDOW_TOKENS
    accepts_compaction: bool = True  # False: `context_management` answers 400


def text_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN


def output_tokens(text: str) -> int:
    return max(1, text_tokens(text))


def part_tokens(part: Part) -> int:
    if isinstance(part, Summary):
        return part.tokens
    return TOKENS_PER_MESSAGE + text_tokens(part[1])


def prompt_tokens(parts: Sequence[Part]) -> int:
    return max(1, sum(part_tokens(part) for part in parts))


def questions(parts: Sequence[Part]) -> int:
    """The user messages a prompt holds, those folded into a summary included."""
    return sum(
        part.questions if isinstance(part, Summary) else int(part[0] == "user") for part in parts
    )


def compacted(parts: Sequence[Part]) -> Summary:
    """One summary for `parts` (which may begin with an earlier summary)."""
    return Summary(questions(parts), max(1, prompt_tokens(parts) // COMPACTION_RATIO))


def truncated(parts: Sequence[Part], limit: int, keep_last: int) -> list[Part]:
    """`parts` without their oldest history until they fit `limit` tokens.

    System messages (the instructions) and the last `keep_last` parts (the new input) are
    never dropped, so the result may still be over `limit`.
    """
    kept = list(parts)
    while prompt_tokens(kept) > limit:
        droppable = [
            index
            for index, part in enumerate(kept[: len(kept) - keep_last])
            if isinstance(part, Summary) or part[0] != "system"
        ]
        if not droppable:
            break
        del kept[droppable[0]]
    return kept


class PromptCache:
    """The prompt last seen per bucket (model and `prompt_cache_key`), for cached tokens."""

    def __init__(self) -> None:
        self._last: dict[str, list[Part]] = {}

    def cached_tokens(self, bucket: str, parts: Sequence[Part]) -> int:
        """Tokens of `parts` a cache holds from the bucket's previous prompt; remember these."""
        previous = self._last.get(bucket, [])
        self._last[bucket] = list(parts)
        shared = 0
        for mine, theirs in zip(parts, previous, strict=False):
            if mine != theirs:
                break
            shared += part_tokens(mine)
        if shared < CACHE_MIN_TOKENS:
            return 0
        return shared // CACHE_STEP_TOKENS * CACHE_STEP_TOKENS


def bucket(model: str, cache_key: object) -> str:
    """The cache bucket of a request: its model and `prompt_cache_key`, if it names one."""
    return f"{model}\n{cache_key if isinstance(cache_key, str) else ''}"
