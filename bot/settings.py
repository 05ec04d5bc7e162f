"""The bot's settings: read once from the environment (and `.env`), validated, passed down.

No other module reads the environment; everything it needs arrives through `Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class SettingSpec:
    """One environment variable: its name, default and what it means (for --help and README)."""

    env: str
    attr: str
    default: str | None
    help: str
    parse: Callable[[str], Any] = str
    secret: bool = False


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


def _redis_url(value: str) -> str:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return value


def _on_off(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be on or off")


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


SPECS: tuple[SettingSpec, ...] = (
    SettingSpec("SLACK_BOT_TOKEN", "slack_bot_token", None, "bot token (xoxb-…); required to serve Slack", secret=True),
    SettingSpec("SLACK_SIGNING_SECRET", "slack_signing_secret", None, "request signing secret; required in HTTP mode", secret=True),
    SettingSpec("SLACK_APP_TOKEN", "slack_app_token", None, "app-level token (xapp-…); set → Socket Mode instead of HTTP", secret=True),
    SettingSpec("SLACK_API_URL", "slack_api_url", "https://slack.com/api/", "base URL of the Slack Web API", _slack_api_url),
    SettingSpec("PORT", "port", "3000", "HTTP port (HTTP mode)", _port),
    SettingSpec("REDIS_URL", "redis_url", None, "Redis to keep state in (redis://, rediss://, unix://); unset → a private redis-server under TUTOR_DATA_DIR", _redis_url, secret=True),
    SettingSpec("TUTOR_REDIS_PREFIX", "redis_prefix", "tutor:", "prefix of every Redis key, so one Redis can serve several bots"),
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
    SettingSpec("TUTOR_CHAT_TOKEN_BUDGET", "chat_token_budget", "6000", "chat backend: tokens of history (with instructions) sent per turn", _positive_int),
    SettingSpec("TUTOR_CHAT_TOKEN_FIELD", "chat_token_field", "max_tokens", "chat backend: max_tokens (local servers) or max_completion_tokens (OpenAI reasoning models)", TokenLimitField),
    SettingSpec("TUTOR_STREAMING", "streaming", "native", "show answers as they are written: native (Slack streams in threads, placeholder edits elsewhere), edit (placeholder edits only) or off", StreamingMode),
    SettingSpec("TUTOR_THREAD_FOLLOWUPS", "thread_followups", "on", "answer replies without a mention in channel threads where the bot already has a conversation (on/off)", _on_off),
    SettingSpec("TUTOR_WORKER_NAME", "worker_name", None, "this process's name among the bot's processes (unset → the host name); a restarted process with the same name resumes its turns at once"),
    SettingSpec("TUTOR_CONCURRENCY", "concurrency", "200", "conversations one process answers at once (more wait, their placeholders shown at once)", _positive_int),
    SettingSpec("TUTOR_LEASE_SECONDS", "lease_seconds", "20", "seconds after which the turns of a process that died are taken over", _positive_float),
    SettingSpec("TUTOR_SHUTDOWN_GRACE", "shutdown_grace", "25", "seconds turns in flight get to finish on SIGTERM before they are handed back", _positive_float),
    SettingSpec("TUTOR_RETENTION_DAYS", "retention_days", "30", "days a conversation is kept after its last question: then it is deleted, in Redis and at the model provider (fractions allowed; 0 keeps conversations until someone forgets them)", _non_negative_float),
    SettingSpec("LOG_LEVEL", "log_level", "INFO", "DEBUG, INFO, WARNING or ERROR", _log_level),
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """Everything configurable, typed. Build it with `Settings.load()` or directly in tests."""

    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    port: int = 3000
    redis_url: str | None = None
    redis_prefix: str = "tutor:"
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
    chat_token_budget: int = 6000
    chat_token_field: TokenLimitField = TokenLimitField.MAX_TOKENS
    streaming: StreamingMode = StreamingMode.NATIVE
    thread_followups: bool = True
    worker_name: str | None = None
    concurrency: int = 200
    lease_seconds: float = 20.0
    shutdown_grace: float = 25.0
    retention_days: float = 30.0
    log_level: str = "INFO"

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
            raw = values.get(spec.env, spec.default)
            if raw is None:
                parsed[spec.attr] = None
                continue
            try:
                parsed[spec.attr] = spec.parse(raw.strip())
            except ValueError as error:
                allowed = _allowed_values(spec)
                problems.append(f"{spec.env}={raw!r} is not valid: {allowed or error}.")
        if problems:
            raise ConfigError("\n".join(problems))
        return cls(**parsed)

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    def require_slack(self) -> None:
        """Raise ConfigError saying, in plain words, which Slack credentials are missing."""
        missing = []
        if not self.slack_bot_token:
            missing.append("SLACK_BOT_TOKEN")
        if not self.socket_mode and not self.slack_signing_secret:
            missing.append("SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode)")
        if missing:
            # `make run` goes local only without SLACK_BOT_TOKEN; `python -m bot local` always.
            local = "`python -m bot local`"
            if not self.slack_bot_token:
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
    """Parse a `.env` file: KEY=VALUE lines, optional `export`, quotes and # comments."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def settings_help() -> str:
    """The settings table shown by `python -m bot --help`."""
    width = max(len(spec.env) for spec in SPECS)
    lines = ["settings (environment variables; a .env file in the working folder is read too):"]
    for spec in SPECS:
        default = "unset" if spec.default is None else repr(spec.default)
        lines.append(f"  {spec.env:<{width}}  {spec.help} [default: {default}]")
    return "\n".join(lines)
