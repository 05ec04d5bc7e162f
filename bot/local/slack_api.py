"""A local stand-in for the Slack Web API: the methods the bot calls, in Slack's shapes.

The real `slack_sdk` client talks to it over HTTP (`base_url=…/api/`). It records every
call, keeps the messages as a person would see them, can answer 429s and errors on demand,
and serves `response_url`s. Tests, benchmarks and the offline mode run against it.

With `rate_limits=True` (or `enforce_rate_limits()`) it also holds the bot to Slack's
published rate limits (PUBLISHED_RATE_LIMITS), answering 429 with `Retry-After` like Slack;
without it (the default) only the 429s a test asks for with `rate_limit()` are sent.

It serves one workspace with the bot installed (the token given) and any number more
(`add_workspace`), each with its own bot token: calls act in the workspace of their token
(`auth.test` answers with it; a channel of another workspace is `channel_not_found`). A
workspace installs the bot through Slack's OAuth flow: the approval page
(`GET /oauth/v2/authorize`, approved at once for the workspace named by `team`) redirects to
the app with a code, which `oauth.v2.access` exchanges, with the app's client id and secret,
for a new bot token; `uninstall` revokes it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import contextvars
import itertools
import json
import math
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.local.slack_views import (
    Triggers,
    ViewRefused,
    check_view,
    parse_view,
    stored_view,
)
from bot.local.waiting import wait_until
from bot.slack.scopes import REQUIRED_BOT_SCOPES, SCOPES_HEADER

TEXT_LIMIT = 40_000  # Slack truncates `text` above this
# agents.sessions.setStatus and chat.stopStream's session_status take only these.
TASK_STATUSES = frozenset({"pending", "in_progress", "complete", "error"})
SESSION_STATUSES = frozenset({"processing", "active", "suspended", "closed"})
SESSION_TITLE_LIMIT = 200
USERS_LIST_LIMIT = 1000  # members a users.list page holds at most (Slack advises asking for 200)
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class RateTier:
    """One of Slack's rate limits: `per_minute` calls, up to `burst` of them at once.

    Slack counts "per API method per workspace per app"; `per_channel` limits count per
    channel instead (chat.postMessage). Modelled as a token bucket holding `burst` calls and
    refilled at `per_minute` / 60 a second.
    """

    per_minute: float
    burst: float
    per_channel: bool = False


# Slack's tiers (https://docs.slack.dev/apis/web-api/rate-limits): Tier 1 "1+ per minute",
# Tier 2 "20+ per minute", Tier 3 "50+ per minute ... sporadic bursts are welcome", Tier 4
# "100+ per minute ... generous burst behavior". Each bucket holds one minute's allowance, so
# a burst of that many calls passes and the steady rate is the tier's figure.
TIER_1 = RateTier(1, 1)
TIER_2 = RateTier(20, 20)
TIER_3 = RateTier(50, 50)
TIER_4 = RateTier(100, 100)
# The method pages, as of 2026: chat.update and chat.delete "Tier 3"
# (https://api.slack.com/methods/chat.update, /methods/chat.delete); chat.stopStream "Tier 2"
# (https://api.slack.com/methods/chat.stopStream); chat.startStream Tier 2 and
# chat.appendStream Tier 4 (as slack-morphism's rate control encodes them); chat.postMessage
# "Special": "1 per second [per channel]. Short bursts >1 allowed" plus an unpublished
# workspace-wide limit, which is not modelled; assistant.threads.setStatus "Special rate
# limits apply" (about 600 a minute); auth.test "allows hundreds of requests per minute"
# (modelled as Tier 4, its floor); conversations.replies and conversations.history Tier 3;
# chat.postEphemeral Tier 4 (https://api.slack.com/methods/chat.postEphemeral).
PUBLISHED_RATE_LIMITS: Mapping[str, RateTier] = {
    "auth.test": TIER_4,
    "chat.postMessage": RateTier(60, 3, per_channel=True),
    "chat.postEphemeral": TIER_4,
    "chat.update": TIER_3,
    "chat.delete": TIER_3,
    "chat.startStream": TIER_2,
    "chat.appendStream": TIER_4,
    "chat.stopStream": TIER_2,
    "assistant.threads.setStatus": RateTier(600, 600),
    "conversations.replies": TIER_3,
    "conversations.history": TIER_3,
}
# Commercially distributed apps outside the Slack Marketplace, created since 2025-05-29 (and
# all such installations since 2025-09-02): conversations.history and conversations.replies
# at 1 request a minute (and at most 15 messages a call, not modelled here).
# https://docs.slack.dev/changelog/2025/05/29/rate-limit-changes-for-non-marketplace-apps
NON_MARKETPLACE_RATE_LIMITS: Mapping[str, RateTier] = {
    **PUBLISHED_RATE_LIMITS,
    "conversations.replies": TIER_1,
    "conversations.history": TIER_1,
}


@dataclass
class _Bucket:
    tokens: float
    updated: float


class SlackError(Exception):
    """An `{"ok": false, "error": code}` answer."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Workspace:
    """A workspace and its installation of the bot (`token` None: not installed)."""

    team_id: str
    name: str
    bot_user_id: str
    bot_id: str
    token: str | None = None
    enterprise_id: str | None = None
    scopes: tuple[str, ...] = ()
    revoked: set[str] = field(default_factory=set)  # its former tokens


@dataclass(frozen=True)
class _Grant:
    """A code the approval page issued, not yet exchanged."""

    team_id: str
    scopes: tuple[str, ...]
    redirect_uri: str | None
    user_id: str
    org_wide: bool


@dataclass
class ApiCall:
    method: str
    args: dict[str, Any]
    ok: bool
    error: str | None = None
    response: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    team: str | None = None  # the workspace of the call's token


@dataclass
class Message:
    """A message as stored by Slack; `edits` holds every text it showed, oldest first."""

    channel: str
    ts: str
    text: str = ""
    thread_ts: str | None = None
    blocks: list[dict[str, Any]] | None = None
    markdown_text: str | None = None
    user: str | None = None
    bot_id: str | None = None
    deleted: bool = False
    streamed: bool = False
    stream_open: bool = False
    edits: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    team: str | None = None  # the workspace whose bot posted it
    chunks: list[dict[str, Any]] = field(default_factory=list)  # a stream's chunks, in order


@dataclass
class AgentSession:
    """An agent session of a thread (apps declared as agents): its status and title."""

    status: str
    title: str | None = None
    initiator: str | None = None


def blocks_text(blocks: list[dict[str, Any]]) -> str:
    """The readable text of section, markdown, header, context and rich_text blocks."""
    parts: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "markdown":
            parts.append(str(block.get("text", "")))
        elif kind in ("section", "header") and isinstance(block.get("text"), dict):
            parts.append(str(block["text"].get("text", "")))
        elif kind == "context":
            parts.extend(str(e.get("text", "")) for e in block.get("elements", []))
        elif kind == "rich_text":
            parts.append(_rich_text(block.get("elements", [])))
    return "\n".join(p for p in parts if p)


def shown_text(message: Message) -> str:
    """A message's visible text: its markdown_text (and the blocks a finished stream shows
    under it), else its blocks, else its text."""
    if message.markdown_text is not None:
        under = blocks_text(message.blocks) if message.blocks else ""
        return f"{message.markdown_text}\n{under}" if under else message.markdown_text
    if message.blocks:
        return blocks_text(message.blocks)
    return message.text


def _rich_text(elements: list[dict[str, Any]]) -> str:
    out = []
    for element in elements:
        if "elements" in element:
            out.append(_rich_text(element["elements"]))
        elif "text" in element:
            out.append(str(element["text"]))
    return "".join(out)


# The workspace of the call being answered (each request is handled in its own task).
_CALLER: contextvars.ContextVar[Workspace] = contextvars.ContextVar("caller")
_FILE_IDS = itertools.count(1)
_MIMETYPES = {
    "pdf": "application/pdf",
    "markdown": "text/markdown",
    "md": "text/markdown",
    "text": "text/plain",
    "txt": "text/plain",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


class SlackStandIn:
    """The Web API of Slack for one app: a workspace with the bot installed, and more."""

    def __init__(
        self,
        *,
        token: str = "xoxb-test",
        app_token: str = "xapp-test",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_id: str = "T1",
        rate_limits: bool | Mapping[str, RateTier] = False,
        scopes: tuple[str, ...] = REQUIRED_BOT_SCOPES,
        client_id: str = "111.222",
        client_secret: str = "client-secret",
    ) -> None:
        self.token = token
        # What the bot token may do; sent, as Slack does, in every answer's x-oauth-scopes.
        self.scopes = scopes
        self.app_token = app_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        # The app's credentials (OAuth) and its configured Redirect URL.
        self.app_id = "A1"
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_url: str | None = None
        self.workspaces: dict[str, Workspace] = {
            team_id: Workspace(team_id, "Stand-in", bot_user_id, bot_id, token)
        }
        # Channels of a workspace other than the first (others: any workspace may use them).
        self.channel_teams: dict[str, str] = {}
        self._grants: dict[str, _Grant] = {}
        self.channels_without_bot: set[str] = set()
        self.missing_channels: set[str] = set()
        # users.info's is_admin / is_owner / is_primary_owner for these users.
        self.workspace_admins: set[str] = set()
        self.workspace_owners: set[str] = set()
        self.primary_owner: str | None = None
        self.calls: list[ApiCall] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.response_url_posts: list[dict[str, Any]] = []
        # The workspace's people (users.list), in Slack's user object shape; add_user adds.
        self.users: list[dict[str, Any]] = [
            {"id": bot_user_id, "team_id": team_id, "name": "tutor", "deleted": False,
             "is_bot": True, "is_admin": False, "is_owner": False}
        ]  # fmt: skip
        self.ephemerals: list[dict[str, Any]] = []
        # The app is declared an agent: agents.sessions.* work. False: they answer
        # not_authorized, as for any other app.
        self.agent_app = True
        self.agent_sessions: dict[tuple[str, str], AgentSession] = {}
        self.base_url = ""
        self._ts = itertools.count(1)
        self._rate_limits: dict[str, list[int]] = {}
        self._tiers: Mapping[str, RateTier] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.clock: Callable[[], float] = time.monotonic  # what the rate limits count by
        self._listeners: list[Callable[[ApiCall], None]] = []
        self._failures: dict[str, list[str | None]] = {}
        # Modals and Home tabs: trigger_ids handed out with interactions, the modals opened
        # (view id → (user, view)) and each user's published Home.
        self.triggers = Triggers()
        self.modals: dict[str, tuple[str, dict[str, Any]]] = {}
        self.home_views: dict[str, dict[str, Any]] = {}
        # Files people uploaded (file id → (team, its file object, its bytes)) and the
        # downloads of them (the Authorization header each came with, "" for none).
        self.files: dict[str, tuple[str, dict[str, Any], bytes]] = {}
        self.downloads: list[tuple[str, bool]] = []  # (file id, whether the token was good)
        self._response_urls: dict[str, int] = {}
        self.socket_acks: dict[str, dict[str, Any]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "auth.revoke": self._auth_revoke,
            "oauth.v2.access": self._oauth_access,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._permalink,
            "chat.startStream": self._start_stream,
            "chat.appendStream": self._append_stream,
            "chat.stopStream": self._stop_stream,
            "apps.connections.open": self._open_connection,
            "conversations.info": self._conversation_info,
            "conversations.history": self._history,
            "conversations.replies": self._replies,
            "users.info": self._user_info,
            "users.list": self._users_list,
            "conversations.open": self._open_conversation,
            "assistant.threads.setStatus": self._ok,
            "assistant.threads.setSuggestedPrompts": self._ok,
            "assistant.threads.setTitle": self._ok,
            "agents.sessions.setStatus": self._set_session_status,
            "agents.sessions.rename": self._rename_session,
            "files.info": self._file_info,
            "views.open": self._open_view,
            "views.publish": self._publish_view,
            "reactions.add": self._ok,
        }
        if rate_limits:
            self.enforce_rate_limits(PUBLISHED_RATE_LIMITS if rate_limits is True else rate_limits)

    # ---- running -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/oauth/v2/authorize", self._handle_authorize)
        app.router.add_post("/response_url/{token}", self._handle_response_url)
        app.router.add_get("/socket", self._handle_socket)
        app.router.add_get("/files-pri/{file_id}/{name}", self._handle_download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound}/api/"
        return self.base_url

    async def stop(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- steering ------------------------------------------------------------------------

    def rate_limit(self, method: str, *, count: int = 1, retry_after: int = 1) -> None:
        """The next `count` calls of `method` answer HTTP 429 with `Retry-After`."""
        self._rate_limits.setdefault(method, []).extend([retry_after] * count)

    def enforce_rate_limits(
        self, limits: Mapping[str, RateTier] | None = PUBLISHED_RATE_LIMITS
    ) -> None:
        """Hold calls to `limits` (per method; None: no limits) from now on, starting with
        full buckets: as a workspace that has been quiet for a minute."""
        self._tiers = dict(limits or {})
        self._buckets.clear()

    def fail(self, method: str, error: str, *, count: int = 1, after: int = 0) -> None:
        """The next `count` calls of `method` (once `after` more have passed) answer
        `{"ok": false, "error": error}`."""
        self._failures.setdefault(method, []).extend([None] * after + [error] * count)

    def stop_streams(self, channel: str, thread_ts: str) -> list[str]:
        """What Slack does when someone clicks the native Stop of a thread's agent session:
        the app's streams open in that thread stop (their ts, for agent_session_stopped's
        `streaming_message_ts`). The session's status is left to the app."""
        stopped = []
        for message in self.thread(channel, thread_ts):
            if message.stream_open:
                message.stream_open = False
                message.edits.append(shown_text(message))
                stopped.append(message.ts)
        return stopped

    def add_user(
        self,
        user_id: str,
        *,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
    ) -> None:
        """A person (or bot) of the workspace, as users.list shows them."""
        self.users.append({"id": user_id, "team_id": self.team_id, "name": user_id.lower(),
                           "deleted": deleted, "is_bot": is_bot, "is_admin": is_admin,
                           "is_owner": is_owner})  # fmt: skip

    def add_workspace(
        self,
        team_id: str,
        *,
        name: str | None = None,
        enterprise_id: str | None = None,
        channels: tuple[str, ...] = (),
    ) -> Workspace:
        """Another workspace, where the bot is not installed yet; `channels` are its own."""
        workspace = Workspace(
            team_id, name or f"Team {team_id}", f"U{team_id}BOT", f"B{team_id}",
            enterprise_id=enterprise_id,
        )  # fmt: skip
        self.workspaces[team_id] = workspace
        self.channel_teams.update({channel: team_id for channel in channels})
        return workspace

    def uninstall(self, team_id: str) -> None:
        """The workspace removes the bot: its token stops working (`token_revoked`)."""
        workspace = self.workspaces[team_id]
        if workspace.token is not None:
            workspace.revoked.add(workspace.token)
            workspace.token = None

    def grant(
        self,
        team_id: str,
        scopes: tuple[str, ...] = ("chat:write",),
        *,
        redirect_uri: str | None = None,
        user_id: str = "UINSTALLER",
        org_wide: bool = False,
    ) -> str:
        """An installer approves the app for the workspace: the code the app exchanges."""
        code = f"code-{next(self._ts)}"
        self._grants[code] = _Grant(team_id, scopes, redirect_uri, user_id, org_wide)
        return code

    def issue_trigger(self, user_id: str) -> str:
        """A trigger_id as Slack sends one with an interaction of `user_id` (a command, a
        click): views.open takes it once, within 3 seconds."""
        return self.triggers.issue(user_id)

    def modal_of(self, user_id: str) -> dict[str, Any]:
        """The last modal opened for `user_id`."""
        found = [view for user, view in self.modals.values() if user == user_id]
        if not found:
            raise LookupError(f"no modal was opened for {user_id}")
        return found[-1]

    def new_response_url(self) -> str:
        token = f"R{next(self._ts)}"
        self._response_urls[token] = 0
        return self.base_url.removesuffix("api/") + f"response_url/{token}"

    # ---- Socket Mode -----------------------------------------------------------------------

    @property
    def socket_connected(self) -> bool:
        return any(not socket.closed for socket in self._sockets)

    async def send_socket_envelope(self, kind: str, payload: dict[str, Any]) -> str:
        """Push an envelope (`events_api`, `slash_commands`, `interactive`) to the connected
        app, as Slack does in Socket Mode; returns its envelope_id (acked in socket_acks)."""
        envelope_id = f"env-{next(self._ts)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        socket = next(s for s in self._sockets if not s.closed)
        await socket.send_json(envelope)
        return envelope_id

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_json({"type": "hello", "num_connections": len(self._sockets),
                                "connection_info": {"app_id": "A1"}})  # fmt: skip
        async with self._changed:
            self._changed.notify_all()
        async for frame in socket:
            if frame.type.name == "TEXT":
                ack = json.loads(frame.data)
                self.socket_acks[str(ack.get("envelope_id"))] = ack
                async with self._changed:
                    self._changed.notify_all()
        return socket

    # ---- inspection ----------------------------------------------------------------------

    def on_call(self, listener: Callable[[ApiCall], None]) -> None:
        """Call `listener` with every call as it is recorded, while the messages it changed
        are as it left them (benchmarks time what a person sees)."""
        self._listeners.append(listener)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method and call.ok]

    def visible_text(self, channel: str, ts: str) -> str:
        """What a person sees in the message now ("" once deleted)."""
        message = self.messages[(channel, ts)]
        return "" if message.deleted else shown_text(message)

    def thread(self, channel: str, thread_ts: str) -> list[Message]:
        """The thread's messages the bot posted (root included), in order."""
        found = [
            m
            for (c, ts), m in self.messages.items()
            if c == channel and not m.deleted and (ts == thread_ts or m.thread_ts == thread_ts)
        ]
        return sorted(found, key=lambda m: float(m.ts))

    def channel_top_level(self, channel: str) -> list[Message]:
        found = [
            m
            for (c, _), m in self.messages.items()
            if c == channel and not m.deleted and m.thread_ts in (None, m.ts)
        ]
        return sorted(found, key=lambda m: float(m.ts))

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = 10) -> None:
        """Return as soon as `predicate()` holds, re-checking after every call received.

        `timeout=None` waits as long as it takes (the local mode's chat watching the bot).
        """

        def recent() -> str:
            return "recent calls:\n" + "\n".join(
                f"  {c.method} {c.args} ok={c.ok}" for c in self.calls[-15:]
            )

        await wait_until(self._changed, predicate, timeout, recent)

    # ---- HTTP ----------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _arguments(request)
        team: str | None = None
        try:
            caller = self._caller(request, args, method)
            _CALLER.set(caller)
            team = caller.team_id
            retry_after = (
                self._rate_limits[method].pop(0)
                if self._rate_limits.get(method)
                else self._over_limit(method, args, team)
            )
            if retry_after is not None:
                await self._notify(ApiCall(method, args, ok=False, error="ratelimited", team=team))
                return web.json_response(
                    {"ok": False, "error": "ratelimited"},
                    status=429,
                    headers={"Retry-After": str(retry_after)},
                )
            failure = self._failures[method].pop(0) if self._failures.get(method) else None
            if failure is not None:
                raise SlackError(failure)
            handler = self._methods.get(method)
            if handler is None:
                raise SlackError("unknown_method")
            result = {"ok": True, **(await handler(args))}
        except SlackError as error:
            await self._notify(ApiCall(method, args, ok=False, error=error.code, team=team))
            return web.json_response({"ok": False, "error": error.code})
        await self._notify(ApiCall(method, args, ok=True, response=result, team=team))
        return web.json_response(result, headers=self._scope_headers(method))

    def _scope_headers(self, method: str) -> dict[str, str]:
        """Slack names the token's scopes in every answer to a call made with it."""
        if method == "apps.connections.open":
            return {SCOPES_HEADER: "connections:write"}
        return {SCOPES_HEADER: ",".join(self.scopes)}

    def upload_file(
        self, name: str, data: bytes, *, user_id: str, filetype: str = "", team_id: str = ""
    ) -> dict[str, Any]:
        """A file `user_id` uploaded (in a modal's file input): its file object, as
        `view.state.values` and `files.info` show it."""
        file_id = f"F{next(_FILE_IDS):09d}"
        kind = filetype or (name.rsplit(".", 1)[-1].lower() if "." in name else "binary")
        url = self.base_url.removesuffix("api/") + f"files-pri/{file_id}/{quote(name)}"
        info = {
            "id": file_id, "created": int(time.time()), "timestamp": int(time.time()),
            "name": name, "title": name,
            "mimetype": _MIMETYPES.get(kind, "application/octet-stream"),
            "filetype": kind, "pretty_type": kind.upper(), "user": user_id, "size": len(data),
            "mode": "hosted", "is_external": False, "is_public": False,
            "url_private": url, "url_private_download": url + "?download=1",
            "permalink": url, "editable": False,
        }  # fmt: skip
        self.files[file_id] = (team_id or self.team_id, info, data)
        return info

    async def _file_info(self, args: dict[str, Any]) -> dict[str, Any]:
        """files.info: a file of the caller's workspace."""
        if "files:read" not in self.scopes:
            raise SlackError("missing_scope")
        found = self.files.get(str(args.get("file") or ""))
        if found is None or found[0] != _CALLER.get().team_id:
            raise SlackError("file_not_found")
        return {"file": found[1], "comments": [], "response_metadata": {"next_cursor": ""}}

    async def _handle_download(self, request: web.Request) -> web.StreamResponse:
        """A file's `url_private(_download)`: only with a token of its workspace (Bearer)."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        found = self.files.get(request.match_info["file_id"])
        workspace = self.workspaces.get(found[0]) if found is not None else None
        allowed = workspace is not None and bool(token) and token == workspace.token
        self.downloads.append((request.match_info["file_id"], allowed))
        if found is None or not allowed or "files:read" not in self.scopes:
            # Slack answers a download without a valid token with its sign-in page.
            return web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        return web.Response(body=found[2], content_type=found[1]["mimetype"])

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        uses = self._response_urls.get(token)
        if uses is None or uses >= 5:
            return web.Response(status=404, text="used_url")
        self._response_urls[token] = uses + 1
        payload = await request.json()
        self.response_url_posts.append(payload)
        await self._notify(ApiCall("response_url", payload, ok=True))
        return web.Response(text="ok")

    def _over_limit(self, method: str, args: dict[str, Any], team: str) -> int | None:
        """None when the call is within its tier (and counted); else Retry-After, in whole
        seconds as Slack sends it: when the bucket next holds a call."""
        tier = self._tiers.get(method)
        if tier is None:
            return None
        scope = str(args.get("channel") or args.get("channel_id") or "") if tier.per_channel else ""
        now = self.clock()
        bucket = self._buckets.setdefault((method, team, scope), _Bucket(tier.burst, now))
        rate = tier.per_minute / 60
        bucket.tokens = min(tier.burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return max(1, math.ceil((1 - bucket.tokens) / rate))

    def _caller(self, request: web.Request, args: dict[str, Any], method: str) -> Workspace:
        """The workspace a call acts in, by its token; SlackError when it has none.

        The app-level token (Socket Mode) and the app's client credentials (oauth.v2.access)
        act for the app: in the first workspace, as far as this stand-in is concerned.
        """
        header = request.headers.get("Authorization", "")
        first = next(iter(self.workspaces.values()))
        if method == "oauth.v2.access":
            client_id, secret = _client_credentials(header, args)
            if client_id != self.client_id:
                raise SlackError("invalid_client_id")
            if secret != self.client_secret:
                raise SlackError("bad_client_secret")
            return first
        token = header.removeprefix("Bearer ").strip() or str(args.get("token", ""))
        if method == "apps.connections.open":
            if token != self.app_token:
                raise SlackError("invalid_auth")
            return first
        for workspace in self.workspaces.values():
            if token and token == workspace.token:
                return workspace
            if token in workspace.revoked:
                raise SlackError("token_revoked")
        raise SlackError("not_authed" if not token else "invalid_auth")

    async def _notify(self, call: ApiCall) -> None:
        self.calls.append(call)
        for listener in self._listeners:
            listener(call)
        async with self._changed:
            self._changed.notify_all()

    # ---- methods -------------------------------------------------------------------------

    async def _ok(self, args: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def _open_connection(self, args: dict[str, Any]) -> dict[str, Any]:
        ws_base = self.base_url.replace("http://", "ws://").removesuffix("api/")
        return {"url": f"{ws_base}socket?ticket={next(self._ts)}"}

    async def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        workspace = _CALLER.get()
        return {
            "url": f"https://{workspace.team_id.lower()}.slack.local/",
            "team": workspace.name,
            "user": "tutor",
            "team_id": workspace.team_id,
            "user_id": workspace.bot_user_id,
            "bot_id": workspace.bot_id,
            **({"enterprise_id": workspace.enterprise_id} if workspace.enterprise_id else {}),
            "is_enterprise_install": False,
        }

    async def _auth_revoke(self, args: dict[str, Any]) -> dict[str, Any]:
        self.uninstall(_CALLER.get().team_id)
        return {"revoked": True}

    async def _oauth_access(self, args: dict[str, Any]) -> dict[str, Any]:
        """The documented answer of oauth.v2.access: a new bot token for the workspace."""
        grant = self._grants.pop(str(args.get("code") or ""), None)
        if grant is None:
            raise SlackError("invalid_code")
        if grant.redirect_uri is not None and args.get("redirect_uri") != grant.redirect_uri:
            raise SlackError("bad_redirect_uri")
        workspace = self.workspaces[grant.team_id]
        if workspace.token is not None:
            workspace.revoked.add(workspace.token)
        workspace.token = f"xoxb-{workspace.team_id}-{next(self._ts)}"
        workspace.scopes = grant.scopes
        enterprise = (
            {"id": workspace.enterprise_id, "name": f"Org {workspace.enterprise_id}"}
            if workspace.enterprise_id
            else None
        )
        return {
            "access_token": workspace.token,
            "token_type": "bot",
            "scope": ",".join(grant.scopes),
            "bot_user_id": workspace.bot_user_id,
            "app_id": self.app_id,
            "team": None if grant.org_wide else {"id": workspace.team_id, "name": workspace.name},
            "enterprise": enterprise,
            "authed_user": {"id": grant.user_id},
            "is_enterprise_install": grant.org_wide,
        }

    async def _handle_authorize(self, request: web.Request) -> web.Response:
        """Slack's approval page, approved at once: back to the app with a code and the
        state, for the workspace named by `team` (else the first)."""
        query = request.query
        if query.get("client_id") != self.client_id:
            return web.Response(status=400, text="invalid_client_id")
        scopes = tuple(s for s in query.get("scope", "").split(",") if s)
        if not scopes:
            return web.Response(status=400, text="invalid_scope")
        team_id = query.get("team") or next(iter(self.workspaces))
        if team_id not in self.workspaces:
            return web.Response(status=400, text="team_not_found")
        redirect_uri = query.get("redirect_uri")
        target = redirect_uri or self.redirect_url
        if not target:
            return web.Response(status=400, text="no_redirect_url")
        code = self.grant(team_id, scopes, redirect_uri=redirect_uri)
        location = f"{target}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        return web.Response(status=302, headers={"Location": location})

    def _next_ts(self) -> str:
        return f"1800000000.{next(self._ts):06d}"

    def _check_channel(self, channel: str) -> None:
        if not channel:
            raise SlackError("channel_not_found")
        if self.channel_teams.get(channel, _CALLER.get().team_id) != _CALLER.get().team_id:
            raise SlackError("channel_not_found")  # another workspace's channel
        if channel in self.missing_channels:
            raise SlackError("channel_not_found")
        if channel in self.channels_without_bot:
            raise SlackError("not_in_channel")

    async def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        self._check_channel(channel)
        text, blocks, markdown_text = _content(args)
        message = Message(
            channel=channel,
            ts=self._next_ts(),
            text=text,
            thread_ts=args.get("thread_ts") or None,
            blocks=blocks,
            markdown_text=markdown_text,
            user=_CALLER.get().bot_user_id,
            bot_id=_CALLER.get().bot_id,
            metadata=_json_arg(args.get("metadata")),
            team=_CALLER.get().team_id,
        )
        message.edits.append(shown_text(message))
        self.messages[(channel, message.ts)] = message
        return {"channel": channel, "ts": message.ts, "message": _as_json(message)}

    async def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find(args)
        text, blocks, markdown_text = _content(args, keep_blocks=message.blocks)
        message.text, message.blocks, message.markdown_text = text, blocks, markdown_text
        message.edits.append(shown_text(message))
        return {"channel": message.channel, "ts": message.ts, "text": message.text}

    async def _delete(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find(args)
        message.deleted = True
        return {"channel": message.channel, "ts": message.ts}

    async def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self._check_channel(str(args.get("channel", "")))
        if not args.get("user"):
            raise SlackError("user_not_in_channel")
        self.ephemerals.append(args)
        return {"message_ts": self._next_ts()}

    async def _permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find({"channel": args.get("channel"), "ts": args.get("message_ts")})
        return {"channel": message.channel, "permalink": f"https://slack.local/{message.ts}"}

    async def _conversation_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel in self.missing_channels:
            raise SlackError("channel_not_found")
        is_im = channel.startswith("D")
        is_member = channel not in self.channels_without_bot
        return {"channel": {"id": channel, "is_im": is_im, "is_member": is_member}}

    async def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages, newest first (only those the bot posted are known here)."""
        channel = str(args.get("channel", ""))
        self._check_channel(channel)
        found = list(reversed(self.channel_top_level(channel)))[: int(args.get("limit") or 100)]
        return {"messages": [_as_json(m, args) for m in found], "has_more": False}

    async def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread's messages, oldest first."""
        channel = str(args.get("channel", ""))
        self._check_channel(channel)
        found = self.thread(channel, str(args.get("ts", "")))[: int(args.get("limit") or 100)]
        return {"messages": [_as_json(m, args) for m in found], "has_more": False}

    async def _user_info(self, args: dict[str, Any]) -> dict[str, Any]:
        """A user as Slack describes one; owners are admins too, as in Slack."""
        user = str(args.get("user", ""))
        primary = user == self.primary_owner
        owner = primary or user in self.workspace_owners
        return {
            "user": {
                "id": user,
                "team_id": self.team_id,
                "name": user.lower(),
                "deleted": False,
                "real_name": user,
                "tz": "UTC",
                "tz_label": "Coordinated Universal Time",
                "tz_offset": 0,
                "is_admin": owner or user in self.workspace_admins,
                "is_owner": owner,
                "is_primary_owner": primary,
                "is_restricted": False,
                "is_ultra_restricted": False,
                "is_bot": user == self.bot_user_id,
                "is_app_user": False,
                "updated": 1_700_000_000,
            }
        }

    async def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        """A page of members from `cursor` on (Slack's cursors are opaque strings)."""
        cursor = str(args.get("cursor") or "")
        start = int(cursor.removeprefix("users:")) if cursor.startswith("users:") else 0
        if cursor and not cursor.startswith("users:"):
            raise SlackError("invalid_cursor")
        limit = int(args.get("limit") or 0) or USERS_LIST_LIMIT
        page = self.users[start : start + min(limit, USERS_LIST_LIMIT)]
        end = start + len(page)
        next_cursor = f"users:{end}" if end < len(self.users) else ""
        return {"members": page, "cache_ts": int(time.time()),
                "response_metadata": {"next_cursor": next_cursor}}  # fmt: skip

    async def _open_conversation(self, args: dict[str, Any]) -> dict[str, Any]:
        """The bot's DM with one user (`users`), opened if it was not."""
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if len(users) != 1:
            raise SlackError("not_enough_users" if not users else "too_many_users")
        if not any(user["id"] == users[0] for user in self.users):
            raise SlackError("user_not_found")
        return {"channel": {"id": "D" + users[0].removeprefix("U")}}

    async def _start_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        self._check_channel(channel)
        if not args.get("thread_ts"):
            raise SlackError("invalid_arguments")
        if not channel.startswith("D") and not (
            args.get("recipient_user_id") and args.get("recipient_team_id")
        ):
            raise SlackError("missing_recipient_user_id")
        message = Message(
            channel=channel,
            ts=self._next_ts(),
            thread_ts=str(args["thread_ts"]),
            markdown_text=str(args.get("markdown_text") or ""),
            user=_CALLER.get().bot_user_id,
            bot_id=_CALLER.get().bot_id,
            streamed=True,
            stream_open=True,
            team=_CALLER.get().team_id,
        )
        _take_chunks(message, args)
        self.messages[(channel, message.ts)] = message
        return {"channel": channel, "ts": message.ts}

    async def _append_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find(args)
        if not message.stream_open:
            raise SlackError("message_not_in_streaming_state")
        message.markdown_text = (message.markdown_text or "") + str(args.get("markdown_text") or "")
        _take_chunks(message, args)
        return {"channel": message.channel, "ts": message.ts}

    async def _stop_stream(self, args: dict[str, Any]) -> dict[str, Any]:
        message = self._find(args)
        if not message.stream_open:
            raise SlackError("message_not_in_streaming_state")
        session_status = args.get("session_status")
        if session_status is not None and session_status not in SESSION_STATUSES:
            raise SlackError("invalid_arguments")
        message.markdown_text = (message.markdown_text or "") + str(args.get("markdown_text") or "")
        _take_chunks(message, args)
        blocks = _json_arg(args.get("blocks"))
        if blocks:  # "rendered at the bottom of the finalized message"
            message.blocks = blocks
        message.stream_open = False
        if session_status is not None and self.agent_app and message.thread_ts:
            self._session(message.channel, message.thread_ts).status = str(session_status)
        message.edits.append(shown_text(message))
        return {"channel": message.channel, "ts": message.ts, "message": _as_json(message)}

    async def _set_session_status(self, args: dict[str, Any]) -> dict[str, Any]:
        """agents.sessions.setStatus: creates the thread's session if needed; a title is
        used only on creation. Free text as a status is invalid_arguments."""
        if not self.agent_app:
            raise SlackError("not_authorized")
        status = args.get("status")
        channel, thread_ts = str(args.get("channel_id") or ""), str(args.get("thread_ts") or "")
        if status not in SESSION_STATUSES or not channel or not thread_ts:
            raise SlackError("invalid_arguments")
        self._check_channel(channel)
        title = args.get("title")
        if title is not None and len(str(title)) > SESSION_TITLE_LIMIT:
            raise SlackError("invalid_arguments")
        session = self.agent_sessions.get((channel, thread_ts))
        if session is None:
            initiator = args.get("initiator_user_id")
            session = AgentSession(
                str(status), str(title) if title else None, str(initiator) if initiator else None
            )
            self.agent_sessions[(channel, thread_ts)] = session
        session.status = str(status)
        return {"status": session.status, "title": session.title or ""}

    async def _rename_session(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self.agent_app:
            raise SlackError("not_authorized")
        title = str(args.get("title") or "")
        key = (str(args.get("channel_id") or ""), str(args.get("thread_ts") or ""))
        if not key[0] or not 1 <= len(title) <= SESSION_TITLE_LIMIT:
            raise SlackError("invalid_arguments")
        session = self.agent_sessions.get(key)
        if session is None:
            raise SlackError("session_not_found")
        session.title = title
        return {"title": title}

    async def _open_view(self, args: dict[str, Any]) -> dict[str, Any]:
        """views.open: a modal, for the user whose interaction gave the trigger_id."""
        try:
            view = parse_view(args.get("view"))
            check_view(view, "modal")
            user_id = self.triggers.exchange(str(args.get("trigger_id") or ""))
        except ViewRefused as refused:
            raise SlackError(refused.code) from None
        opened = stored_view(view, self.team_id)
        self.modals[opened["id"]] = (user_id, opened)
        return {"view": opened}

    async def _publish_view(self, args: dict[str, Any]) -> dict[str, Any]:
        """views.publish: a user's Home tab (the last one published is what they see)."""
        user_id = str(args.get("user_id") or "")
        try:
            view = parse_view(args.get("view"))
            check_view(view, "home")
        except ViewRefused as refused:
            raise SlackError(refused.code) from None
        if not user_id:
            raise SlackError("invalid_arguments")
        previous = self.home_views.get(user_id)
        published = stored_view(view, self.team_id, view_id=previous["id"] if previous else None)
        self.home_views[user_id] = published
        return {"view": published}

    def _session(self, channel: str, thread_ts: str) -> AgentSession:
        return self.agent_sessions.setdefault((channel, thread_ts), AgentSession("active"))

    def add_file(
        self, name: str, mimetype: str, data: bytes, *, user_id: str = "U1"
    ) -> dict[str, Any]:
        """A file a person shares with a message; as the event's `files` array shows it."""
        info = self.upload_file(name, data, user_id=user_id)
        info["mimetype"] = mimetype
        return info

    def _find(self, args: dict[str, Any]) -> Message:
        key = (str(args.get("channel", "")), str(args.get("ts", "")))
        message = self.messages.get(key)
        if message is None or message.deleted or message.team != _CALLER.get().team_id:
            raise SlackError("message_not_found")
        return message


def _content(
    args: dict[str, Any], keep_blocks: list[dict[str, Any]] | None = None
) -> tuple[str, list[dict[str, Any]] | None, str | None]:
    """(text, blocks, markdown_text) of a post or update, checked like Slack checks them.

    An update that does not mention `blocks` keeps the message's blocks, as Slack does.
    """
    markdown_text = args.get("markdown_text")
    text = str(args.get("text") or "")
    blocks = args.get("blocks", keep_blocks)
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if markdown_text is not None and (text or blocks):
        raise SlackError("markdown_text_conflict")
    if markdown_text is None and not text and not blocks:
        raise SlackError("no_text")
    if markdown_text is not None and len(str(markdown_text)) > 12_000:
        raise SlackError("msg_too_long")
    return text[:TEXT_LIMIT], blocks, None if markdown_text is None else str(markdown_text)


def _take_chunks(message: Message, args: dict[str, Any]) -> None:
    """A stream call's chunks: kept in order; `markdown_text` chunks add to the text."""
    chunks = _json_arg(args.get("chunks")) or []
    for chunk in chunks:
        if chunk.get("type") == "task_update" and chunk.get("status") not in TASK_STATUSES:
            raise SlackError("invalid_chunks")
        if chunk.get("type") == "markdown_text":
            message.markdown_text = (message.markdown_text or "") + str(chunk.get("text") or "")
        message.chunks.append(chunk)


def _json_arg(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _as_json(message: Message, args: dict[str, Any] | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "type": "message",
        "ts": message.ts,
        "user": message.user,
        "bot_id": message.bot_id,
        "text": message.markdown_text or message.text,
    }
    if message.thread_ts:
        shown["thread_ts"] = message.thread_ts
    if message.blocks:
        shown["blocks"] = message.blocks
    wants_metadata = str((args or {}).get("include_all_metadata", "")).lower() in ("1", "true")
    if message.metadata and wants_metadata:
        shown["metadata"] = message.metadata
    return shown


def _client_credentials(header: str, args: dict[str, Any]) -> tuple[str, str]:
    """(client_id, client_secret) from HTTP Basic auth (what slack_sdk sends) or the form."""
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header.removeprefix("Basic ").strip()).decode()
        except ValueError:
            return "", ""
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return str(args.get("client_id", "")), str(args.get("client_secret", ""))


async def _arguments(request: web.Request) -> dict[str, Any]:
    """Query string, form and JSON arguments merged (slack_sdk uses all three)."""
    args: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                args.update(body)
        else:
            args.update(await request.post())
    return {key: value for key, value in args.items() if key != "token" or value}


async def _serve(port: int) -> None:
    stand_in = SlackStandIn()
    print(await stand_in.start(port=port), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await stand_in.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Local stand-in for the Slack Web API")
    parser.add_argument("--port", type=int, default=8766)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
