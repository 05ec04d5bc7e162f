"""Keeping placeholder status edits within Slack's `chat.update` limit (Tier 3, ~50/min).

Status edits are cosmetic: when a workspace's budget is spent, or a placeholder was edited
less than a second ago, the edit is skipped and the next status replaces it. The final
answer never waits for this budget (the client's 429 handler honours `Retry-After`).
A message's last edit is remembered only as long as it still holds the next one back, so
memory stays bounded however many turns a long-running process streams.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

EDITS_PER_MINUTE = 40  # below Slack's ~50, leaving room for the answers themselves
BURST = 10
MIN_SECONDS_BETWEEN_EDITS = 1.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class EditBudget:
    """Token buckets per workspace, plus a minimum spacing per message."""

    per_minute: float = EDITS_PER_MINUTE
    burst: float = BURST
    min_spacing: float = MIN_SECONDS_BETWEEN_EDITS
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    # The last status edit of each message, oldest first.
    _last_edit: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def allow_status_edit(self, team_id: str, message_key: str) -> bool:
        """True (and counted) when a status edit of this message may be sent now."""
        now = self.clock()
        self._forget_spaced_out(now)
        last = self._last_edit.get(message_key)
        if last is not None and now - last < self.min_spacing:
            return False
        bucket = self._refill(team_id, now)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        self._last_edit[message_key] = now
        self._last_edit.move_to_end(message_key)
        return True

    def count_final_edit(self, team_id: str, message_key: str) -> None:
        """An answer edit goes out regardless; it still uses the workspace's budget."""
        bucket = self._refill(team_id, self.clock())
        bucket.tokens = max(bucket.tokens - 1, -self.burst)
        self._last_edit.pop(message_key, None)

    def _forget_spaced_out(self, now: float) -> None:
        """Drop the edits too old to hold any message back (the oldest come first)."""
        while self._last_edit:
            oldest = next(iter(self._last_edit.values()))
            if now - oldest < self.min_spacing:
                return
            self._last_edit.popitem(last=False)

    def _refill(self, team_id: str, now: float) -> _Bucket:
        bucket = self._buckets.setdefault(team_id, _Bucket(self.burst, now))
        bucket.tokens = min(
            self.burst, bucket.tokens + (now - bucket.updated) * self.per_minute / 60
        )
        bucket.updated = now
        return bucket
