"""`python -m bot`: serve Slack (`web` and `worker` split it in two); `python -m bot local`:
try it in the terminal; `--help`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

from bot.app import Role, serve
from bot.doctor.report import doctor
from bot.local.local_mode import run_local
from bot.logs import configure_logging
from bot.settings import ConfigError, Settings, settings_help

GOING_LOCAL = (
    "No Slack credentials (no SLACK_BOT_TOKEN in the environment or .env): starting local mode, "
    "a terminal chat with the bot; README.md, 'Set up Slack', connects it to Slack."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="An AI tutor in Slack: answers @mentions, direct messages and /tutor.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", title="subcommands", metavar="")
    serve_command = commands.add_parser(
        "serve",
        help="serve Slack (the default): Socket Mode when SLACK_APP_TOKEN is set, else HTTP",
    )
    serve_command.add_argument(
        "--or-local",
        action="store_true",
        help="without SLACK_BOT_TOKEN, start local mode instead of explaining what is missing "
        "(what `make run` does)",
    )
    commands.add_parser(
        "web",
        help="receive Slack only: record questions and post their placeholders; `worker` "
        "processes answer them (scale each on its own, on one Redis)",
    )
    commands.add_parser(
        "worker",
        help="answer the questions `web` processes recorded (serves /healthz and /metrics "
        "on PORT when it is free)",
    )
    commands.add_parser(
        "local",
        help="try the bot without Slack: a chat in this terminal with the bot, run against "
        "the bundled Slack stand-in (and, without OPENAI_API_KEY, the bundled scripted model "
        "stand-in, which is not an AI)",
    )
    commands.add_parser(
        "doctor",
        help="check what can break a deployment (settings, Redis, the Slack token and its "
        "scopes, the model and its shutdown date, the backend's API): one line per check, "
        "exit code 0 only when all pass",
    )
    return parser


def local_log_level(level: str) -> str:
    """Local mode keeps the chat readable: warnings and errors only, unless debugging."""
    return level if level == "DEBUG" else "WARNING"


async def _run_until_signalled(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await run(stop)


def wants_local(args: argparse.Namespace, settings: Settings) -> bool:
    if args.command == "local":
        return True
    has_slack = bool(settings.slack_bot_token) or settings.oauth
    return args.command == "serve" and args.or_local and not has_slack


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "doctor":
        configure_logging("ERROR")  # the report is the output; the SDKs' warnings are not
        try:
            return asyncio.run(doctor(Settings.load, sys.stdout))
        except KeyboardInterrupt:
            return 130
    try:
        settings = Settings.load()
        if wants_local(args, settings):
            if args.command == "serve":
                print(GOING_LOCAL, flush=True)
            configure_logging(
                local_log_level(settings.log_level), settings.log_format, settings.secrets
            )
            asyncio.run(_run_until_signalled(lambda stop: run_local(settings, stop, sys.stdout)))
        else:
            configure_logging(settings.log_level, settings.log_format, settings.secrets)
            role = Role(args.command) if args.command in ("web", "worker") else Role.BOTH
            asyncio.run(_run_until_signalled(lambda stop: serve(settings, stop, role)))
    except ConfigError as error:
        print(f"tutor-bot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
