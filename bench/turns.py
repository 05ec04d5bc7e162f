"""The benchmark's turns and what it saw of each: sent, acked, placeholder, run end, answer.

Every turn has a channel of its own and a token (`zqa0007`) in its question, which the
scripted model echoes in its answer: what Slack and OpenAI receive is told apart by them.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass

from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import ApiCall, SlackStandIn, shown_text

TOKEN = re.compile(r"zq[a-z]\d{4}", re.IGNORECASE)
RUN_ID = re.compile(r"\b(?:resp|conv)_[A-Za-z0-9]+")
QUESTIONS = ("who was Solon", "what did Cleisthenes change", "why did Athens fight Sparta")


@dataclass
class Turn:
    token: str
    model_seconds: float
    sent_at: float | None = None
    ack_seconds: float | None = None  # None: no answer to the HTTP POST
    ack_status: int | None = None
    placeholder_at: float | None = None
    answered_at: float | None = None
    finished_at: float | None = None  # when the model's run ended, at the stand-in

    @property
    def channel(self) -> str:
        return "C" + self.token.upper()

    @property
    def user(self) -> str:
        return "U" + self.token.upper()

    @property
    def question(self) -> str:
        """What the user asks: the model's pace as a directive, the token, some words."""
        words = QUESTIONS[int(self.token[3:]) % len(QUESTIONS)]
        return f"[slow:{self.model_seconds:.3f}] {self.token} {words}?"

    @property
    def overhead(self) -> float | None:
        if self.answered_at is None or self.finished_at is None:
            return None
        return self.answered_at - self.finished_at

    @property
    def placeholder_seconds(self) -> float:
        if self.placeholder_at is None or self.sent_at is None:
            return float("inf")
        return self.placeholder_at - self.sent_at


def make_turns(series: str, count: int, model_seconds: list[float]) -> list[Turn]:
    """`count` turns of series `series` (one letter), with these model times."""
    return [Turn(f"zq{series}{index:04d}", model_seconds[index]) for index in range(count)]


class Observer:
    """Watches the Slack stand-in: when each turn's placeholder and finished answer appear."""

    def __init__(self, slack: SlackStandIn) -> None:
        self.slack = slack
        self.turns: dict[str, Turn] = {}
        self.answered = 0
        slack.on_call(self._seen)

    def follow(self, turns: list[Turn]) -> None:
        self.turns.update((turn.channel, turn) for turn in turns)

    def _seen(self, call: ApiCall) -> None:
        if not call.ok:
            return
        channel = str(call.args.get("channel") or call.response.get("channel") or "")
        turn = self.turns.get(channel)
        if turn is None:
            return
        if call.method == "chat.postMessage" and turn.placeholder_at is None:
            turn.placeholder_at = call.at
        ts = str(call.response.get("ts") or call.args.get("ts") or "")
        message = self.slack.messages.get((channel, ts))
        if turn.answered_at is not None or message is None or message.deleted:
            return
        if message.stream_open:
            return
        text = shown_text(message)
        if turn.token in text and "answer" in text.lower() and "thinking" not in text.lower():
            turn.answered_at = call.at
            self.answered += 1


def note_run_ends(openai: OpenAIStandIn, turns: list[Turn]) -> None:
    """Each turn's run end: the earliest completed response whose input holds its token."""
    by_token = {turn.token: turn for turn in turns}
    for job in openai.response_jobs.values():
        if job.finished_at is None or job.status != "completed":
            continue
        found = TOKEN.search(json.dumps(job.request.get("input")))
        turn = by_token.get(found.group(0).lower()) if found else None
        if turn is not None and (turn.finished_at is None or job.finished_at < turn.finished_at):
            turn.finished_at = job.finished_at


def openai_requests_per_turn(openai: OpenAIStandIn, first: int, turns: list[Turn]) -> list[float]:
    """Requests since index `first`, per turn: those naming its token, channel, response or
    conversation, plus an equal share of those naming none."""
    owner: dict[str, str] = {}
    for job in openai.response_jobs.values():
        found = TOKEN.search(json.dumps(job.request.get("input")))
        if found:
            owner[job.id] = found.group(0).lower()
            if job.conversation_id:
                owner[job.conversation_id] = found.group(0).lower()
    counts: Counter[str] = Counter()
    for request in openai.requests[first:]:
        token = _token_in(json.dumps(request.json) + " " + request.path, owner)
        counts[token or ""] += 1
    return _shares(counts, turns)


def slack_requests_per_turn(slack: SlackStandIn, first: int, turns: list[Turn]) -> list[float]:
    """Web API calls since index `first` (429s included), per turn, by channel."""
    channels = {turn.channel: turn.token for turn in turns}
    counts: Counter[str] = Counter()
    for call in slack.calls[first:]:
        channel = str(call.args.get("channel") or call.args.get("channel_id") or "")
        counts[channels.get(channel, "")] += 1
    return _shares(counts, turns)


def _token_in(text: str, owner: dict[str, str]) -> str | None:
    found = TOKEN.search(text)
    if found:
        return found.group(0).lower()
    for run_id in RUN_ID.findall(text):
        if run_id in owner:
            return owner[run_id]
    return None


def _shares(counts: Counter[str], turns: list[Turn]) -> list[float]:
    shared = counts.pop("", 0) / max(1, len(turns))
    return [counts[turn.token] + shared for turn in turns]
