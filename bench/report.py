"""The one table: each figure of the bot beside the classic loop's, the ratio, the target."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench.run import CLUSTER, Batch, Load, Plan, Results
from bench.stats import Spread, count, kilobytes, milliseconds, spread

OVERHEAD_STREAMING_TARGET = 0.060
ACK_TARGET = 0.100
PLACEHOLDER_TARGET = 2.0
KB_PER_TURN_TARGET = 50.0
STREAMING_REQUEST_SHARE = 1 / 3
HEADER = ("figure", "the bot", "classic loop", "bot ÷ classic", "target", "verdict")


@dataclass(frozen=True)
class Row:
    figure: str
    bot: str
    classic: str = "–"
    ratio: str = "–"
    target: str = "–"
    verdict: str = "–"


def pair(value: Spread | None, unit: Callable[[float], str]) -> str:
    """'median / tail' in the unit; the tail's name is in the row's heading."""
    if value is None:
        return "no samples"
    return f"{unit(value.median)} / {unit(value.tail)}"


def ratio(bot: Spread | None, classic: Spread | None) -> str:
    if bot is None or classic is None or classic.median == 0:
        return "–"
    return f"{bot.median / classic.median:.2f}×"


def at_most(value: float, limit: float, unit: Callable[[float], str]) -> str:
    if math.isinf(value):
        return "missed"
    return "met" if value <= limit else f"missed by {unit(value - limit)}"


def tail_label(*values: Spread | None) -> str:
    names = {v.tail_name for v in values if v is not None}
    return "p99" if names == {"p99"} else "max"


def overhead(batches: list[Batch]) -> Spread | None:
    return spread(t.overhead for b in batches for t in b.turns if t.overhead is not None)


def per_turn(batch: Batch | None, which: str) -> Spread | None:
    if batch is None:
        return None
    return spread(batch.openai_per_turn if which == "openai" else batch.slack_per_turn)


def find(results: Results, who: str, seconds: float | None = None) -> list[Batch]:
    return [
        b
        for b in results.batches
        if b.who == who and (seconds is None or b.model_seconds == seconds)
    ]


def overhead_row(results: Results, mode: str) -> Row:
    bot, classic = overhead(find(results, mode)), overhead(find(results, "classic"))
    if mode == "off":
        target = "≤ the classic loop's median"
        verdict = (
            at_most(bot.median, classic.median, milliseconds) if bot and classic else "not measured"
        )
    else:
        target = f"median ≤ {milliseconds(OVERHEAD_STREAMING_TARGET)}"
        verdict = (
            at_most(bot.median, OVERHEAD_STREAMING_TARGET, milliseconds) if bot else "not measured"
        )
    return Row(
        f"run end → answer shown, TUTOR_STREAMING={mode} (median / {tail_label(bot, classic)})",
        pair(bot, milliseconds),
        pair(classic, milliseconds),
        ratio(bot, classic),
        target,
        verdict,
    )


def requests_row(results: Results, mode: str, seconds: float, which: str) -> Row:
    bot_batch = next(iter(find(results, mode, seconds)), None)
    classic_batch = next(iter(find(results, "classic", seconds)), None)
    bot, classic = per_turn(bot_batch, which), per_turn(classic_batch, which)
    name = "OpenAI" if which == "openai" else "Slack"
    target = verdict = "–"
    if which == "openai" and classic is not None:
        share = 1.0 if mode == "off" else STREAMING_REQUEST_SHARE
        limit = classic.median * share
        target = f"≤ {count(limit)} ({'the classic' if share == 1 else '⅓ of the classic'})"
        verdict = at_most(bot.median, limit, count) if bot else "not measured"
    return Row(
        f"{name} requests per turn, {seconds:g} s runs, {mode} "
        f"(median / {tail_label(bot, classic)})",
        pair(bot, count),
        pair(classic, count),
        ratio(bot, classic),
        target,
        verdict,
    )


def load_rows(load: Load, plan: Plan) -> list[Row]:
    turns = load.turns
    where = f"{plan.load_rate:g}/s, {plan.load_turns:,} turns of {plan.load_model_seconds:g} s"
    acks = spread(t.ack_seconds if t.ack_seconds is not None else math.inf for t in turns)
    placeholders = spread(t.placeholder_seconds for t in turns)
    answered = sum(t.answered_at is not None for t in turns)
    no_ack = sum(t.ack_seconds is None for t in turns)
    no_placeholder = sum(math.isinf(t.placeholder_seconds) for t in turns)
    growth_kb = max(0, load.peak_kb - load.baseline_kb)
    per_turn_kb = growth_kb / load.peak_in_flight if load.peak_in_flight else math.inf
    return [
        Row(
            f"ack of /slack/events at {where} (median / {tail_label(acks)})",
            pair(acks, milliseconds) + (f" ({no_ack:,} never)" if no_ack else ""),
            target=f"p99 ≤ {milliseconds(ACK_TARGET)}",
            verdict=at_most(acks.tail, ACK_TARGET, milliseconds) if acks else "not measured",
        ),
        Row(
            f"event sent → placeholder posted (median / {tail_label(placeholders)})",
            pair(placeholders, milliseconds)
            + (f" ({no_placeholder:,} never)" if no_placeholder else ""),
            target=f"p99 ≤ {milliseconds(PLACEHOLDER_TARGET)}",
            verdict=at_most(placeholders.tail, PLACEHOLDER_TARGET, milliseconds)
            if placeholders
            else "not measured",
        ),
        Row(
            f"turns answered, at most {plan.load_model_seconds + plan.drain_seconds:g} s "
            "after the last event",
            f"{answered:,} of {len(turns):,}",
            target="all",
            verdict="met"
            if answered == len(turns)
            else f"missed by {len(turns) - answered:,} turns",
        ),
        Row(
            f"peak memory per in-flight turn ({load.peak_in_flight:,} in flight, "
            f"RSS +{growth_kb / 1024:,.1f} MB)",
            kilobytes(per_turn_kb),
            target=f"< {kilobytes(KB_PER_TURN_TARGET)}",
            verdict="met"
            if per_turn_kb < KB_PER_TURN_TARGET
            else f"missed by {kilobytes(per_turn_kb - KB_PER_TURN_TARGET)}",
        ),
    ]


def cluster_rows(results: Results, plan: Plan) -> list[Row]:
    """2 web + 2 workers on a Redis Cluster beside one process on one Redis (phase 1's batch
    of the same model time and streaming mode): the "classic loop" column holds the latter."""
    seconds, mode = plan.model_seconds[0], plan.cluster_streaming
    cluster = next(iter(find(results, CLUSTER, seconds)), None)
    single = next(iter(find(results, mode, seconds)), None)
    where = f"2 web + 2 workers on Redis Cluster (beside: one process), {seconds:g} s runs"
    cluster_overhead, single_overhead = (
        overhead([cluster] if cluster else []),
        overhead([single] if single else []),
    )
    cluster_placed = placeholder_spread(cluster)
    single_placed = placeholder_spread(single)
    answered = f" ({cluster.unanswered} unanswered)" if cluster and cluster.unanswered else ""
    return [
        Row(
            f"run end → answer shown, {where}, {mode} "
            f"(median / {tail_label(cluster_overhead, single_overhead)})",
            pair(cluster_overhead, milliseconds) + answered,
            pair(single_overhead, milliseconds),
            ratio(cluster_overhead, single_overhead),
            f"median ≤ {milliseconds(OVERHEAD_STREAMING_TARGET)}",
            at_most(cluster_overhead.median, OVERHEAD_STREAMING_TARGET, milliseconds)
            if cluster_overhead and not answered
            else "not measured",
        ),
        Row(
            f"event sent → placeholder posted, {where} "
            f"(median / {tail_label(cluster_placed, single_placed)})",
            pair(cluster_placed, milliseconds),
            pair(single_placed, milliseconds),
            ratio(cluster_placed, single_placed),
            f"p99 ≤ {milliseconds(PLACEHOLDER_TARGET)}",
            at_most(cluster_placed.tail, PLACEHOLDER_TARGET, milliseconds)
            if cluster_placed
            else "not measured",
        ),
    ]


def placeholder_spread(batch: Batch | None) -> Spread | None:
    if batch is None:
        return None
    return spread(t.placeholder_seconds for t in batch.turns)


def rows(results: Results, plan: Plan) -> list[Row]:
    found: list[Row] = []
    for mode in plan.modes:
        found.append(overhead_row(results, mode))
        for which in ("openai", "slack"):
            for seconds in plan.model_seconds:
                found.append(requests_row(results, mode, seconds, which))
    if plan.cluster and find(results, CLUSTER):
        found.extend(cluster_rows(results, plan))
    if results.load is not None:
        found.extend(load_rows(results.load, plan))
    return found


def table(found: list[Row]) -> str:
    """The figures as a Markdown table."""
    return markdown(
        HEADER, [(r.figure, r.bot, r.classic, r.ratio, r.target, r.verdict) for r in found]
    )


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, its columns aligned for the terminal."""
    cells = [header, *rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)


def notes(results: Results, plan: Plan) -> list[str]:
    """What a reader needs to trust the figures: unanswered turns, 429s, the bench's own lag."""
    found: list[str] = []
    for batch in results.batches:
        if batch.unanswered or batch.rate_limited:
            found.append(
                f"{batch.who}, {batch.model_seconds:g} s runs: {batch.unanswered} of "
                f"{len(batch.turns)} unanswered, {batch.rate_limited} calls answered 429"
            )
    load = results.load
    if load is not None:
        rate = len(load.turns) / load.send_seconds if load.send_seconds else 0
        lag = load.loop_lag
        found.append(
            f"load: sent at {rate:.1f}/s; {load.rate_limited:,} Slack calls answered 429; "
            f"the bot logged {load.bot_warnings:,} warnings or errors"
            + (f"; the benchmark's own event loop lagged {milliseconds(lag.median)} median, "
               f"{milliseconds(lag.tail)} {lag.tail_name}" if lag else "")
        )  # fmt: skip
    found.extend(results.problems)
    return found
