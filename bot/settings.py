"""The bot's settings: read once from the environment (and `.env`), validated, passed down.

No other module reads the environment; everything it needs arrives through `Settings`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bot.logs import LogFormat
from bot.storage.connection import is_sentinel_url, parse_sentinel_url
from bot.turns.guards import DIRECT_MESSAGES
from bot.tutor.prices import PriceTable, parse_prices
from bot.tutor.quiz import MAX_QUESTIONS

DEFAULT_INSTRUCTIONS = (
    "You are a personal history tutor. Answer questions briefly, in three sentences or less."
)


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is meant for the person starting the bot."""


class BackendKind(StrEnum):
    RESPONSES = "responses"
    ASSISTANTS = "assistants"
    CHAT = "chat"


class TokenLimitField(StrEnum):
    """Which token-limit field the `chat` backend sends; local servers and OpenAI differ."""

    MAX_TOKENS = "max_tokens"
    MAX_COMPLETION_TOKENS = "max_completion_tokens"


class StreamingMode(StrEnum):
    """How a partial answer is shown while it is generated."""

    NATIVE = "native"  # Slack's chat.startStream in threads, placeholder edits elsewhere
    EDIT = "edit"  # always by editing the placeholder (throttled chat.update)
    OFF = "off"  # only the finished answer


class AgentSessionsMode(StrEnum):
    """Whether Slack's agent sessions (status, title, native Stop) are used."""

    AUTO = "auto"  # tried; a workspace where the app is no agent (not_authorized) is left out
    ON = "on"  # always used (failures are logged, never shown)
    OFF = "off"  # never used: the app is no agent


@dataclass(frozen=True)
class SettingSpec:
    """One environment variable: its name, default and what it means (for --help and README)."""

    env: str
    attr: str
    default: str | None
    help: str
    parse: Callable[[str], Any] = str
    secret: bool = False
    alias: str | None = None  # a former name, still read when `env` is unset (deprecated)


def _float(value: str) -> float:
    """A number; Python's own "could not convert string to float" is not for people."""
    try:
        number = float(value)
    except ValueError:
        raise ValueError("must be a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError("must be a number")
    return number


def _int(value: str, what: str = "a whole number") -> int:
    """A whole number; Python's own "invalid literal for int()" is not for people."""
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"must be {what}") from None


def _positive_float(value: str) -> float:
    number = _float(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    return number


def _non_negative_float(value: str) -> float:
    number = _float(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


def _positive_int(value: str) -> int:
    number = _int(value)
    if number <= 0:
        raise ValueError("must be greater than 0")
    return number


def _non_negative_int(value: str) -> int:
    number = _int(value)
    if number < 0:
        raise ValueError("must be 0 or more")
    return number


# The Responses API compacts no earlier than at 1,000 tokens; a smaller budget fits no tutor.
MIN_CONTEXT_TOKENS = 1000


def _context_tokens(value: str) -> int:
    """Tokens of context per turn, or 0 (`off`) for no budget."""
    if value.lower() == "off":
        return 0
    number = _int(value, f"off, 0 or a whole number of at least {MIN_CONTEXT_TOKENS}")
    if number != 0 and number < MIN_CONTEXT_TOKENS:
        raise ValueError(f"must be off, 0 or at least {MIN_CONTEXT_TOKENS}")
    return number


def _port(value: str) -> int:
    number = _int(value, "a port number (0-65535)")
    if not 0 <= number <= 65535:
        raise ValueError("must be a port number (0-65535)")
    return number


def _data_dir(value: str) -> Path:
    if not value:
        raise ValueError("must name a folder")
    return Path(value).expanduser()


def _slack_api_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value if value.endswith("/") else value + "/"


def _https_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with https:// (or http://)")
    return value


def _redis_url(value: str) -> str:
    if is_sentinel_url(value):
        parse_sentinel_url(value)  # raises what is wrong with it
        return value
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss://, unix:// or redis+sentinel://")
    return value


def _on_off(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be on or off")


def _user_ids(value: str) -> frozenset[str]:
    """Slack user ids separated by commas or spaces (U…, or W… in Enterprise Grid)."""
    ids = frozenset(part for part in value.replace(",", " ").split() if part)
    wrong = sorted(i for i in ids if not (i[0] in "UW" and i.isalnum() and i.isupper()))
    if wrong:
        raise ValueError(f"must be Slack user ids like U0123ABCD, not {', '.join(wrong)}")
    return ids


def _quiz_questions(value: str) -> int:
    number = _int(value)
    if not 1 <= number <= MAX_QUESTIONS:
        raise ValueError(f"must be 1 to {MAX_QUESTIONS}")
    return number


SLACK_ID = re.compile(r"^[A-Z0-9]+$")


def _slack_ids(value: str, extra: frozenset[str] = frozenset()) -> frozenset[str] | None:
    """Slack ids separated by commas (spaces ignored); empty → None: everyone is allowed."""
    ids = frozenset(part.strip() for part in value.split(",") if part.strip())
    wrong = sorted(i for i in ids if not SLACK_ID.match(i) and i not in extra)
    if wrong:
        raise ValueError(
            f"must be Slack ids separated by commas, such as C0123ABCD ({', '.join(wrong)} is not)"
        )
    return ids or None


def _channel_ids(value: str) -> frozenset[str] | None:
    return _slack_ids(value, frozenset({DIRECT_MESSAGES}))


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


SPECS: tuple[SettingSpec, ...] = (
    SettingSpec("SLACK_BOT_TOKEN", "slack_bot_token", None, "bot token (xoxb-…); required to serve Slack", secret=True),
    SettingSpec("SLACK_SIGNING_SECRET", "slack_signing_secret", None, "request signing secret; required in HTTP mode", secret=True),
    SettingSpec("SLACK_APP_TOKEN", "slack_app_token", None, "app-level token (xapp-…); set → Socket Mode instead of HTTP", secret=True),
    SettingSpec("SLACK_CLIENT_ID", "slack_client_id", None, "many workspaces: the app's client id; with SLACK_CLIENT_SECRET and SLACK_STATE_SECRET set, workspaces install the bot at /slack/install (OAuth) instead of using SLACK_BOT_TOKEN"),
    SettingSpec("SLACK_CLIENT_SECRET", "slack_client_secret", None, "many workspaces: the app's client secret", secret=True),
    SettingSpec("SLACK_STATE_SECRET", "slack_state_secret", None, "many workspaces: a random secret of your own that signs the install links' state", secret=True),
    SettingSpec("SLACK_REDIRECT_URI", "slack_redirect_uri", None, "many workspaces: the public URL of /slack/oauth_redirect, as in the app's Redirect URLs (unset → Slack uses the app's first one)", _https_url),
    SettingSpec("SLACK_API_URL", "slack_api_url", "https://slack.com/api/", "base URL of the Slack Web API", _slack_api_url),
    SettingSpec("PORT", "port", "3000", "HTTP port (HTTP mode)", _port),
    SettingSpec("REDIS_URL", "redis_url", None, "Redis to keep state in (redis://, rediss:// for TLS, unix://, or redis+sentinel://[:password@]host:port[,host:port]/service[/db]); unset → a private redis-server under TUTOR_DATA_DIR", _redis_url, secret=True),
    SettingSpec("TUTOR_REDIS_PREFIX", "redis_prefix", "tutor:", "prefix of every Redis key, so one Redis can serve several bots"),
    SettingSpec("REDIS_TLS_VERIFY", "redis_tls_verify", "on", "check the certificate of a rediss:// Redis; off for providers with self-signed certificates, such as Heroku Redis (still encrypted) (on/off)", _on_off),
    SettingSpec("TUTOR_REDIS_CLUSTER", "redis_cluster", "off", "REDIS_URL names a node of a Redis Cluster: the bot follows the cluster's slots and failovers (on/off)", _on_off),
    SettingSpec("TUTOR_REDIS_SHARDS", "redis_shards", "1", "streams the turn queue is split into, by conversation; on Redis Cluster a few per master (say 16), so no one node carries the whole queue", _positive_int),
    SettingSpec("TUTOR_DATA_DIR", "data_dir", ".data", "where the private redis-server keeps its data (created if missing; must be writable)", _data_dir),
    SettingSpec("OPENAI_API_KEY", "openai_api_key", None, "API key for the model server; a placeholder is used for the chat backend when unset", secret=True),
    SettingSpec("OPENAI_BASE_URL", "openai_base_url", None, "base URL of an OpenAI-compatible server (unset → OpenAI)"),
    SettingSpec("TUTOR_BACKEND", "backend", "responses", "responses, assistants or chat", BackendKind),
    SettingSpec("TUTOR_ASSISTANT_ID", "assistant_id", None, "assistants backend: the assistant to run; unset → created once from the settings below, its id kept in Redis"),
    SettingSpec("TUTOR_NAME", "tutor_name", "History Tutor", "the assistant's name"),
    SettingSpec("TUTOR_MODEL", "tutor_model", "gpt-5.4-mini", "the model to run (gpt-4.1-mini and gpt-4o-mini shut down on 2027-01-14)"),
    SettingSpec("TUTOR_INSTRUCTIONS", "tutor_instructions", DEFAULT_INSTRUCTIONS, "the assistant's instructions"),
    SettingSpec("TUTOR_POLL_INTERVAL", "poll_interval", "2.0", "longest wait in seconds between two status checks of a run that is not streamed (checks start every 0.5 s and back off as a run goes on; a streamed run reports itself)", _positive_float),
    SettingSpec("TUTOR_RUN_TIMEOUT", "run_timeout", "120", "seconds a run may take before it is cancelled and the user told", _positive_float),
    SettingSpec("TUTOR_OPENAI_TIMEOUT", "openai_timeout", "30", "seconds one request to the model server may take", _positive_float),
    SettingSpec("TUTOR_OPENAI_MAX_RETRIES", "openai_max_retries", "2", "retries of a failed request to the model server (429, 5xx, timeouts); 0 or more", _non_negative_int),
    SettingSpec("TUTOR_MAX_OUTPUT_TOKENS", "max_output_tokens", "1024", "upper bound on the tokens of one answer", _positive_int),
    SettingSpec("TUTOR_CONTEXT_TOKENS", "context_tokens", "6000", "tokens of context (instructions and history) a turn may be billed for, on every backend: responses compacts the conversation past it, assistants truncates the thread to it, chat sends the most recent history that fits; off or 0: no budget (TUTOR_CHAT_TOKEN_BUDGET, its former name, is still read)", _context_tokens, alias="TUTOR_CHAT_TOKEN_BUDGET"),
    SettingSpec("TUTOR_CHAT_TOKEN_FIELD", "chat_token_field", "max_tokens", "chat backend: max_tokens (local servers) or max_completion_tokens (OpenAI reasoning models)", TokenLimitField),
    SettingSpec("TUTOR_STREAMING", "streaming", "native", "show answers as they are written: native (Slack streams in threads, placeholder edits elsewhere), edit (placeholder edits only) or off", StreamingMode),
    SettingSpec("TUTOR_AGENT_SESSIONS", "agent_sessions", "auto", "Slack agent sessions in threads (status, title, the native Stop button): auto (used where the app is an agent), on or off", AgentSessionsMode),
    SettingSpec("TUTOR_THREAD_FOLLOWUPS", "thread_followups", "on", "answer replies without a mention in channel threads where the bot already has a conversation (on/off)", _on_off),
    SettingSpec("TUTOR_VISION", "vision", "on", "images shared with a question go to the model as image input (on/off; off: they are declined with a note)", _on_off),
    SettingSpec("TUTOR_MAX_ATTACHMENT_MB", "max_attachment_mb", "10", "largest file (in MB) read when shared with a question; a bigger one is declined with a note", _positive_float),
    SettingSpec("TUTOR_WEB_SEARCH", "web_search", "off", "responses backend: the model may search the web (the web_search tool), its sources shown under the answer (on/off; ignored on other backends, which the start log says)", _on_off),
    SettingSpec("TUTOR_PRICES", "prices", None, "prices per model for showing costs: model=input/cached/output in US dollars per million tokens, several separated by commas, e.g. gpt-5.4-mini=0.25/0.025/2.00", parse_prices),
    SettingSpec("TUTOR_SHOW_USAGE", "show_usage", "off", "a line under each answer with that turn's tokens (and cost, with TUTOR_PRICES) (on/off)", _on_off),
    SettingSpec("TUTOR_DAILY_TOKENS_PER_USER", "daily_tokens_per_user", "0", "tokens (input and output) one person's questions may use per day (UTC); then they get a message instead of an answer until midnight UTC; 0 = no limit", _non_negative_int),
    SettingSpec("TUTOR_DAILY_TOKENS_PER_WORKSPACE", "daily_tokens_per_workspace", "0", "the same for the whole workspace; 0 = no limit", _non_negative_int),
    SettingSpec("TUTOR_ADMINS", "admins", None, "Slack user ids (comma-separated) of the tutor's admins, besides the workspace's admins and owners: they see the workspace's figures in /tutor usage and are told (instead of the workspace's admins) when the model is about to shut down", _user_ids),
    SettingSpec("TUTOR_QUIZ_QUESTIONS", "quiz_questions", "3", "questions in a quiz (/tutor quiz, Quiz me on this), 1 to 5", _quiz_questions),
    SettingSpec("TUTOR_MATERIAL_MAX_MB", "material_max_mb", "10", "largest course material file (MB) the course form takes (Slack's file input takes at most 10)", _positive_float),
    SettingSpec("TUTOR_WORKER_NAME", "worker_name", None, "this process's name among the bot's processes (unset → the host name); a restarted process with the same name resumes its turns at once"),
    SettingSpec("TUTOR_CONCURRENCY", "concurrency", "200", "conversations one process answers at once (more wait, their placeholders shown at once)", _positive_int),
    SettingSpec("TUTOR_LEASE_SECONDS", "lease_seconds", "20", "seconds after which the turns of a process that died are taken over", _positive_float),
    SettingSpec("TUTOR_SHUTDOWN_GRACE", "shutdown_grace", "25", "seconds turns in flight get to finish on SIGTERM before they are handed back", _positive_float),
    SettingSpec("TUTOR_START_CHECKS", "start_checks", "on", "run the checks of `python -m bot doctor` at start, in the background, and log a warning for each that fails (on/off)", _on_off),
    SettingSpec("TUTOR_ALLOWED_TEAMS", "allowed_teams", None, "workspace ids (T…) the bot answers in, separated by commas; others get no answer and see nothing (unset → every workspace)", _slack_ids),
    SettingSpec("TUTOR_ALLOWED_CHANNELS", "allowed_channels", None, "channel ids (C…, G…) the bot answers in, separated by commas, and dm to answer direct messages too; elsewhere a question gets a note only its author sees (unset → everywhere)", _channel_ids),
    SettingSpec("TUTOR_ALLOWED_USERS", "allowed_users", None, "user ids (U…, W…) the bot answers, separated by commas; anyone else gets a note only they see (unset → everyone)", _slack_ids),
    SettingSpec("TUTOR_USER_RATE", "user_rate", "20", "questions one person may ask in any minute; more get a note saying when to ask again (0 → no limit)", _non_negative_int),
    SettingSpec("TUTOR_MAX_QUEUED_PER_CONVERSATION", "max_queued_per_conversation", "5", "questions of one conversation (thread, top-level DMs) waiting for their answer at once; more are refused with a note (0 → no limit)", _non_negative_int),
    SettingSpec("TUTOR_MAX_QUEUED_PER_USER", "max_queued_per_user", "10", "questions of one person waiting for their answer at once, across conversations; more are refused with a note (0 → no limit)", _non_negative_int),
    SettingSpec("TUTOR_MAX_QUESTION_CHARS", "max_question_chars", "4000", "longest question in characters; a longer one is refused with a note saying the limit, never cut short (0 → no limit)", _non_negative_int),
    SettingSpec("TUTOR_RETENTION_DAYS", "retention_days", "30", "days a conversation is kept after its last question: then it is deleted, in Redis and at the model provider (fractions allowed; 0 keeps conversations until someone forgets them)", _non_negative_float),
    SettingSpec("LOG_LEVEL", "log_level", "INFO", "DEBUG, INFO, WARNING or ERROR", _log_level),
    SettingSpec("LOG_FORMAT", "log_format", "text", "text (readable lines) or json (one JSON object per line, with team, channel, thread, turn and run ids)", LogFormat),
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """Everything configurable, typed. Build it with `Settings.load()` or directly in tests."""

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_client_id: str | None = None
    slack_client_secret: str | None = None
    slack_state_secret: str | None = None
    slack_redirect_uri: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    port: int = 3000
    redis_url: str | None = None
    redis_prefix: str = "tutor:"
    redis_tls_verify: bool = True
    redis_cluster: bool = False
    redis_shards: int = 1
    data_dir: Path = field(default_factory=lambda: Path(".data"))
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    backend: BackendKind = BackendKind.RESPONSES
    assistant_id: str | None = None
    tutor_name: str = "History Tutor"
    tutor_model: str = "gpt-5.4-mini"
    tutor_instructions: str = DEFAULT_INSTRUCTIONS
    poll_interval: float = 2.0
    run_timeout: float = 120.0
    openai_timeout: float = 30.0
    openai_max_retries: int = 2
    max_output_tokens: int = 1024
    context_tokens: int = 6000  # 0: no budget
    chat_token_field: TokenLimitField = TokenLimitField.MAX_TOKENS
    streaming: StreamingMode = StreamingMode.NATIVE
    agent_sessions: AgentSessionsMode = AgentSessionsMode.AUTO
    thread_followups: bool = True
    vision: bool = True
    max_attachment_mb: float = 10.0
    web_search: bool = False
    prices: PriceTable = field(default_factory=PriceTable)
    show_usage: bool = False
    daily_tokens_per_user: int = 0
    daily_tokens_per_workspace: int = 0
    admins: frozenset[str] = frozenset()
    quiz_questions: int = 3
    material_max_mb: float = 10.0
    worker_name: str | None = None
    concurrency: int = 200
    lease_seconds: float = 20.0
    shutdown_grace: float = 25.0
    start_checks: bool = True
    allowed_teams: frozenset[str] | None = None
    allowed_channels: frozenset[str] | None = None
    allowed_users: frozenset[str] | None = None
    user_rate: int = 20
    max_queued_per_conversation: int = 5
    max_queued_per_user: int = 10
    max_question_chars: int = 4000
    retention_days: float = 30.0
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, env_file: Path | None = None
    ) -> Settings:
        """Read the environment, then `.env` for what the environment leaves unset.

        Raises ConfigError naming every malformed setting.
        """
        environ = os.environ if environ is None else environ
        values = dict(read_env_file(env_file or Path(".env")))
        values.update({key: value for key, value in environ.items() if value != ""})
        parsed: dict[str, Any] = {}
        problems: list[str] = []
        for spec in SPECS:
            name = spec.env
            if name not in values and spec.alias in values:
                name = spec.alias
            raw = values.get(name, spec.default)
            if raw is None:  # unset: the field's default
                continue
            try:
                parsed[spec.attr] = spec.parse(raw.strip())
            except ValueError as error:
                allowed = _allowed_values(spec)
                problems.append(f"{name}={raw!r} is not valid: {allowed or error}.")
        if problems:
            raise ConfigError("\n".join(problems))
        return cls(**parsed)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values of every secret setting, for masking in logs."""
        values = (getattr(self, spec.attr) for spec in SPECS if spec.secret)
        return tuple(value for value in values if isinstance(value, str) and value)

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    @property
    def oauth(self) -> bool:
        """Many workspaces: each installs the bot through Slack's OAuth flow (/slack/install)
        and its bot token comes from its installation, not from SLACK_BOT_TOKEN."""
        return all(self._oauth_settings().values())

    def _oauth_settings(self) -> dict[str, str | None]:
        return {
            "SLACK_CLIENT_ID": self.slack_client_id,
            "SLACK_CLIENT_SECRET": self.slack_client_secret,
            "SLACK_STATE_SECRET": self.slack_state_secret,
        }

    def require_slack(self) -> None:
        """Raise ConfigError saying, in plain words, which Slack credentials are missing."""
        oauth_settings = self._oauth_settings()
        oauth_missing = [name for name, value in oauth_settings.items() if not value]
        if 0 < len(oauth_missing) < len(oauth_settings):
            raise ConfigError(
                "Installing the bot in many workspaces (OAuth) needs SLACK_CLIENT_ID, "
                f"SLACK_CLIENT_SECRET and SLACK_STATE_SECRET; missing: {', '.join(oauth_missing)}. "
                "For one workspace set SLACK_BOT_TOKEN instead (README.md, 'Many workspaces')."
            )
        if self.oauth and self.slack_bot_token:
            raise ConfigError(
                "SLACK_BOT_TOKEN and SLACK_CLIENT_ID are both set: with SLACK_CLIENT_ID, "
                "SLACK_CLIENT_SECRET and SLACK_STATE_SECRET each workspace's token comes from "
                "its installation (/slack/install). Unset SLACK_BOT_TOKEN, or the three others "
                "for one workspace."
            )
        missing = []
        if not self.slack_bot_token and not self.oauth:
            missing.append("SLACK_BOT_TOKEN")
        if not self.socket_mode and not self.slack_signing_secret:
            missing.append("SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode)")
        if missing:
            # `make run` goes local only without SLACK_BOT_TOKEN; `python -m bot local` always.
            local = "`python -m bot local`"
            if not self.slack_bot_token and not self.oauth:
                local = "`make run` or " + local
            raise ConfigError(
                f"Missing Slack credentials: {', '.join(missing)}.\n"
                "Create the Slack app from manifest.yml (README.md, 'Set up Slack') and put its "
                f"tokens in the environment or a .env file; to try the bot without Slack: {local}."
            )
        if self.slack_bot_token and not self.slack_bot_token.startswith("xoxb-"):
            raise ConfigError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-.")
        if self.slack_app_token and not self.slack_app_token.startswith("xapp-"):
            raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-.")


def _allowed_values(spec: SettingSpec) -> str:
    if isinstance(spec.parse, type) and issubclass(spec.parse, StrEnum):
        return "use one of " + ", ".join(member.value for member in spec.parse)
    return ""


def read_env_file(path: Path) -> dict[str, str]:
    """The `.env` file's settings (python-dotenv's parser: quotes, `export`, comments).

    Nothing is interpolated, and a key without a value counts as unset.
    """
    if not path.is_file():
        return {}
    values = dotenv_values(path, interpolate=False, encoding="utf-8")
    return {key: value for key, value in values.items() if value is not None}


def settings_help() -> str:
    """The settings table shown by `python -m bot --help`."""
    width = max(len(spec.env) for spec in SPECS)
    lines = ["settings (environment variables; a .env file in the working folder is read too):"]
    for spec in SPECS:
        default = "unset" if spec.default is None else repr(spec.default)
        lines.append(f"  {spec.env:<{width}}  {spec.help} [default: {default}]")
    return "\n".join(lines)
