"""Log lines: secrets masked wherever they appear, a turn's ids on every line of its work."""

from __future__ import annotations

import asyncio
import json
import logging

from bot.logs import JsonFormatter, SecretMask, TextFormatter, bind_ids, ids_bound

BOT_TOKEN = "xoxb-123456-abcdef-SECRET"
SIGNING_SECRET = "0123456789abcdef"


def record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("bot.test", logging.WARNING, __file__, 1, message, args, exc_info)


def test_configured_secrets_and_token_shapes_are_masked_in_messages_and_tracebacks() -> None:
    mask = SecretMask([SIGNING_SECRET, None, ""])
    try:
        raise RuntimeError(f"refused token {BOT_TOKEN} with key sk-proj-abcdefghijklmnop1234")
    except RuntimeError as error:
        failure = error
    for formatter in (TextFormatter(mask), JsonFormatter(mask)):
        line = formatter.format(record("signed with %s", SIGNING_SECRET, exc=failure))
        assert SIGNING_SECRET not in line and BOT_TOKEN not in line and "sk-proj" not in line
        assert "[secret]" in line and "RuntimeError" in line


async def test_json_lines_carry_the_ids_bound_for_a_turn_and_its_tasks() -> None:
    formatter = JsonFormatter(SecretMask())

    async def child() -> dict[str, str]:
        return json.loads(formatter.format(record("in a task the turn started")))

    with ids_bound(team="T1", channel="C1", thread="1.2", turn="turn_1"):
        bind_ids(run="resp_1")
        inside = await asyncio.create_task(child())
    outside = json.loads(formatter.format(record("after the turn")))
    assert inside["team"] == "T1" and inside["turn"] == "turn_1" and inside["run"] == "resp_1"
    assert inside["message"] == "in a task the turn started" and inside["level"] == "WARNING"
    assert "turn" not in outside and "run" not in outside
