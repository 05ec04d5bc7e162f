"""Usage in words: the /tutor usage report and the line under an answer."""

from __future__ import annotations

from bot.backends.base import Usage
from bot.slack.usage_text import usage_line, usage_report
from bot.tutor.ledger import UsageReport
from bot.tutor.usage import UsageFigures

REPORTED = UsageFigures.of_turn(Usage(1_200, 300, 1_000), cost_nanousd=1_000_000)
ESTIMATED = UsageFigures.of_turn(Usage(50, 10, estimated=True), cost_nanousd=None)
UNREPORTED = UsageFigures.of_turn(None, cost_nanousd=None)


def report(user: UsageFigures, workspace: UsageFigures) -> UsageReport:
    return UsageReport("2026-11-30", "2026-11", user, user, workspace, workspace)


def test_a_members_report_shows_only_their_figures() -> None:
    text = usage_report(report(REPORTED, REPORTED + REPORTED), admin=False)
    assert text.splitlines() == [
        "*Your usage*",
        "• Today (2026-11-30, UTC): 1,500 tokens in 1 question: 1,200 in (1,000 cached), "
        "300 out, ≈ $0.001",
        "• This month (November 2026): 1,500 tokens in 1 question: 1,200 in (1,000 cached), "
        "300 out, ≈ $0.001",
    ]


def test_an_admins_report_adds_the_workspace_and_says_what_is_estimated() -> None:
    workspace = REPORTED + ESTIMATED + UNREPORTED
    text = usage_report(report(UsageFigures(), workspace), admin=True)
    assert "• Today (2026-11-30, UTC): no questions yet" in text
    assert "*This workspace* (you see it as an admin)" in text
    assert (
        "1,560 tokens in 3 questions: 1,250 in (1,000 cached), 310 out, ≈ $0.001; "
        "estimated for 1 question, not reported for 1 question, no price for 1 question"
    ) in text
    assert text.endswith("where the model server reported none._")


def test_no_estimates_no_note() -> None:
    assert "estimate" not in usage_report(report(REPORTED, REPORTED), admin=True)


def test_the_line_under_an_answer() -> None:
    assert usage_line(REPORTED) == "Tokens: 1,200 in (1,000 cached) · 300 out · ≈ $0.001"
    assert usage_line(ESTIMATED) == "Tokens: 50 in · 10 out (estimated)"
    assert usage_line(UNREPORTED) == "Tokens: not reported by the model server"


async def test_usage_command_says_when_figures_cannot_be_read() -> None:
    from typing import Any

    from redis.exceptions import ConnectionError as RedisConnectionError

    from bot.slack.listeners.usage_command import UNAVAILABLE, UsageCommand

    class Unreachable:
        async def report(self, team_id: str, user_id: str) -> UsageReport:
            raise RedisConnectionError("gone")

    class NoAdmins:
        async def is_admin(self, team_id: str, user_id: str) -> bool:
            return False

    acks: list[dict[str, Any]] = []

    async def ack(**answer: Any) -> None:
        acks.append(answer)

    command = UsageCommand(Unreachable(), NoAdmins())  # type: ignore[arg-type]
    await command(ack, {"team_id": "T1", "user_id": "U1"}, None)  # type: ignore[arg-type]
    assert acks == [{"response_type": "ephemeral", "text": UNAVAILABLE}]
