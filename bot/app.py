"""Wiring: settings in, a running bot out. Nothing here does real work itself."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from enum import StrEnum

import aiohttp
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_sdk.web.async_client import AsyncWebClient

from bot.backends.base import Backend
from bot.backends.factory import build_backend, course_library, make_model_client
from bot.backends.quiz_writer import build_quiz_writer
from bot.doctor.admin_notice import ShutdownNotice, workspace_of
from bot.doctor.at_start import StartChecks
from bot.metrics import Metrics
from bot.settings import BackendKind, ConfigError, Settings
from bot.slack.admins import WorkspaceAdmins
from bot.slack.agent_sessions import AgentSessions
from bot.slack.assistant_threads import AssistantThreads
from bot.slack.attachments import SlackAttachments
from bot.slack.background import BackgroundTasks
from bot.slack.client import make_session, make_web_client
from bot.slack.command_threads import CommandThreads
from bot.slack.edit_budget import EditBudget, StatusEdits
from bot.slack.home_publisher import HomePublisher
from bot.slack.http_server import make_web_app
from bot.slack.identity import BotIdentity
from bot.slack.installation_store import RedisInstallationStore
from bot.slack.listeners.actions import register_action_listeners
from bot.slack.listeners.agent_sessions import register_agent_session_listeners
from bot.slack.listeners.assistant import register_assistant_listeners
from bot.slack.listeners.commands import register_command_listeners
from bot.slack.listeners.events import register_event_listeners
from bot.slack.listeners.feedback import register_feedback_listeners
from bot.slack.listeners.forget import register_forget_shortcut
from bot.slack.listeners.home import register_home_listeners
from bot.slack.listeners.quiz import QuizCommand, register_quiz_listeners
from bot.slack.listeners.recording import (
    Delivery,
    MessageRecording,
    answer_not_recorded_with_503,
)
from bot.slack.listeners.reveal import register_reveal_listeners
from bot.slack.listeners.teaching import register_teaching_listeners
from bot.slack.listeners.uninstall import register_uninstall_listeners
from bot.slack.listeners.usage_command import UsageCommand
from bot.slack.materials_desk import MaterialsDesk
from bot.slack.oauth import InstallationAuthorize, build_oauth_flow
from bot.slack.oauth_state import RedisStateStore
from bot.slack.quiz_desk import QuizDesk
from bot.slack.refusals import RefusalNotices
from bot.slack.reply import SlackReplySurface
from bot.slack.socket_mode import close_socket_mode, connect_socket_mode
from bot.slack.workspaces import (
    InstallationTokens,
    InstalledWorkspaces,
    OneWorkspace,
    WorkspaceClients,
)
from bot.storage.connection import PATIENT_SECONDS, connect, is_reachable
from bot.storage.keys import Keys
from bot.storage.managed_server import ManagedRedis
from bot.turns.conversations import ConversationStore
from bot.turns.early_placeholder import EarlyPlaceholders
from bot.turns.engine import TurnEngine
from bot.turns.forget import ConversationForgetter
from bot.turns.guards import DoorPolicy, Limits
from bot.turns.intake import TurnIntake
from bot.turns.lease import ConversationLeases
from bot.turns.models import Turn
from bot.turns.post_lanes import PostLanes
from bot.turns.queue import TurnQueue
from bot.turns.records import Journal, TurnStore
from bot.turns.retention import SECONDS_PER_DAY, RetentionSweep
from bot.turns.stops import StopRequests
from bot.turns.worker import TurnWorker, WorkerSettings
from bot.turns.workspace_purge import WorkspacePurges
from bot.tutor.activity import LearnerActivity
from bot.tutor.budgets import DailyBudgetGate, DailyBudgets
from bot.tutor.courses import CourseStore, LearnerStore
from bot.tutor.feedback import FeedbackStore
from bot.tutor.home import HomeReader
from bot.tutor.ledger import UsageLedger
from bot.tutor.materials import CourseMaterials, CourseRef, MaterialStore
from bot.tutor.quiz_store import QuizScores, QuizStore
from bot.tutor.teaching import TurnTeacher

log = logging.getLogger(__name__)

# Requests still in flight when the bot stops get this long (aiohttp's default is 60 s).
HTTP_SHUTDOWN_SECONDS = 5.0


class Role(StrEnum):
    """What one process does; any number of each may share one Redis."""

    BOTH = "both"  # receives Slack and answers turns (`python -m bot`)
    WEB = "web"  # receives Slack: records turns, posts their placeholders
    WORKER = "worker"  # answers the recorded turns


def course_materials(
    backend: Backend, redis: Redis, keys: Keys, forgetter: ConversationForgetter
) -> CourseMaterials | None:
    """Courses' materials in the backend's library (None: it keeps none); what the provider
    holds of a forgotten course goes through the forgetter's jobs, retried until done."""
    library = course_library(backend)
    if library is None:
        return None
    return CourseMaterials(MaterialStore(redis, keys), library, forgetter)


@dataclass
class TutorBot:
    """One bot process: Redis, a backend, the turn machinery and the Slack app."""

    settings: Settings
    redis: Redis  # answers Slack's requests: fails fast
    patient_redis: Redis  # behind the ack: waits through short outages
    backend: Backend
    worker: TurnWorker
    # SLACK_BOT_TOKEN: the one workspace's client; OAuth: a client without a token (Slack's
    # URL and retries only): use `slack_clients` for anything a workspace's bot says.
    web_client: AsyncWebClient
    bolt_app: AsyncApp
    background: BackgroundTasks
    identity: BotIdentity | None  # SLACK_BOT_TOKEN only: OAuth learns it per installation
    slack_session: aiohttp.ClientSession
    metrics: Metrics
    queue: TurnQueue  # the quick client's view of the turn queue (for /metrics)
    slack_clients: WorkspaceClients  # who posts for a workspace (its bot token)
    retention: RetentionSweep  # forgets conversations idle past TUTOR_RETENTION_DAYS
    oauth_flow: AsyncOAuthFlow | None = None  # OAuth: /slack/install, /slack/oauth_redirect
    purges: WorkspacePurges | None = None  # OAuth: data of workspaces that removed the bot
    managed_redis: ManagedRedis | None = None
    _runner: web.AppRunner | None = field(default=None, init=False)
    _socket_handler: AsyncSocketModeHandler | None = field(default=None, init=False)
    _start_checks: StartChecks | None = field(default=None, init=False)
    _purging: asyncio.Task[None] | None = field(default=None, init=False)

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
        options = {"cluster": settings.redis_cluster, "tls_verify": settings.redis_tls_verify}
        redis = connect(redis_url, **options)
        patient_redis = connect(redis_url, patience_seconds=PATIENT_SECONDS, **options)
        metrics = Metrics()
        try:
            keys = Keys(settings.redis_prefix, settings.redis_shards, settings.redis_cluster)
            model_client = make_model_client(settings, on_api_error=metrics.api_error)
            backend = build_backend(settings, patient_redis, keys, client=model_client)
        except BaseException:
            await redis.aclose()
            await patient_redis.aclose()
            if managed is not None:
                await managed.stop()
            raise
        if not await is_reachable(redis):
            log.warning("Redis is not reachable yet; /healthz answers 503 until it is")
        slack_session = make_session()
        web_client = make_web_client(
            settings.slack_bot_token,
            settings.slack_api_url,
            session=slack_session,
            on_error=metrics.api_error,
        )
        ledger = UsageLedger(
            patient_redis, keys, model=settings.tutor_model, prices=settings.prices
        )
        slack_clients: WorkspaceClients
        status_clients: WorkspaceClients
        if settings.oauth:
            # Each workspace's bot token comes from its installation (workspaces.py).
            tokens = InstallationTokens(RedisInstallationStore(patient_redis, keys))
            slack_clients = InstalledWorkspaces(
                tokens, settings.slack_api_url, session=slack_session, on_error=metrics.api_error
            )
            # A status edit Slack rate-limits is dropped rather than retried (edit_budget.py).
            status_clients = InstalledWorkspaces(
                tokens,
                settings.slack_api_url,
                session=slack_session,
                wait_out_rate_limits=False,
                on_error=metrics.api_error,
            )
        else:
            slack_clients = OneWorkspace(web_client)
            status_clients = OneWorkspace(
                make_web_client(
                    settings.slack_bot_token,
                    settings.slack_api_url,
                    wait_out_rate_limits=False,
                    session=slack_session,
                    on_error=metrics.api_error,
                )
            )
        engine = TurnEngine(
            backend,
            ConversationStore(patient_redis, keys, backend.name),
            poll_interval=settings.poll_interval,
            run_timeout=settings.run_timeout,
            usage=ledger,
            budgets=DailyBudgetGate(
                ledger,
                DailyBudgets(settings.daily_tokens_per_user, settings.daily_tokens_per_workspace),
            ),
            stops=StopRequests(patient_redis, keys),
            observer=metrics,
            teacher=TurnTeacher(
                CourseStore(patient_redis, keys),
                LearnerStore(patient_redis, keys),
                LearnerActivity(patient_redis, keys),
            ),
            attachments=SlackAttachments(
                slack_clients, slack_session, int(settings.max_attachment_mb * 1_000_000)
            ),
            images=settings.vision,
        )

        # Shared by every process through Redis; the quick client: never wait out an outage.
        status_edits = StatusEdits(EditBudget(redis, keys), status_clients)
        command_threads = CommandThreads(patient_redis, keys)
        # Cosmetic like status edits: the quick Redis client, never waiting out an outage.
        sessions = AgentSessions(
            settings.agent_sessions, slack_clients, status_clients, redis, keys
        )
        lanes = PostLanes()  # placeholders into one channel, people in turn

        def slack_surface(turn: Turn, journal: Journal) -> SlackReplySurface:
            return SlackReplySurface(
                slack_clients.for_team(turn.team_id),
                turn,
                journal,
                status_edits,
                settings.streaming,
                command_threads,
                sessions=sessions,
                show_usage=settings.show_usage,
                lanes=lanes,
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
        metrics.in_flight.set_function(lambda: worker.in_flight)
        background = BackgroundTasks()
        intake_queue = TurnQueue(redis, keys)

        async def message_recorded(turn: Turn, delivery: Delivery) -> bool:
            return await intake_queue.message_recorded(
                turn.channel_id, delivery.message_ts, turn.conversation_key
            )

        async def busy() -> bool:
            """More conversations wait or are answered than this process has slots for."""
            return await intake_queue.unfinished() > settings.concurrency

        early = EarlyPlaceholders(redis, keys, slack_surface, busy, lanes)
        intake = TurnIntake(
            intake_queue,
            ConversationStore(redis, keys, backend.name),
            on_accepted=lambda accepted: background.spawn(early.show(accepted)),
            policy=door_policy(settings),
            on_refused=lambda refused: metrics.question_refused(refused.reason.value),
        )
        # Bolt's documented way for an app that authorizes itself: the client lends its
        # settings (URL, retries) to each request's client, `authorize` gives the token.
        # Bolt's own authorizations would call auth.test per request (single workspace:
        # until one succeeded); `identity` asks once, at start (see identity.py), and OAuth
        # reads the workspace's installation (see oauth.py).
        # One way to forget a conversation, for Slack's requests, the sweep and the purge.
        forgetter = ConversationForgetter(
            redis, keys, backend, ConversationLeases(redis, keys, seconds=settings.lease_seconds)
        )
        patient_forgetter = ConversationForgetter(
            patient_redis,
            keys,
            backend,
            ConversationLeases(patient_redis, keys, seconds=settings.lease_seconds),
        )
        retention = RetentionSweep(
            patient_redis,
            keys,
            patient_forgetter,
            retention_seconds=settings.retention_days * SECONDS_PER_DAY,
        )
        materials = course_materials(backend, patient_redis, keys, patient_forgetter)
        bolt_client = make_web_client(None, settings.slack_api_url, session=slack_session)
        identity: BotIdentity | None = None
        installations: RedisInstallationStore | None = None
        oauth_flow: AsyncOAuthFlow | None = None
        purges: WorkspacePurges | None = None
        if settings.oauth:
            assert settings.slack_state_secret is not None
            installations = RedisInstallationStore(redis, keys)
            oauth_flow = build_oauth_flow(
                settings,
                installations,
                RedisStateStore(redis, keys, settings.slack_state_secret),
                bolt_client,
            )

            async def forget_conversation(conversation_key: str) -> None:
                await patient_forgetter.forget(conversation_key)

            async def forget_course(team_id: str, channel_id: str) -> None:
                if materials is not None:
                    await materials.forget(CourseRef(team_id, channel_id))

            purges = WorkspacePurges(
                patient_redis,
                keys,
                forget_conversation,
                forget_course=forget_course,
                backends=[kind.value for kind in BackendKind],
                retention_days=settings.retention_days,
            )
            authorize: InstallationAuthorize | BotIdentity = InstallationAuthorize(installations)
        else:
            identity = authorize = BotIdentity(web_client)
        bolt_app = AsyncApp(
            client=bolt_client,
            authorize=authorize,
            oauth_flow=oauth_flow,
            # Also given so that Bolt does not build default ones from SLACK_CLIENT_ID in
            # the environment (file stores), even though the flow's are the ones used.
            oauth_settings=oauth_flow.settings if oauth_flow is not None else None,
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
            refusal_notices=RefusalNotices(redis, keys, background),
            recording=MessageRecording(background, recorded=message_recorded),
        )
        admins = WorkspaceAdmins(slack_clients, settings.admins)
        courses, learners = CourseStore(redis, keys), LearnerStore(redis, keys)
        activity = LearnerActivity(redis, keys)
        home = HomePublisher(
            HomeReader(
                courses,
                learners,
                activity,
                FeedbackStore(redis, keys),
                UsageLedger(redis, keys),
                quizzes=QuizScores(redis, keys),
            ),
            admins,
        )
        # Before the assistant's app_home_opened: Bolt runs the first listener that matches,
        # and this one takes only the Home tab.
        register_home_listeners(bolt_app, home, learners, courses, background)
        register_assistant_listeners(bolt_app, assistant_threads, background)
        material_bytes = int(settings.material_max_mb * 1_000_000)
        teaching_commands = register_teaching_listeners(
            bolt_app,
            TurnTeacher(courses, learners, activity),
            courses,
            learners,
            admins,
            home,
            background,
            desk=(
                MaterialsDesk(materials, slack_session, max_bytes=material_bytes)
                if materials is not None
                else None
            ),
            max_material_bytes=material_bytes,
        )
        usage_command = UsageCommand(UsageLedger(redis, keys), admins)
        # Quizzes: written by the backend's model client, kept with the patient Redis client
        # behind the ack; clicks are stored on the quick one, before the ack.
        quiz_desk = QuizDesk(
            build_quiz_writer(settings, model_client),
            QuizStore(patient_redis, keys),
            ledger,
            tutor_instructions=settings.tutor_instructions,
            questions=settings.quiz_questions,
            seconds=settings.run_timeout,
        )
        register_command_listeners(
            bolt_app,
            intake,
            forgetter,
            background,
            usage=usage_command,
            quiz=QuizCommand(quiz_desk, intake, background),
            teaching=teaching_commands,
        )
        register_quiz_listeners(bolt_app, quiz_desk, QuizStore(redis, keys), background)
        register_reveal_listeners(bolt_app, intake, activity, background)
        register_forget_shortcut(bolt_app, forgetter, CommandThreads(redis, keys), background)
        register_action_listeners(bolt_app, StopRequests(redis, keys), background)
        register_feedback_listeners(bolt_app, FeedbackStore(redis, keys), background)
        register_agent_session_listeners(
            bolt_app,
            StopRequests(redis, keys),
            intake_queue,
            TurnStore(redis, keys),
            CommandThreads(redis, keys),
            sessions,
            background,
        )
        register_uninstall_listeners(bolt_app, installations, purges, slack_clients)
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
            metrics,
            intake_queue,
            slack_clients,
            retention,
            oauth_flow,
            purges,
            managed,
        )

    def check_in_background(self) -> StartChecks:
        """Run `python -m bot doctor`'s checks without holding up the start: a WARNING for
        each that fails; a model about to shut down is also told to admins once a day."""
        redis_url = self.settings.redis_url
        if self.managed_redis is not None:
            redis_url = self.managed_redis.url
        notice = ShutdownNotice(
            self.redis,
            Keys(
                self.settings.redis_prefix, self.settings.redis_shards, self.settings.redis_cluster
            ),
            self.web_client,
            self.settings.admins,
        )
        identity = self.identity

        async def the_workspace() -> str | None:
            """The one workspace of SLACK_BOT_TOKEN; None with many (OAuth): no DM then."""
            if identity is None:
                return None
            return await workspace_of(identity, self.web_client)

        self._start_checks = StartChecks(self.settings, notice, the_workspace, redis_url=redis_url)
        self._start_checks.start()
        return self._start_checks

    async def redis_ok(self) -> bool:
        return await is_reachable(self.redis)

    async def scrape(self, accept: str | None) -> tuple[bytes, str]:
        """GET /metrics: the gauges read from Redis are refreshed first (when it answers)."""

        async def refresh() -> None:
            try:
                async with asyncio.timeout(1.0):
                    self.metrics.queue_depth.set(await self.queue.unfinished())
            except (TimeoutError, RedisError):
                pass  # the last known depth stays; /healthz says Redis is away

        return await self.metrics.render(accept, refresh)

    def _web_app(self, with_slack: bool) -> web.Application:
        return make_web_app(
            self.bolt_app if with_slack else None,
            self.redis_ok,
            self.settings.slack_signing_secret or "",
            self.scrape,
            # Socket Mode too: the install pages need a public URL only while installing.
            oauth_flow=self.oauth_flow,
        )

    async def _start_slack_side(self) -> None:
        """SLACK_BOT_TOKEN: ask Slack who the bot is, once. OAuth: start deleting, when due,
        the data of workspaces that removed the bot.

        Raises ConfigError when Slack refuses the bot token.
        """
        if self.identity is not None:
            await self.identity.learn()
        if self.purges is not None and self._purging is None:
            self._purging = asyncio.create_task(self.purges.run_forever())
        await self.retention.start()

    async def start_http(
        self, host: str = "0.0.0.0", port: int | None = None, *, answer_turns: bool = True
    ) -> int:
        """Serve POST /slack/events, GET /healthz and /metrics, and (unless `answer_turns`
        is False: a web process) answer queued turns.

        Returns the port actually bound. Raises ConfigError when the port cannot be had or
        Slack refuses the bot token.
        """
        await self._start_slack_side()
        wanted = self.settings.port if port is None else port
        self._runner = web.AppRunner(self._web_app(True), shutdown_timeout=HTTP_SHUTDOWN_SECONDS)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, host, wanted).start()
        except OSError as error:
            raise ConfigError(_cannot_listen(wanted, error)) from None
        if answer_turns:
            await self.worker.start()
        bound = self._runner.addresses[0][1]
        log.info("serving Slack over HTTP on port %d (POST /slack/events)", bound)
        return int(bound)

    async def serve_health(self, host: str = "0.0.0.0", port: int | None = None) -> int | None:
        """Socket Mode: GET /healthz and /metrics on PORT for the platform, when PORT is free
        (Slack needs no port in this mode, so a taken one is only a warning)."""
        wanted = self.settings.port if port is None else port
        runner = web.AppRunner(self._web_app(False), shutdown_timeout=HTTP_SHUTDOWN_SECONDS)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, wanted).start()
        except OSError as error:
            await runner.cleanup()
            log.warning("no /healthz or /metrics: %s", _cannot_listen(wanted, error))
            return None
        self._runner = runner
        bound = int(runner.addresses[0][1])
        log.info("serving /healthz and /metrics on port %d", bound)
        return bound

    async def start_socket_mode(self, *, answer_turns: bool = True) -> None:
        """Connect to Slack over Socket Mode (no public URL needed) and (unless
        `answer_turns` is False: a web process) answer queued turns.

        Raises ConfigError when Slack refuses the bot or app token; retries an unreachable
        Slack until cancelled (`serve` cancels it when a stop is asked for).
        """
        assert self.settings.slack_app_token is not None
        await self._start_slack_side()
        await self.serve_health()
        if answer_turns:
            await self.worker.start()
        self._socket_handler = await connect_socket_mode(
            self.bolt_app, self.settings.slack_app_token
        )
        log.info("connected to Slack in Socket Mode")

    async def start_worker(self) -> None:
        """A worker process: answer queued turns; /healthz and /metrics on PORT if free.

        Raises ConfigError when Slack refuses the bot token.
        """
        await self._start_slack_side()
        await self.serve_health()
        await self.worker.start()
        log.info("answering turns (worker process)")

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop taking events, let turns in flight finish, hand back the rest, release all.

        A handed-back turn keeps its placeholder and is finished by the next process.
        """
        if self._start_checks is not None:
            await self._start_checks.stop()
        if self._socket_handler is not None:
            await close_socket_mode(self._socket_handler)
        if self._runner is not None:
            await self._runner.cleanup()
        grace = self.settings.shutdown_grace if grace_seconds is None else grace_seconds
        ends = time.monotonic() + grace  # one grace for all that is in flight
        if self._purging is not None:
            self._purging.cancel()
            await asyncio.gather(self._purging, return_exceptions=True)
        if self.identity is not None:
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


def door_policy(settings: Settings) -> DoorPolicy:
    """Who may ask, and how much (bot/turns/guards.py), as the settings say."""
    return DoorPolicy(
        allowed_teams=settings.allowed_teams,
        allowed_channels=settings.allowed_channels,
        allowed_users=settings.allowed_users,
        max_question_chars=settings.max_question_chars,
        limits=Limits(
            per_user_per_minute=settings.user_rate,
            queued_per_conversation=settings.max_queued_per_conversation,
            queued_per_user=settings.max_queued_per_user,
        ),
    )


async def serve(settings: Settings, stop_requested: asyncio.Event, role: Role = Role.BOTH) -> None:
    """Run the bot in `role` until `stop_requested` is set, also while it is connecting."""
    bot = await TutorBot.create(settings)
    try:
        if settings.start_checks:
            bot.check_in_background()
        answer_turns = role is Role.BOTH
        if role is Role.WORKER:
            start = bot.start_worker()
        elif settings.socket_mode:
            start = bot.start_socket_mode(answer_turns=answer_turns)
        else:
            start = bot.start_http(answer_turns=answer_turns)
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
