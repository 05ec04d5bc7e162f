"""Wiring: settings in, a running bot out. Nothing here does real work itself."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.backends.base import Backend
from bot.backends.factory import build_backend
from bot.settings import ConfigError, Settings
from bot.slack.assistant_threads import AssistantThreads
from bot.slack.background import BackgroundTasks
from bot.slack.client import make_session, make_web_client
from bot.slack.command_threads import CommandThreads
from bot.slack.edit_budget import EditBudget, StatusEdits
from bot.slack.http_server import make_web_app
from bot.slack.identity import BotIdentity
from bot.slack.listeners.actions import register_action_listeners
from bot.slack.listeners.assistant import register_assistant_listeners
from bot.slack.listeners.commands import register_command_listeners
from bot.slack.listeners.events import register_event_listeners
from bot.slack.listeners.forget import register_forget_shortcut
from bot.slack.listeners.recording import answer_not_recorded_with_503
from bot.slack.reply import SlackReplySurface
from bot.slack.socket_mode import close_socket_mode, connect_socket_mode
from bot.storage.connection import PATIENT_SECONDS, connect, is_reachable
from bot.storage.keys import Keys
from bot.storage.managed_server import ManagedRedis
from bot.turns.conversations import ConversationStore
from bot.turns.early_placeholder import EarlyPlaceholders
from bot.turns.engine import TurnEngine
from bot.turns.forget import ConversationForgetter
from bot.turns.intake import TurnIntake
from bot.turns.lease import ConversationLeases
from bot.turns.models import Turn
from bot.turns.queue import TurnQueue
from bot.turns.records import Journal, TurnStore
from bot.turns.retention import SECONDS_PER_DAY, RetentionSweep
from bot.turns.stops import StopRequests
from bot.turns.usage import UsageLedger
from bot.turns.worker import TurnWorker, WorkerSettings

log = logging.getLogger(__name__)

# Requests still in flight when the bot stops get this long (aiohttp's default is 60 s).
HTTP_SHUTDOWN_SECONDS = 5.0


@dataclass
class TutorBot:
    """One bot process: Redis, a backend, the turn machinery and the Slack app."""

    settings: Settings
    redis: Redis  # answers Slack's requests: fails fast
    patient_redis: Redis  # behind the ack: waits through short outages
    backend: Backend
    worker: TurnWorker
    web_client: AsyncWebClient
    bolt_app: AsyncApp
    background: BackgroundTasks
    identity: BotIdentity
    slack_session: aiohttp.ClientSession
    retention: RetentionSweep
    managed_redis: ManagedRedis | None = None
    _runner: web.AppRunner | None = field(default=None, init=False)
    _socket_handler: AsyncSocketModeHandler | None = field(default=None, init=False)

    @classmethod
    async def create(cls, settings: Settings) -> TutorBot:
        """Build everything from settings. Raises ConfigError for anything misconfigured."""
        settings.require_slack()
        managed = None
        redis_url = settings.redis_url
        if redis_url is None:
            managed = ManagedRedis(settings.data_dir)
            redis_url = await managed.start()
        # Slack's requests get a client that fails fast (Slack waits 3 s for the ack); the
        # turns behind the ack wait through a short Redis outage instead of failing.
        redis = connect(redis_url)
        patient_redis = connect(redis_url, patience_seconds=PATIENT_SECONDS)
        try:
            keys = Keys(settings.redis_prefix)
            backend = build_backend(settings, patient_redis, keys)
        except BaseException:
            await redis.aclose()
            await patient_redis.aclose()
            if managed is not None:
                await managed.stop()
            raise
        if not await is_reachable(redis):
            log.warning("Redis is not reachable yet; /healthz answers 503 until it is")
        assert settings.slack_bot_token is not None  # require_slack checked it
        slack_session = make_session()
        web_client = make_web_client(
            settings.slack_bot_token, settings.slack_api_url, session=slack_session
        )
        # A status edit Slack rate-limits is dropped rather than retried (edit_budget.py).
        status_client = make_web_client(
            settings.slack_bot_token,
            settings.slack_api_url,
            wait_out_rate_limits=False,
            session=slack_session,
        )
        engine = TurnEngine(
            backend,
            ConversationStore(patient_redis, keys, backend.name),
            poll_interval=settings.poll_interval,
            run_timeout=settings.run_timeout,
            usage=UsageLedger(patient_redis, keys),
            stops=StopRequests(patient_redis, keys),
        )

        # Shared by every process through Redis; the quick client: never wait out an outage.
        status_edits = StatusEdits(EditBudget(redis, keys), status_client)
        command_threads = CommandThreads(patient_redis, keys)

        def slack_surface(turn: Turn, journal: Journal) -> SlackReplySurface:
            return SlackReplySurface(
                web_client, turn, journal, status_edits, settings.streaming, command_threads
            )

        worker = TurnWorker(
            TurnQueue(patient_redis, keys),
            TurnStore(patient_redis, keys),
            ConversationLeases(patient_redis, keys, seconds=settings.lease_seconds),
            engine,
            slack_surface,
            WorkerSettings(
                consumer=settings.worker_name or socket.gethostname(),
                concurrency=settings.concurrency,
                lease_seconds=settings.lease_seconds,
                claim_every_seconds=min(5.0, settings.lease_seconds / 2),
            ),
        )
        background = BackgroundTasks()
        intake_queue = TurnQueue(redis, keys)

        async def busy() -> bool:
            """More conversations wait or are answered than this process has slots for."""
            return await intake_queue.unfinished() > settings.concurrency

        early = EarlyPlaceholders(redis, keys, slack_surface, busy)
        intake = TurnIntake(
            intake_queue,
            ConversationStore(redis, keys, backend.name),
            on_accepted=lambda accepted: background.spawn(early.show(accepted)),
        )
        # One way to forget a conversation, for Slack's requests and for the sweep.
        forgetter = ConversationForgetter(
            redis, keys, backend, ConversationLeases(redis, keys, seconds=settings.lease_seconds)
        )
        retention = RetentionSweep(
            patient_redis,
            keys,
            ConversationForgetter(
                patient_redis,
                keys,
                backend,
                ConversationLeases(patient_redis, keys, seconds=settings.lease_seconds),
            ),
            retention_seconds=settings.retention_days * SECONDS_PER_DAY,
        )
        identity = BotIdentity(web_client)
        bolt_app = AsyncApp(
            # Bolt's documented way for an app that authorizes itself: the client lends its
            # settings (URL, retries) to each request's client, `authorize` gives the token.
            # Bolt's own single-workspace authorization would call auth.test per request
            # until one succeeded; `identity` asks once, at start (see identity.py).
            client=make_web_client(None, settings.slack_api_url, session=slack_session),
            authorize=identity,
            signing_secret=settings.slack_signing_secret or "",
            logger=logging.getLogger("slack_bolt"),
            # Listeners record the turn before the ack: an acked message is never lost,
            # and one thread's messages are queued in the order Slack sent them.
            process_before_response=True,
        )
        assistant_threads = AssistantThreads(redis, keys)
        register_event_listeners(
            bolt_app,
            intake,
            background,
            assistant_threads,
            CommandThreads(redis, keys),
            thread_followups=settings.thread_followups,
        )
        register_assistant_listeners(bolt_app, assistant_threads, background)
        register_command_listeners(bolt_app, intake, forgetter, background)
        register_forget_shortcut(bolt_app, forgetter, CommandThreads(redis, keys), background)
        register_action_listeners(bolt_app, StopRequests(redis, keys), background)
        answer_not_recorded_with_503(bolt_app)
        return cls(
            settings,
            redis,
            patient_redis,
            backend,
            worker,
            web_client,
            bolt_app,
            background,
            identity,
            slack_session,
            retention,
            managed,
        )

    async def redis_ok(self) -> bool:
        return await is_reachable(self.redis)

    async def start_http(self, host: str = "0.0.0.0", port: int | None = None) -> int:
        """Answer queued turns and serve POST /slack/events and GET /healthz.

        Returns the port actually bound. Raises ConfigError when the port cannot be had or
        Slack refuses the bot token.
        """
        await self.identity.learn()
        wanted = self.settings.port if port is None else port
        secret = self.settings.slack_signing_secret or ""  # require_slack checked it
        self._runner = web.AppRunner(
            make_web_app(self.bolt_app, self.redis_ok, secret),
            shutdown_timeout=HTTP_SHUTDOWN_SECONDS,
        )
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, wanted).start()
        except OSError as error:
            raise ConfigError(_cannot_listen(wanted, error)) from None
        await self.worker.start()
        await self.retention.start()
        bound = self._runner.addresses[0][1]
        log.info("serving Slack over HTTP on port %d (POST /slack/events)", bound)
        return int(bound)

    async def start_socket_mode(self) -> None:
        """Answer queued turns and connect to Slack over Socket Mode (no public URL needed).

        Raises ConfigError when Slack refuses the bot or app token; retries an unreachable
        Slack until cancelled (`serve` cancels it when a stop is asked for).
        """
        assert self.settings.slack_app_token is not None
        await self.identity.learn()
        await self.worker.start()
        await self.retention.start()
        self._socket_handler = await connect_socket_mode(
            self.bolt_app, self.settings.slack_app_token
        )
        log.info("connected to Slack in Socket Mode")

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop taking events, let turns in flight finish, hand back the rest, release all.

        A handed-back turn keeps its placeholder and is finished by the next process.
        """
        if self._socket_handler is not None:
            await close_socket_mode(self._socket_handler)
        if self._runner is not None:
            await self._runner.cleanup()
        grace = self.settings.shutdown_grace if grace_seconds is None else grace_seconds
        ends = time.monotonic() + grace  # one grace for all that is in flight
        await self.identity.close()
        await self.retention.stop()
        await self.background.drain(grace)
        await self.worker.stop(max(0.0, ends - time.monotonic()))
        await self.slack_session.close()
        await self.backend.close()
        await self.redis.aclose()
        await self.patient_redis.aclose()
        if self.managed_redis is not None:
            await self.managed_redis.stop()


async def serve(settings: Settings, stop_requested: asyncio.Event) -> None:
    """Run the bot until `stop_requested` is set, also while it is still connecting."""
    bot = await TutorBot.create(settings)
    try:
        start = bot.start_socket_mode() if settings.socket_mode else bot.start_http()
        if await unless_stopped(start, stop_requested):
            await stop_requested.wait()
        log.info("stopping")
    finally:
        await bot.stop()


async def unless_stopped(work: Awaitable[object], stop: asyncio.Event) -> bool:
    """Await `work` unless `stop` is set first, which cancels it; True when it finished.

    Re-raises the error of `work`.
    """
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        return False
    task.result()
    return True


def _cannot_listen(port: int, error: OSError) -> str:
    """One plain line for a port the bot cannot listen on."""
    where = f"Port {port} (the PORT setting)"
    if error.errno == errno.EADDRINUSE:
        return f"{where} is already in use: stop what uses it or set PORT to a free port."
    if error.errno == errno.EACCES:
        return f"{where} needs privileges this user lacks: set PORT to a port above 1023."
    reason = (error.strerror or type(error).__name__).lower()
    return f"{where} cannot be used ({reason}): set PORT to another port."
