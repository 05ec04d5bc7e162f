"""Keeping placeholder status edits within Slack's `chat.update` limit (Tier 3, ~50/min per
workspace), across all of the bot's processes.

Status edits are cosmetic. Each workspace has one budget in Redis, shared by every process:
a token bucket (~40 edits a minute) refilled and taken in one Lua script, which a 429 on a
status edit pauses for the `Retry-After` Slack gave. A placeholder is also edited at most
once a second (remembered in the process answering it, only as long as that holds the next
edit back, so memory stays bounded). When the budget is spent or paused, the placeholder was
edited a moment ago, or Redis does not answer within half a second, the edit is skipped and
the next status replaces it. Answers never wait for this budget: they only count against it,
and the main client's 429 handler retries them honouring `Retry-After`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError

from bot.slack.answer_places import Block
from bot.slack.client import slack_error_code
from bot.slack.workspaces import WorkspaceClients
from bot.storage.keys import Keys
from bot.turns.models import Turn

log = logging.getLogger(__name__)

EDITS_PER_MINUTE = 40  # below Slack's ~50, leaving room for the answers themselves
BURST = 10
MIN_SECONDS_BETWEEN_EDITS = 1.0
# A status edit never waits longer than this for Redis: it is skipped instead.
REDIS_WAIT_SECONDS = 0.5
# Retry-After when a 429 carries none (slack_sdk assumes the same).
DEFAULT_RETRY_AFTER_SECONDS = 1.0

# KEYS[1]: the workspace's budget, a hash of tokens, updated (when last refilled) and
# paused_until. ARGV: mode, now, refill per second, burst, ttl, pause seconds. Modes:
# "take" a status edit's token (1 if allowed, else 0), "spend" one for an answer (may go
# into debt down to -burst, never refused), "pause" status edits until now + seconds.
# Times come from the callers' clocks; `updated` never moves back, so a process whose clock
# lags cannot refill the bucket twice. The key expires once a full bucket is what it holds.
_BUDGET_SCRIPT = """
local key = KEYS[1]
local mode = ARGV[1]
local now = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local state = redis.call('HMGET', key, 'tokens', 'updated', 'paused_until')
local tokens = tonumber(state[1]) or burst
local updated = tonumber(state[2]) or now
local paused_until = tonumber(state[3]) or 0
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
updated = math.max(now, updated)
local allowed = 0
if mode == 'take' then
  if now >= paused_until and tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
  end
elseif mode == 'spend' then
  tokens = math.max(tokens - 1, -burst)
elseif mode == 'pause' then
  paused_until = math.max(paused_until, now + tonumber(ARGV[6]))
end
redis.call('HSET', key, 'tokens', string.format('%.6f', tokens),
  'updated', string.format('%.6f', updated), 'paused_until', string.format('%.6f', paused_until))
redis.call('EXPIRE', key, math.ceil(math.max(tonumber(ARGV[5]), paused_until - now)))
return allowed
"""


@dataclass
class EditBudget:
    """The workspaces' status-edit budgets (Redis), plus a minimum spacing per message.

    `redis` should fail fast (the quick client): a status edit must not wait out an outage.
    `clock` is wall time, shared by the processes on one Redis.
    """

    redis: Redis
    keys: Keys
    per_minute: float = EDITS_PER_MINUTE
    burst: float = BURST
    min_spacing: float = MIN_SECONDS_BETWEEN_EDITS
    redis_wait: float = REDIS_WAIT_SECONDS
    clock: Callable[[], float] = time.time
    # The last status edit of each message, oldest first.
    _last_edit: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _script: AsyncScript = field(init=False)

    def __post_init__(self) -> None:
        self._script = self.redis.register_script(_BUDGET_SCRIPT)

    async def allow_status_edit(self, team_id: str, message_key: str) -> bool:
        """True (and counted) when a status edit of this message may be sent now."""
        now = self.clock()
        self._forget_spaced_out(now)
        last = self._last_edit.get(message_key)
        if last is not None and now - last < self.min_spacing:
            return False
        if not await self._run("take", team_id, now):
            return False
        self._last_edit[message_key] = now
        self._last_edit.move_to_end(message_key)
        return True

    async def count_final_edit(self, team_id: str, message_key: str) -> None:
        """An answer edit goes out regardless; it still uses the workspace's budget."""
        self._last_edit.pop(message_key, None)
        await self._run("spend", team_id, self.clock())

    async def pause_status_edits(self, team_id: str, seconds: float) -> None:
        """Slack said 429: no status edit in this workspace, from any process, for `seconds`."""
        await self._run("pause", team_id, self.clock(), seconds)

    async def _run(self, mode: str, team_id: str, now: float, pause: float = 0.0) -> bool:
        """The script's verdict; False when Redis does not answer in time."""
        args = [mode, repr(now), self.per_minute / 60, self.burst, self._ttl_seconds, pause]
        try:
            async with asyncio.timeout(self.redis_wait):
                result = await self._script(keys=[self.keys.edit_budget(team_id)], args=args)
        except (RedisError, OSError, TimeoutError) as error:
            log.info("edit budget unavailable (%s): status edit skipped", type(error).__name__)
            return False
        return bool(result)

    @property
    def _ttl_seconds(self) -> int:
        """Long enough for a bucket in full debt to refill: after that, no key = full."""
        return max(1, math.ceil(2 * self.burst * 60 / self.per_minute))

    def _forget_spaced_out(self, now: float) -> None:
        """Drop the edits too old to hold any message back (the oldest come first)."""
        while self._last_edit:
            oldest = next(iter(self._last_edit.values()))
            if now - oldest < self.min_spacing:
                return
            self._last_edit.popitem(last=False)


class StatusEdits:
    """A placeholder's status edits, within the budget, sent with a client that does not wait
    out a 429 (bot.slack.client): a rate-limited edit is dropped and pauses the workspace's
    status edits for `Retry-After`, in every process, while answers go on."""

    def __init__(self, budget: EditBudget, clients: WorkspaceClients) -> None:
        self._budget = budget
        self._clients = clients  # per workspace (OAuth: each has its own bot token)

    async def edit(self, turn: Turn, ts: str, text: str, blocks: list[Block]) -> bool:
        """Edit the placeholder if the budget allows; True when the edit was shown."""
        if not await self._budget.allow_status_edit(turn.team_id, ts):
            return False
        try:
            await self._clients.for_team(turn.team_id).chat_update(
                channel=turn.channel_id, ts=ts, text=text, blocks=blocks
            )
        except SlackApiError as error:
            context = turn.log_context()
            if error.response is not None and error.response.status_code == 429:
                seconds = retry_after_seconds(error.response.headers)
                await self._budget.pause_status_edits(turn.team_id, seconds)
                log.info("rate limited: status edits paused %.0f s %s", seconds, context)
            else:
                log.warning("status edit failed (%s) %s", slack_error_code(error), context)
            return False
        return True

    async def count_final_edit(self, team_id: str, ts: str) -> None:
        """The answer replaces the placeholder: it counts against the budget, unrefused."""
        await self._budget.count_final_edit(team_id, ts)


def retry_after_seconds(headers: Mapping[str, Any]) -> float:
    """Slack's `Retry-After` (seconds), whatever the header's case; 1 s when missing."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                break
    return DEFAULT_RETRY_AFTER_SECONDS
