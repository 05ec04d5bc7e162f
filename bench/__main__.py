"""`python -m bench` (what `make bench` runs): see bench/__init__.py, or `--help`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bench
from bench import machine, report
from bench.run import RATE_LIMITS, Plan, Results, run

DEFAULT_DEADLINE_SECONDS = 285


def parse(argv: list[str] | None = None) -> tuple[Plan, float, bool]:
    defaults = Plan()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(bench.__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--modes",
        nargs="*",
        default=list(defaults.modes),
        choices=["native", "edit", "off"],
        help="TUTOR_STREAMING modes to measure the bot in",
    )
    add(
        "--model-seconds",
        nargs="+",
        type=float,
        default=list(defaults.model_seconds),
        help="model times of the batches (each turn gets a random 0..jitter more)",
    )
    add("--turns", type=int, default=defaults.turns, help="turns per batch")
    add(
        "--spread",
        type=float,
        default=defaults.spread_seconds,
        help="seconds over which a batch's turns arrive",
    )
    add("--jitter", type=float, default=defaults.jitter, help="extra model time, up to")
    add(
        "--queued",
        type=float,
        default=defaults.queued_seconds,
        help="seconds a response stays queued at the OpenAI stand-in",
    )
    add("--no-classic", action="store_true", help="skip the classic loop")
    add(
        "--no-cluster",
        action="store_true",
        help="skip 2 web + 2 worker processes on a Redis Cluster",
    )
    add("--load-rate", type=float, default=defaults.load_rate, help="events a second")
    add("--load-turns", type=int, default=defaults.load_turns, help="0 skips the load")
    add("--load-model-seconds", type=float, default=defaults.load_model_seconds)
    add("--load-streaming", default=defaults.load_streaming, choices=["native", "edit", "off"])
    add(
        "--drain",
        type=float,
        default=defaults.drain_seconds,
        help="seconds after the last event's model time that answers may still take",
    )
    add("--concurrency", type=int, default=defaults.concurrency, help="TUTOR_CONCURRENCY")
    add(
        "--rate-limits",
        default=defaults.rate_limits,
        choices=list(RATE_LIMITS),
        help="Slack rate limits the stand-in enforces",
    )
    add("--seed", type=int, default=defaults.seed)
    add("--keep-logs", action="store_true", help="keep the bot processes' logs and say where")
    add(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_SECONDS,
        help="stop after this many seconds and print what was measured",
    )
    args = parser.parse_args(argv)
    plan = Plan(
        modes=tuple(args.modes),
        model_seconds=tuple(args.model_seconds),
        turns=args.turns,
        spread_seconds=args.spread,
        jitter=args.jitter,
        queued_seconds=args.queued,
        classic=not args.no_classic,
        cluster=not args.no_cluster,
        load_rate=args.load_rate,
        load_turns=args.load_turns,
        load_model_seconds=args.load_model_seconds,
        load_streaming=args.load_streaming,
        drain_seconds=args.drain,
        concurrency=args.concurrency,
        rate_limits=args.rate_limits,
        seed=args.seed,
    )
    return plan, args.deadline, args.keep_logs


def progress(started: float) -> Callable[[str], None]:
    def say(what: str) -> None:
        print(
            f"[{time.monotonic() - started:5.1f} s] measuring {what}", file=sys.stderr, flush=True
        )

    return say


async def measure(plan: Plan, deadline: float, results: Results, workdir: Path) -> str | None:
    """Run the phases within `deadline`; a reason when they did not all finish."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline):
            await run(plan, workdir, results, progress(started))
    except TimeoutError:
        return f"stopped at the {deadline:g} s deadline: the figures above are what was done"
    return None


def settings_line(plan: Plan) -> str:
    return (
        f"Model times {', '.join(f'{s:g}' for s in plan.model_seconds)} s (+0–{plan.jitter:g} s "
        f"each, +{plan.queued_seconds:g} s queued), {plan.turns} turns a batch arriving over "
        f"{plan.spread_seconds:g} s; Slack rate limits: {plan.rate_limits}; "
        f"TUTOR_CONCURRENCY={plan.concurrency}; backend: responses; one bot process"
        + (", except the rows of 2 web + 2 workers on Redis Cluster." if plan.cluster else ".")
    )


def main(argv: list[str] | None = None) -> int:
    plan, deadline, keep_logs = parse(argv)
    results = Results()
    stopped: str | None = None
    workdir = Path(tempfile.mkdtemp(prefix="tutor-bench-"))
    try:
        stopped = asyncio.run(measure(plan, deadline, results, workdir))
    except (KeyboardInterrupt, asyncio.CancelledError):
        stopped = "interrupted: the figures above are what was done"
    finally:
        if keep_logs:
            results.problems.append(f"the bot processes' logs are in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"Machine: {machine.describe()}")
    print(settings_line(plan))
    print()
    print(report.table(report.rows(results, plan)))
    for note in report.notes(results, plan):
        print(f"- {note}")
    if stopped:
        print(f"- {stopped}")
    return 0 if not stopped else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
