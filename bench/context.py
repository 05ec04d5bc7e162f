"""`python -m bench.context` (`make bench-context`): what each turn of a long conversation is
billed for, per backend, with the context budget (TUTOR_CONTEXT_TOKENS) and without it.

Each backend, built from settings by the bot's own factory, holds one 60-turn conversation
with the bundled OpenAI stand-in, which counts tokens and applies compaction, truncation,
`max_prompt_tokens` and prompt caching as the APIs do (bot/local/context_window.py says how
it counts: 4 tokens a message plus one per 4 characters). Every turn's usage is what the
backend reports to the bot (input tokens billed, of which cached). Without a budget the
input grows with every turn; with one it stays flat once the conversation reaches it.
The runs without a budget are the baseline, measured in the same run. A third `responses`
run has a server that refuses `context_management`: the bot falls back to truncation,
which bounds a turn only at the model's context window (set small here to show it).

Quick: the stand-in answers at once, the backends are driven directly (no Slack), and the
chat and assistants backends keep their state in a redis-server of the benchmark's own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.redis_server import RedisServer
from bench.report import markdown
from bot.backends.base import Backend, RunState, Usage, UserMessage
from bot.backends.factory import build_backend
from bot.local.context_window import DEFAULT_WINDOW_TOKENS
from bot.local.openai_api import OpenAIStandIn
from bot.settings import BackendKind, Settings, StreamingMode
from bot.storage.connection import connect
from bot.storage.keys import Keys

TURNS = 60
SHOWN_TURNS = (1, 10, 20, 40, 60)
BUDGET = 2000
SMALL_WINDOW = 4000
RUN_SECONDS = 0.002  # the stand-in's model time: the figures are tokens, not time
TURN_DEADLINE_SECONDS = 10
FILLER = (
    "and how did that shape the politics, the economy and the daily life of the people who "
    "lived through it, compared with what came before and with their neighbours at the time? "
)


def question(number: int) -> str:
    """A tutoring question of about 70 tokens, different every turn."""
    return f"Question {number}: what happened in the year {200 + number} BC, {FILLER * 2}"


@dataclass(frozen=True)
class Case:
    backend: BackendKind
    budget: int
    refuses_compaction: bool = False
    window: int = DEFAULT_WINDOW_TOKENS

    @property
    def label(self) -> str:
        if self.refuses_compaction:
            return f"{self.backend.value}, compaction refused (window {self.window:,})"
        return self.backend.value


CASES = (
    Case(BackendKind.RESPONSES, BUDGET),
    Case(BackendKind.RESPONSES, 0),
    Case(BackendKind.RESPONSES, BUDGET, refuses_compaction=True, window=SMALL_WINDOW),
    Case(BackendKind.ASSISTANTS, BUDGET),
    Case(BackendKind.ASSISTANTS, 0),
    Case(BackendKind.CHAT, BUDGET),
    Case(BackendKind.CHAT, 0),
)


async def finished(backend: Backend, conversation: str, run_id: str) -> RunState:
    deadline = time.monotonic() + TURN_DEADLINE_SECONDS
    while not (state := await backend.run_state(conversation, run_id)).status.is_final:
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} still {state.status} after {TURN_DEADLINE_SECONDS} s")
        await asyncio.sleep(RUN_SECONDS)
    return state


async def converse(backend: Backend, turns: int) -> list[Usage]:
    """One conversation of `turns` questions, each answered before the next; their usage."""
    conversation = await backend.create_conversation("bench-context")
    usages = []
    for number in range(1, turns + 1):
        message = UserMessage(question(number), f"turn-{number}")
        after = await backend.add_message(conversation, message)
        run_id = await backend.start_run(conversation, message)
        state = await finished(backend, conversation, run_id)
        if state.status != "completed" or state.usage is None:
            raise RuntimeError(f"turn {number}: {state.status} {state.error or ''}, no usage")
        await backend.answer(conversation, run_id, after)
        backend.release(run_id)
        usages.append(state.usage)
    return usages


async def measure(case: Case, redis_url: str, turns: int) -> list[Usage]:
    stand_in = OpenAIStandIn(
        queued_seconds=0.0, in_progress_seconds=RUN_SECONDS, context_window=case.window
    )
    stand_in.accepts_compaction = not case.refuses_compaction
    await stand_in.start()
    prefix = f"bench-context-{uuid.uuid4().hex[:8]}:"
    settings = Settings(
        openai_api_key="sk-bench",
        openai_base_url=stand_in.base_url,
        backend=case.backend,
        context_tokens=case.budget,
        streaming=StreamingMode.OFF,
        redis_prefix=prefix,
    )
    redis = connect(redis_url)
    backend = build_backend(settings, redis, Keys(prefix))
    try:
        return await converse(backend, turns)
    finally:
        await backend.close()
        await redis.aclose()
        await stand_in.stop()


def billed(usage: Usage) -> str:
    return f"{usage.input_tokens:,} ({usage.cached_tokens:,})"


def row(case: Case, usages: list[Usage]) -> list[str]:
    shown = [billed(usages[turn - 1]) if turn <= len(usages) else "–" for turn in SHOWN_TURNS]
    most = max(usage.input_tokens for usage in usages)
    total = Usage(
        sum(u.input_tokens for u in usages), cached_tokens=sum(u.cached_tokens for u in usages)
    )
    budget = f"{case.budget:,}" if case.budget else "off"
    return [case.label, budget, *shown, f"{most:,}", billed(total)]


def header() -> list[str]:
    turns = [f"turn {turn}" for turn in SHOWN_TURNS]
    return ["backend", "TUTOR_CONTEXT_TOKENS", *turns, "most in a turn", "all turns"]


async def run(turns: int) -> list[list[str]]:
    with tempfile.TemporaryDirectory(prefix="tutor-bench-context-") as workdir:
        redis = RedisServer(Path(workdir))
        redis.start()
        try:
            rows = []
            for case in CASES:
                started = time.monotonic()
                usages = await measure(case, redis.url, turns)
                print(
                    f"[{time.monotonic() - started:4.1f} s] {case.label}, budget {case.budget}",
                    file=sys.stderr,
                    flush=True,
                )
                rows.append(row(case, usages))
            return rows
        finally:
            redis.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.context", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--turns", type=int, default=TURNS, help="questions per conversation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the fallback's warning is the third row's label
    rows = asyncio.run(run(args.turns))
    print(
        f"Input tokens billed per turn (of which cached), one {args.turns}-turn conversation per "
        f"backend against the OpenAI stand-in; questions of about 70 tokens, answers echo them."
    )
    print()
    print(markdown(header(), rows))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
