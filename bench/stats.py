"""Medians and tails of a handful of samples, and how they are printed."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# Below this many samples a p99 is just the maximum: call it that.
P99_MIN_SAMPLES = 100


@dataclass(frozen=True)
class Spread:
    """A median and a tail (p99 from 100 samples on, else the maximum)."""

    median: float
    tail: float
    count: int

    @property
    def tail_name(self) -> str:
        return "p99" if self.count >= P99_MIN_SAMPLES else "max"


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values (inf stands for "never happened")."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def spread(values: Iterable[float]) -> Spread | None:
    ordered = sorted(values)
    if not ordered:
        return None
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    tail = percentile(ordered, 0.99) if n >= P99_MIN_SAMPLES else ordered[-1]
    return Spread(median, tail, n)


def milliseconds(seconds: float) -> str:
    if math.isinf(seconds):
        return "never"
    value = seconds * 1000
    if abs(value) >= 10_000:
        return f"{seconds:,.1f} s"
    return f"{value:,.0f} ms"


def count(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:.1f}"


def kilobytes(value: float) -> str:
    return f"{value:,.1f} KB"
