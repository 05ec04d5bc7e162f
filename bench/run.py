"""The benchmark's phases, against the stand-ins in this process; every wait is bounded.

1. For each TUTOR_STREAMING mode: a bot process, a few warm-up turns, then one batch of
   turns per model time (2 s and 10 s by default), arriving spread over a few seconds.
2. The classic loop, the same batches.
3. The load: a bot process, turns arriving at a steady rate with long runs, so that about
   rate × model time are in flight; its memory sampled from /proc.
4. Many machines: 2 `web` and 2 `worker` processes on a Redis Cluster of 3 masters (and 3
   replicas), the turn queue in TUTOR_REDIS_SHARDS=16 shards; one batch of the first model
   time, beside phase 1's one process on one Redis.

Each batch starts with Slack's rate-limit buckets full (a workspace quiet for a minute).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench.bot_process import BOT_TOKEN, SIGNING_SECRET, BotProcess
from bench.classic import ClassicLoop
from bench.redis_cluster import RedisCluster
from bench.redis_server import RedisServer
from bench.slack_side import BotAsker
from bench.stats import Spread, spread
from bench.turns import (
    Observer,
    Turn,
    make_turns,
    note_run_ends,
    openai_requests_per_turn,
    slack_requests_per_turn,
)
from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import (
    NON_MARKETPLACE_RATE_LIMITS,
    PUBLISHED_RATE_LIMITS,
    RateTier,
    SlackStandIn,
)
from bot.settings import Settings

RATE_LIMITS: dict[str, Mapping[str, RateTier] | None] = {
    "published": PUBLISHED_RATE_LIMITS,
    "non-marketplace": NON_MARKETPLACE_RATE_LIMITS,
    "off": None,
}
WARM_UP_TURNS = 3
WARM_UP_MODEL_SECONDS = 0.2
ANSWER_GRACE_SECONDS = 20  # beyond arrivals and model time, for a batch's answers
QUIET_SECONDS = 0.5  # no request for this long: a batch's trailing calls are done
QUIET_AT_MOST_SECONDS = 3
SAMPLE_SECONDS = 0.25
SERIES = "abcdefghijkmnopqrstuvwxy"
CLUSTER_SHARDS = 16
CLUSTER = "cluster"  # the `who` of the many-machines batch


@dataclass(frozen=True)
class Plan:
    modes: tuple[str, ...] = ("native", "edit", "off")
    model_seconds: tuple[float, ...] = (2.0, 10.0)
    turns: int = 20
    spread_seconds: float = 4.0
    jitter: float = 1.0  # the longest poll period measured: ticks land anywhere in it
    queued_seconds: float = 0.05
    classic: bool = True
    load_rate: float = 50.0
    load_turns: int = 1000
    load_model_seconds: float = 20.0
    load_streaming: str = "native"
    drain_seconds: float = 25.0
    concurrency: int = Settings().concurrency  # the bot's default
    rate_limits: str = "published"
    seed: int = 1
    cluster: bool = True  # phase 4: 2 web + 2 workers on a Redis Cluster
    cluster_streaming: str = "native"


@dataclass
class Batch:
    who: str  # a TUTOR_STREAMING mode, or "classic"
    model_seconds: float
    turns: list[Turn]
    openai_per_turn: list[float]
    slack_per_turn: list[float]
    rate_limited: int

    @property
    def unanswered(self) -> int:
        return sum(turn.answered_at is None for turn in self.turns)


@dataclass
class Load:
    turns: list[Turn]
    streaming: str
    send_seconds: float
    baseline_kb: int
    peak_kb: int
    peak_in_flight: int
    rate_limited: int
    loop_lag: Spread | None
    bot_warnings: int


@dataclass
class Results:
    batches: list[Batch] = field(default_factory=list)
    load: Load | None = None
    problems: list[str] = field(default_factory=list)


class Asker(Protocol):
    async def ask(self, turn: Turn) -> None: ...


class TakingTurns:
    """Slack's side towards several web processes behind one URL: each turn to the next."""

    def __init__(self, askers: list[BotAsker]) -> None:
        self._askers = askers
        self._next = 0

    async def ask(self, turn: Turn) -> None:
        asker = self._askers[self._next % len(self._askers)]
        self._next += 1
        await asker.ask(turn)


async def sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


class Lab:
    """Redis, the two stand-ins and the observer, for the whole run."""

    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.random = random.Random(plan.seed)
        self.series = iter(SERIES)
        self.redis = RedisServer(workdir)
        self.slack = SlackStandIn(token=BOT_TOKEN)
        self.openai = OpenAIStandIn(
            queued_seconds=plan.queued_seconds, in_progress_seconds=plan.model_seconds[0]
        )
        self.observer = Observer(self.slack)

    async def __aenter__(self) -> Lab:
        await asyncio.to_thread(self.redis.start)
        await self.slack.start()
        await self.openai.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with contextlib.suppress(Exception):
            await self.slack.stop()
        with contextlib.suppress(Exception):
            await self.openai.stop()
        self.redis.stop()

    # -- pieces ----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def bot(self, **settings: str) -> AsyncIterator[tuple[BotProcess, BotAsker]]:
        bot = BotProcess(
            slack_url=self.slack.base_url,
            openai_url=self.openai.base_url,
            redis_url=self.redis.url,
            workdir=self.workdir,
            TUTOR_CONCURRENCY=str(self.plan.concurrency),
            **settings,
        )
        asker = BotAsker(bot.events_url, SIGNING_SECRET)
        interrupted = False
        try:
            await bot.start()
            yield bot, asker
        except BaseException:
            interrupted = True
            raise
        finally:
            await asker.close()
            await bot.stop(at_once=interrupted)

    @contextlib.asynccontextmanager
    async def many_machines(self, **settings: str) -> AsyncIterator[Asker]:
        """2 `web` and 2 `worker` processes on a Redis Cluster of their own; an asker that
        sends each turn to the next web process."""
        cluster = RedisCluster(self.workdir / "cluster")
        cluster.workdir.mkdir(exist_ok=True)
        await asyncio.to_thread(cluster.start)
        common = {
            "slack_url": self.slack.base_url,
            "openai_url": self.openai.base_url,
            "redis_url": cluster.url,
            "workdir": self.workdir,
            "TUTOR_CONCURRENCY": str(self.plan.concurrency),
            "TUTOR_REDIS_CLUSTER": "on",
            "TUTOR_REDIS_SHARDS": str(CLUSTER_SHARDS),
        }
        prefix = f"bench-{uuid.uuid4().hex[:8]}:"  # one bot: every process shares its keys
        bots = [
            BotProcess(role=role, **common, TUTOR_REDIS_PREFIX=prefix, **settings)  # type: ignore[arg-type]
            for role in ("web", "web", "worker", "worker")
        ]
        askers = [BotAsker(bot.events_url, SIGNING_SECRET) for bot in bots[:2]]
        interrupted = False
        try:
            await asyncio.gather(*(bot.start() for bot in bots))
            yield TakingTurns(askers)
        except BaseException:
            interrupted = True
            raise
        finally:
            for asker in askers:
                await asker.close()
            await asyncio.gather(*(bot.stop(at_once=interrupted) for bot in bots))
            await asyncio.to_thread(cluster.stop)

    def model_times(self, count: int, seconds: float) -> list[float]:
        """`seconds` plus a random share of the jitter each, so poll ticks land anywhere."""
        return [seconds + self.random.uniform(0, self.plan.jitter) for _ in range(count)]

    def fresh_limits(self) -> None:
        self.slack.enforce_rate_limits(RATE_LIMITS[self.plan.rate_limits])

    async def wait_answered(self, turns: list[Turn], timeout: float) -> None:
        expected = self.observer.answered + sum(t.answered_at is None for t in turns)
        with contextlib.suppress(TimeoutError):
            await self.slack.wait_for(lambda: self.observer.answered >= expected, timeout)

    async def quiet(self) -> None:
        """Until neither stand-in heard anything for QUIET_SECONDS (at most a few seconds)."""
        deadline = time.monotonic() + QUIET_AT_MOST_SECONDS
        heard = -1
        while time.monotonic() < deadline:
            now_heard = len(self.slack.calls) + len(self.openai.requests)
            if now_heard == heard:
                return
            heard = now_heard
            await asyncio.sleep(QUIET_SECONDS)

    async def warm_up(self, asker: Asker) -> None:
        """A few short turns first: imports, connections and auth.test are not measured."""
        turns = make_turns(next(self.series), WARM_UP_TURNS, [WARM_UP_MODEL_SECONDS] * 3)
        self.observer.follow(turns)
        for turn in turns:
            await asker.ask(turn)
        await self.wait_answered(turns, ANSWER_GRACE_SECONDS)
        await self.quiet()

    # -- phases ----------------------------------------------------------------------------

    async def batch(self, who: str, asker: Asker, model_seconds: float) -> Batch:
        """`plan.turns` turns spread over `plan.spread_seconds`; their figures."""
        plan = self.plan
        turns = make_turns(
            next(self.series), plan.turns, self.model_times(plan.turns, model_seconds)
        )
        self.observer.follow(turns)
        self.fresh_limits()
        first_openai, first_slack = len(self.openai.requests), len(self.slack.calls)
        start = time.monotonic()
        for index, turn in enumerate(turns):
            await sleep_until(start + index * plan.spread_seconds / plan.turns)
            await asker.ask(turn)
        budget = plan.spread_seconds + model_seconds + plan.jitter + ANSWER_GRACE_SECONDS
        await self.wait_answered(turns, budget - (time.monotonic() - start))
        await self.quiet()
        note_run_ends(self.openai, turns)
        calls = self.slack.calls[first_slack:]
        return Batch(
            who,
            model_seconds,
            turns,
            openai_requests_per_turn(self.openai, first_openai, turns),
            slack_requests_per_turn(self.slack, first_slack, turns),
            sum(call.error == "ratelimited" for call in calls),
        )

    async def load(self, bot: BotProcess, asker: Asker) -> Load:
        """Turns at `load_rate` a second with long runs; memory and in-flight turns sampled."""
        plan = self.plan
        count = plan.load_turns
        turns = make_turns(
            next(self.series), count, self.model_times(count, plan.load_model_seconds)
        )
        self.observer.follow(turns)
        self.fresh_limits()
        first_slack = len(self.slack.calls)
        baseline = bot.memory_kb()
        peak = {"rss": baseline.get("VmRSS", 0), "in_flight": 0}
        lags: list[float] = []
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                before = time.monotonic()
                await asyncio.sleep(SAMPLE_SECONDS)
                lags.append(max(0.0, time.monotonic() - before - SAMPLE_SECONDS))
                in_flight = sum(t.sent_at is not None and t.answered_at is None for t in turns)
                peak["in_flight"] = max(peak["in_flight"], in_flight)
                peak["rss"] = max(peak["rss"], bot.memory_kb().get("VmRSS", 0))

        sampler = asyncio.create_task(sample())
        try:
            start = time.monotonic()
            for index, turn in enumerate(turns):
                await sleep_until(start + index / plan.load_rate)
                await asker.ask(turn)
            send_seconds = time.monotonic() - start
            await self.wait_answered(
                turns, plan.load_model_seconds + plan.jitter + plan.drain_seconds
            )
        finally:
            stop.set()
            await sampler
        peak_hwm = bot.memory_kb().get("VmHWM", 0)
        if peak_hwm > baseline.get("VmHWM", 0):
            peak["rss"] = max(peak["rss"], peak_hwm)
        calls = self.slack.calls[first_slack:]
        return Load(
            turns,
            plan.load_streaming,
            send_seconds,
            baseline.get("VmRSS", 0),
            peak["rss"],
            peak["in_flight"],
            sum(call.error == "ratelimited" for call in calls),
            spread(lags),
            bot.warnings(),
        )


async def run(plan: Plan, workdir: Path, results: Results, progress: Callable[[str], None]) -> None:
    """Every phase in turn, filling `results` as it goes (so a deadline keeps what was done)."""
    async with Lab(plan, workdir) as lab:
        for mode in plan.modes:
            progress(f"the bot with TUTOR_STREAMING={mode}")
            try:
                async with lab.bot(TUTOR_STREAMING=mode) as (_, asker):
                    await lab.warm_up(asker)
                    for seconds in plan.model_seconds:
                        results.batches.append(await lab.batch(mode, asker, seconds))
            except RuntimeError as error:
                results.problems.append(f"TUTOR_STREAMING={mode}: {error}")
        if plan.classic:
            progress("the classic loop")
            classic = ClassicLoop(
                slack_url=lab.slack.base_url, slack_token=BOT_TOKEN, openai_url=lab.openai.base_url
            )
            try:
                await lab.warm_up(classic)
                for seconds in plan.model_seconds:
                    results.batches.append(await lab.batch("classic", classic, seconds))
            finally:
                await classic.close()
        if plan.cluster:
            progress(
                "2 web + 2 worker processes on a Redis Cluster (3 masters), "
                f"TUTOR_STREAMING={plan.cluster_streaming}"
            )
            try:
                async with lab.many_machines(TUTOR_STREAMING=plan.cluster_streaming) as asker:
                    await lab.warm_up(asker)
                    results.batches.append(await lab.batch(CLUSTER, asker, plan.model_seconds[0]))
            except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                results.problems.append(f"many machines: {error}")
        if plan.load_turns:
            progress(
                f"the load: {plan.load_turns} turns at {plan.load_rate:g}/s, "
                f"{plan.load_model_seconds:g} s runs, TUTOR_STREAMING={plan.load_streaming}"
            )
            try:
                async with lab.bot(TUTOR_STREAMING=plan.load_streaming) as (bot, asker):
                    await lab.warm_up(asker)
                    await lab.quiet()
                    results.load = await lab.load(bot, asker)
            except RuntimeError as error:
                results.problems.append(f"load: {error}")
