"""How the bot logs: plain lines or JSON lines, with the ids of the turn at hand, no secrets.

A turn's ids (workspace, channel, thread, turn, run) are bound once in a context variable
where its work starts (`bind_ids`); every log line written from that task, and from tasks
it starts, carries them, without threading them through every call. Every line passes
through `mask_secrets`, so a token that ends up in an error message or a traceback is
never written out.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from enum import StrEnum

# The SDKs' DEBUG logs carry message text: they speak from WARNING unless debugging.
QUIET_LOGGERS = ("slack_bolt", "slack_sdk", "openai", "httpx", "httpcore", "aiohttp.access")
# The ids a log line may carry, in the order they are shown.
ID_FIELDS = ("team", "channel", "thread", "turn", "run")
MASK = "[secret]"
# Token shapes of Slack (bot, user, app-level, refresh, config) and OpenAI-style API keys.
TOKEN_PATTERN = re.compile(
    r"\b(?:xox[abposre]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,}|sk-[A-Za-z0-9_-]{16,})"
)

_ids: ContextVar[dict[str, str] | None] = ContextVar("tutor_log_ids", default=None)


class LogFormat(StrEnum):
    TEXT = "text"  # one readable line per record
    JSON = "json"  # one JSON object per line, for log collectors


def bind_ids(**ids: str | None) -> None:
    """Add ids to every log line written from here on in this task (and tasks it starts)."""
    current = dict(_ids.get() or {})
    current.update({name: value for name, value in ids.items() if value})
    _ids.set(current)


@contextlib.contextmanager
def ids_bound(**ids: str | None) -> Iterator[None]:
    """`bind_ids` for the length of a block."""
    token = _ids.set(dict(_ids.get() or {}))
    bind_ids(**ids)
    try:
        yield
    finally:
        _ids.reset(token)


def current_ids() -> dict[str, str]:
    return dict(_ids.get() or {})


class SecretMask:
    """Replaces the configured secrets and anything shaped like a token."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return TOKEN_PATTERN.sub(MASK, text)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message`, secrets masked (messages name their ids themselves)."""

    def __init__(self, mask: SecretMask) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._mask = mask

    def format(self, record: logging.LogRecord) -> str:
        return self._mask(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids, the traceback."""

    converter = time.gmtime  # times in UTC, marked "Z"

    def __init__(self, mask: SecretMask) -> None:
        super().__init__()
        self._mask = mask

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": self._mask(record.getMessage()),
        }
        entry.update(_record_ids(record))
        if record.exc_info:
            entry["exception"] = self._mask(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def _record_ids(record: logging.LogRecord) -> dict[str, str]:
    """The ids bound where the record was written, and any passed with `extra=`."""
    ids = current_ids()
    for name in ID_FIELDS:
        value = getattr(record, name, None)
        if isinstance(value, str) and value:
            ids[name] = value
    return {name: ids[name] for name in ID_FIELDS if name in ids}


def configure_logging(
    level: str, log_format: LogFormat = LogFormat.TEXT, secrets: Iterable[str | None] = ()
) -> None:
    """Our logs at `level` on stderr, in `log_format`, secrets masked; the SDKs' from WARNING."""
    mask = SecretMask(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(mask) if log_format is LogFormat.JSON else TextFormatter(mask)
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
