"""Token usage in words for Slack: the `/tutor usage` report and the line under an answer.

Only rendering: the figures come from `bot.tutor.ledger`. Figures are token counts; a cost
is shown where the turns were priced (TUTOR_PRICES), and figures that include the bot's own
estimates (the model server reported none) say so.
"""

from __future__ import annotations

import datetime

from bot.tutor.ledger import UsageReport
from bot.tutor.prices import format_usd
from bot.tutor.usage import UsageFigures

ESTIMATES_NOTE = (
    "_Figures marked “estimated” include counts the bot made itself where the model server "
    "reported none._"
)


def usage_report(report: UsageReport, *, admin: bool) -> str:
    """The asker's figures today and this month (UTC), and the workspace's for admins."""
    today = f"Today ({report.day}, UTC)"
    month = f"This month ({_month_name(report.month)})"
    lines = [
        "*Your usage*",
        f"• {today}: {_summary(report.user_today)}",
        f"• {month}: {_summary(report.user_month)}",
    ]
    shown = [report.user_today, report.user_month]
    if admin:
        lines += [
            "*This workspace* (you see it as an admin)",
            f"• {today}: {_summary(report.workspace_today)}",
            f"• {month}: {_summary(report.workspace_month)}",
        ]
        shown += [report.workspace_today, report.workspace_month]
    if any(figures.includes_estimates for figures in shown):
        lines.append(ESTIMATES_NOTE)
    return "\n".join(lines)


def usage_line(figures: UsageFigures) -> str:
    """One turn's tokens (and cost), for the context line under its answer."""
    if figures.unreported_turns:
        return "Tokens: not reported by the model server"
    parts = [
        f"Tokens: {figures.input_tokens:,} in"
        + (f" ({figures.cached_tokens:,} cached)" if figures.cached_tokens else ""),
        f"{figures.output_tokens:,} out",
    ]
    if figures.priced_turns:
        parts.append(f"≈ {format_usd(figures.cost_nanousd)}")
    line = " · ".join(parts)
    return f"{line} (estimated)" if figures.includes_estimates else line


def _summary(figures: UsageFigures) -> str:
    if not figures.turns:
        return "no questions yet"
    questions = _plural(figures.turns, "question")
    cached = f" ({figures.cached_tokens:,} cached)" if figures.cached_tokens else ""
    text = (
        f"{figures.total_tokens:,} tokens in {questions}: "
        f"{figures.input_tokens:,} in{cached}, {figures.output_tokens:,} out"
    )
    if figures.priced_turns:
        text += f", ≈ {format_usd(figures.cost_nanousd)}"
    notes = []
    if figures.estimated_turns:
        notes.append(f"estimated for {_plural(figures.estimated_turns, 'question')}")
    if figures.unreported_turns:
        notes.append(f"not reported for {_plural(figures.unreported_turns, 'question')}")
    if figures.priced_turns and figures.unpriced_turns:
        notes.append(f"no price for {_plural(figures.unpriced_turns, 'question')}")
    return f"{text}; {', '.join(notes)}" if notes else text


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _month_name(month: str) -> str:
    """`2026-11` → `November 2026`."""
    try:
        return datetime.datetime.strptime(month, "%Y-%m").strftime("%B %Y")
    except ValueError:
        return month
