"""What the OpenAI stand-in's protocol modules share: ids, errors, lists, metadata and timing."""

from __future__ import annotations

import asyncio
import json
import secrets
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ID_ALPHABET = string.ascii_letters + string.digits
METADATA_MAX_PAIRS = 16
METADATA_KEY_MAX = 64
METADATA_VALUE_MAX = 512
LIST_LIMIT_MAX = 100
CUT_AFTER_CHUNKS = 3

JSON = dict[str, Any]


class ApiError(Exception):
    """An error the API answers with: its HTTP status and OpenAI's error object."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type

    def body(self) -> JSON:
        error = {"message": self.message, "type": self.type, "param": self.param}
        return {"error": {**error, "code": self.code}}


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=headers)


def not_found(what: str, ident: str) -> ApiError:
    """OpenAI's wording for an id it does not know."""
    return ApiError(404, f"No {what} found with id '{ident}'.")


def missing(param: str) -> ApiError:
    message = f"Missing required parameter: '{param}'."
    return ApiError(400, message, code="missing_required_parameter", param=param)


def new_id(prefix: str) -> str:
    """A fresh id shaped like OpenAI's: a prefix, then 24 letters and digits."""
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(24))


def now() -> int:
    return int(time.time())


async def json_body(request: web.Request) -> JSON:
    """The request's JSON object; 400 the way OpenAI words it when there is none."""
    raw = await request.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ApiError(400, "We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body of your request must be a JSON object.")
    return body


def check_metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    """At most 16 string pairs, keys up to 64 and values up to 512 characters."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"Invalid type for '{param}': expected an object.", param=param)
    if len(value) > METADATA_MAX_PAIRS:
        raise ApiError(
            400,
            f"Invalid '{param}': too many properties. Expected an object with at most "
            f"{METADATA_MAX_PAIRS} properties, but got an object with {len(value)} properties "
            "instead.",
            code="object_above_max_properties",
            param=param,
        )
    for key, item in value.items():
        _check_metadata_pair(param, key, item)
    return dict(value)


def _check_metadata_pair(param: str, key: str, item: Any) -> None:
    if len(key) > METADATA_KEY_MAX:
        raise ApiError(
            400,
            f"Invalid '{param}': key '{key[:20]}…' is longer than {METADATA_KEY_MAX} characters.",
            code="string_above_max_length",
            param=param,
        )
    if not isinstance(item, str) or len(item) > METADATA_VALUE_MAX:
        length = len(item) if isinstance(item, str) else 0
        raise ApiError(
            400,
            f"Invalid '{param}.{key}': string too long. Expected a string with maximum length "
            f"{METADATA_VALUE_MAX}, but got a string with length {length} instead.",
            code="string_above_max_length",
            param=f"{param}.{key}",
        )


def check_max_items(items: Sequence[Any], maximum: int, param: str) -> None:
    if len(items) > maximum:
        raise ApiError(
            400,
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{maximum}, but got an array with length {len(items)} instead.",
            code="array_above_max_length",
            param=param,
        )


@dataclass(frozen=True)
class ListQuery:
    """The cursor parameters of a list endpoint: order, after, before, limit."""

    order: str = "desc"
    after: str | None = None
    before: str | None = None
    limit: int = 20

    @classmethod
    def parse(cls, request: web.Request) -> ListQuery:
        order = request.query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiError(400, f"Invalid value for 'order': '{order}'.", param="order")
        try:
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            raise ApiError(400, "Invalid 'limit': expected an integer.", param="limit") from None
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ApiError(
                400,
                f"Invalid 'limit': integer must be between 1 and {LIST_LIMIT_MAX}.",
                param="limit",
            )
        return cls(order, request.query.get("after"), request.query.get("before"), limit)

    def page(self, items: Sequence[JSON]) -> tuple[list[JSON], bool]:
        """The page of `items` (given in creation order) and whether more lie beyond it.

        With only `before`, the page is the one just before that cursor.
        """
        ordered = list(items) if self.order == "asc" else list(reversed(items))
        ids = [item["id"] for item in ordered]
        start = self._position(ids, self.after, "after") + 1 if self.after else 0
        end = self._position(ids, self.before, "before") if self.before else len(ordered)
        window = ordered[start:end]
        more = len(window) > self.limit
        if self.before and not self.after:
            return window[-self.limit :], more
        return window[: self.limit], more

    @staticmethod
    def _position(ids: list[str], cursor: str, param: str) -> int:
        if cursor not in ids:
            raise ApiError(400, f"Invalid '{param}': no object with id '{cursor}'.", param=param)
        return ids.index(cursor)


def list_body(page: list[JSON], has_more: bool) -> JSON:
    """A list object with the cursors the SDK pages by."""
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": has_more,
    }


@dataclass
class Pacing:
    """How long background work stays queued and in progress (tests may change it any time)."""

    queued_seconds: float = 0.05
    in_progress_seconds: float = 0.1
    poll_after_ms: int = 100


@dataclass(frozen=True)
class Schedule:
    """When a run or response leaves `queued` and when it reaches its final status.

    Times are on the monotonic clock; `epoch` turns one into the Unix seconds the API reports.
    """

    created: float
    created_epoch: float
    started: float
    finished: float

    @classmethod
    def begin(cls, queued: float, working: float) -> Schedule:
        start = time.monotonic()
        return cls(start, time.time(), start + queued, start + queued + working)

    def epoch(self, moment: float) -> int:
        return int(self.created_epoch + (moment - self.created))

    @property
    def created_at(self) -> int:
        return int(self.created_epoch)


@dataclass
class Timers:
    """Callbacks due later on the loop, so state advances even when nobody reads it."""

    handles: set[asyncio.TimerHandle] = field(default_factory=set)

    def at(self, moment: float, callback: Callable[[], None]) -> None:
        """Call `callback` once the monotonic clock reaches `moment`."""
        loop = asyncio.get_running_loop()
        delay = max(0.0, moment - time.monotonic())
        handle: asyncio.TimerHandle

        def fire() -> None:
            self.handles.discard(handle)
            callback()

        handle = loop.call_later(delay, fire)
        self.handles.add(handle)

    def cancel_all(self) -> None:
        for handle in self.handles:
            handle.cancel()
        self.handles.clear()


async def sleep_until(moment: float) -> None:
    """Sleep until the monotonic clock reaches `moment` (not at all if it already has)."""
    delay = moment - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


def sse(data: JSON | str, event: str | None = None) -> bytes:
    """One server-sent event: an optional `event:` line, then the data line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


async def open_event_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    return response


def cut_point(chunks: int) -> int:
    """After how many chunks a `[cut]` stream breaks: a few, and always before its end."""
    return max(0, min(CUT_AFTER_CHUNKS, chunks - 1))


def break_connection(request: web.Request) -> None:
    """Drop the connection mid-stream, the way a crashed upstream would: no end, no [DONE]."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError
