"""`python -m bot`: serve Slack; `python -m bot --help`: subcommands and settings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from bot.app import serve
from bot.settings import ConfigError, Settings, settings_help

QUIET_LOGGERS = ("slack_bolt", "slack_sdk", "openai", "httpx", "aiohttp.access")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="An AI tutor in Slack: answers @mentions, direct messages and /tutor.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", title="subcommands", metavar="")
    commands.add_parser(
        "serve",
        help="serve Slack (the default): Socket Mode when SLACK_APP_TOKEN is set, else HTTP",
    )
    return parser


def configure_logging(level: str) -> None:
    """Our logs at `level`; the SDKs' only from WARNING (their DEBUG logs carry message text)."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


async def _run_until_signalled(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(settings, stop)


def main(argv: list[str] | None = None) -> int:
    build_parser().parse_args(argv)
    try:
        settings = Settings.load()
        configure_logging(settings.log_level)
        asyncio.run(_run_until_signalled(settings))
    except ConfigError as error:
        print(f"tutor-bot: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
