"""`python -m bot local`: try the bot without Slack, chatting with it in the terminal.

One process runs the bundled Slack stand-in, the bundled model stand-in (unless a model
server is configured) and the bot itself in HTTP mode, built exactly as for Slack. The chat
sends signed Events API requests to the bot's /slack/events and shows what the bot posts
to the Slack stand-in, so a local session goes through the same code as a Slack workspace.

Each session is a fresh DM with its own Redis keys (under `<TUTOR_REDIS_PREFIX>local:<id>:`):
two sessions on one Redis never take each other's messages, a deployed bot on the same
Redis is never touched, and the keys are removed when the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
from collections.abc import Coroutine
from typing import Any, TextIO

from redis.exceptions import RedisError

from bot.app import TutorBot
from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.local.slack_events import SlackEventSender
from bot.local.stdin_lines import StdinLines
from bot.local.terminal import DirectMessage, TerminalChat, Transcript
from bot.local.terminal_text import Style
from bot.settings import Settings
from bot.storage.connection import connect
from bot.storage.managed_server import ManagedRedis

log = logging.getLogger(__name__)

LOCAL_BOT_TOKEN = "xoxb-local-stand-in"
STAND_IN_API_KEY = "sk-local-stand-in"
LOCAL_USER = "ULOCALUSER"
STOP_GRACE_SECONDS = 0.5  # Ctrl-C should feel immediate; the session's keys go anyway
SETTLE_MARGIN_SECONDS = 30.0  # beyond TUTOR_RUN_TIMEOUT, for retries and the final edit
# The model stand-in is paced so the placeholder's status edits can be watched (the bot
# edits a placeholder at most once a second): about two seconds an answer.
STAND_IN_QUEUED_SECONDS = 0.4
STAND_IN_IN_PROGRESS_SECONDS = 1.2
STAND_IN_POLL_INTERVAL = 0.25


def uses_model_stand_in(settings: Settings) -> bool:
    """No model server configured (no OPENAI_API_KEY, no OPENAI_BASE_URL): the stand-in."""
    return not settings.openai_api_key and not settings.openai_base_url


def local_settings(
    settings: Settings, *, slack_url: str, redis_url: str, session: str, model_url: str | None
) -> Settings:
    """The bot's settings for a local session: Slack is the stand-in, HTTP mode, own keys."""
    changes: dict[str, Any] = {
        "slack_bot_token": LOCAL_BOT_TOKEN,
        "slack_signing_secret": secrets.token_hex(16),
        "slack_app_token": None,
        # One workspace: the stand-in's, whatever OAuth settings the environment holds.
        "slack_client_id": None,
        "slack_client_secret": None,
        "slack_state_secret": None,
        "slack_api_url": slack_url,
        "redis_url": redis_url,
        "redis_prefix": session_prefix(settings.redis_prefix, session),
    }
    if model_url is not None:
        changes.update(
            openai_api_key=STAND_IN_API_KEY,
            openai_base_url=model_url,
            poll_interval=STAND_IN_POLL_INTERVAL,
        )
    return dataclasses.replace(settings, **changes)


def session_prefix(prefix: str, session: str) -> str:
    return f"{prefix}local:{session}:"


def banner(settings: Settings, *, model_stand_in: bool) -> str:
    """What the person is talking to, said plainly (above all: a stand-in is no AI)."""
    if model_stand_in:
        model = (
            "  Model: the bundled scripted stand-in, not an AI: it answers "
            '"Answer <n>: <your question>".\n'
            "         Set OPENAI_API_KEY (and OPENAI_BASE_URL for another server) "
            "to use a real model."
        )
    else:
        server = settings.openai_base_url or "OpenAI"
        model = f"  Model: {settings.tutor_model} at {server} ({settings.backend} backend)"
    if settings.redis_url:
        redis = "  Redis: the one at REDIS_URL (this session's keys are removed at the end)"
    else:
        redis = f"  Redis: a private redis-server, data in {settings.data_dir}"
    return "\n".join(
        [
            "Tutor, local mode: you write to the bot as a Slack user, in a direct message.",
            "  Slack: the bundled Slack stand-in on this machine, not a real workspace; your",
            "         messages reach the bot as signed Slack events, as from Slack.",
            model,
            redis,
            "Type a question and press Enter. /help lists the commands, /quit or Ctrl-D ends.",
            "",
        ]
    )


async def run_local(settings: Settings, stop_requested: asyncio.Event, out: TextIO) -> None:
    """Run one local session until the chat ends or `stop_requested` is set (Ctrl-C).

    Everything started is stopped in reverse order, whatever happens: the bot first, then
    the session's keys, the private redis-server, the stand-ins.
    """
    session = secrets.token_hex(4)
    async with contextlib.AsyncExitStack() as stack:
        slack, model_url = await _start_stand_ins(stack, settings)
        redis_url = await _start_redis(stack, settings)
        local = local_settings(
            settings, slack_url=slack.base_url, redis_url=redis_url, session=session,
            model_url=model_url,
        )  # fmt: skip
        stack.push_async_callback(forget_session, redis_url, local.redis_prefix)
        bot = await TutorBot.create(local)
        stack.push_async_callback(bot.stop, STOP_GRACE_SECONDS)
        if stop_requested.is_set():
            return
        port = await bot.start_http(host="127.0.0.1", port=0)
        assert local.slack_signing_secret is not None
        events = SlackEventSender(
            f"http://127.0.0.1:{port}/slack/events",
            local.slack_signing_secret,
            team_id=slack.team_id,
            bot_user_id=slack.bot_user_id,
        )
        stack.push_async_callback(events.close)
        typed = os.isatty(0)  # else piped: echoed, and sent one at a time like a person
        transcript = Transcript(out, Style(ansi=out.isatty()), echo_input=not typed)
        transcript.plain(banner(settings, model_stand_in=model_url is not None))
        chat = TerminalChat(
            slack=slack,
            events=events,
            place=DirectMessage(channel="D" + session.upper(), user=LOCAL_USER),
            lines=StdinLines(),
            transcript=transcript,
            settle=lambda: wait_until_answered(bot, local.run_timeout + SETTLE_MARGIN_SECONDS),
            one_at_a_time=not typed,
        )
        if not await first_of(chat.run(), stop_requested):
            transcript.note("stopping")


async def _start_stand_ins(
    stack: contextlib.AsyncExitStack, settings: Settings
) -> tuple[SlackStandIn, str | None]:
    """The Slack stand-in, and the model stand-in's URL when no model server is configured."""
    slack = SlackStandIn(token=LOCAL_BOT_TOKEN)
    await slack.start()
    stack.push_async_callback(slack.stop)
    if not uses_model_stand_in(settings):
        return slack, None
    model = OpenAIStandIn(
        queued_seconds=STAND_IN_QUEUED_SECONDS, in_progress_seconds=STAND_IN_IN_PROGRESS_SECONDS
    )
    model_url = await model.start()
    stack.push_async_callback(model.stop)
    return slack, model_url


async def _start_redis(stack: contextlib.AsyncExitStack, settings: Settings) -> str:
    """REDIS_URL, else the private redis-server the bot runs for Slack too.

    Started here rather than by the bot, so it outlives the bot's shutdown long enough for
    the session's keys to be removed.
    """
    if settings.redis_url is not None:
        return settings.redis_url
    managed = ManagedRedis(settings.data_dir)
    redis_url = await managed.start()
    stack.push_async_callback(managed.stop)
    return redis_url


async def wait_until_answered(bot: TutorBot, timeout: float) -> None:
    """Until everything sent to the bot so far is answered; TimeoutError after `timeout`."""
    async with asyncio.timeout(timeout):
        await bot.background.drain(timeout)
        try:
            await bot.worker.wait_idle(timeout)
        except RedisError as error:  # cannot tell; the chat goes on regardless
            log.warning("could not check for answers on their way: %s", error)


async def first_of(work: Coroutine[Any, Any, None], stop_requested: asyncio.Event) -> bool:
    """Run `work` until it ends (True) or `stop_requested` is set first (False: cancelled)."""
    working = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop_requested.wait())
    await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finished = working.done()
    for task in (working, stopping):
        task.cancel()
    await asyncio.gather(working, stopping, return_exceptions=True)
    if finished:
        working.result()  # its error, if any, is the caller's
    return finished


async def forget_session(redis_url: str, prefix: str) -> None:
    """Remove the session's keys: they mean nothing once its stand-ins are gone."""
    client = connect(redis_url)
    try:
        batch: list[str] = []
        async for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)
    except RedisError as error:
        log.warning("could not remove the local session's keys: %s", type(error).__name__)
    finally:
        await client.aclose()


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)
