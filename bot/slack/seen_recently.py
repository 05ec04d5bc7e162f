"""A small memory, in this process, of keys seen lately.

For the few things that must happen once per Slack message while Redis, which normally
remembers such things, is away. Bounded in size and in age, so it never grows.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class SeenRecently:
    """Remembers keys for `max_age_seconds`, at most `max_keys` of them (oldest go first)."""

    def __init__(
        self,
        *,
        max_keys: int = 10_000,
        max_age_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_keys = max_keys
        self._max_age = max_age_seconds
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # oldest first

    def first_time(self, *keys: str) -> bool:
        """True unless one of `keys` was seen lately; remembers all of them from now on."""
        now = self._clock()
        self._forget_before(now - self._max_age)
        seen = any(key in self._seen for key in keys)
        for key in keys:
            self._seen.setdefault(key, now)
        while len(self._seen) > self._max_keys:
            self._seen.popitem(last=False)
        return not seen

    def __len__(self) -> int:
        return len(self._seen)

    def _forget_before(self, cutoff: float) -> None:
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if at >= cutoff:
                return
            del self._seen[oldest]
