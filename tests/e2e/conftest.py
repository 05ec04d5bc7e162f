"""The bot in HTTP mode, in this process, against the local Slack and OpenAI stand-ins.

Everything crosses real HTTP through the real SDKs; Redis is the session's redis-server.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import TutorBot
from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import Message, SlackStandIn
from bot.local.slack_events import SlackEventSender
from bot.settings import BackendKind, Settings, StreamingMode
from tests.conftest import RedisServer

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test"
BACKENDS = [BackendKind.ASSISTANTS, BackendKind.RESPONSES, BackendKind.CHAT]
# The request that starts a run, per backend (to fail or hold it at the OpenAI stand-in).
CREATE_PATH = {
    BackendKind.ASSISTANTS: r"/threads/[^/]+/runs$",
    BackendKind.RESPONSES: r"/responses$",
    BackendKind.CHAT: r"/chat/completions$",
}


@dataclass
class Harness:
    """One running bot with its stand-ins; tests drive it like Slack and look like a user."""

    slack: SlackStandIn
    openai: OpenAIStandIn
    settings: Settings
    bot: TutorBot
    events: SlackEventSender
    base_url: str

    async def restart(self, **changes: object) -> None:
        """Stop the bot and start a new one on the same Redis (and prefix)."""
        await self.bot.stop()
        await self.events.close()
        self.settings = dataclasses.replace(self.settings, **changes)  # type: ignore[arg-type]
        self.bot, self.events, self.base_url = await start_bot(self.settings)
        self.events.issue_trigger = self.slack.issue_trigger

    async def wait_for_home(
        self, user: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        """Wait until `user`'s published Home tab satisfies `predicate`; return the view."""

        def ready() -> bool:
            view = self.slack.home_views.get(user)
            return view is not None and predicate(view)

        await self.slack.wait_for(ready, timeout=timeout)
        return self.slack.home_views[user]

    def bot_texts(self, channel: str, thread_ts: str) -> list[str]:
        """What the bot's messages in a thread show now, in order."""
        thread = self.slack.thread(channel, thread_ts)
        return [self.slack.visible_text(channel, m.ts) for m in thread if m.bot_id]

    async def wait_for_text(
        self, channel: str, ts: str, predicate: Callable[[str], bool], timeout: float = 10
    ) -> str:
        """Wait until the message's visible text satisfies `predicate`; return it."""

        def ready() -> bool:
            return (channel, ts) in self.slack.messages and predicate(
                self.slack.visible_text(channel, ts)
            )

        await self.slack.wait_for(ready, timeout=timeout)
        return self.slack.visible_text(channel, ts)

    async def mention_streamed(self, channel: str, user: str, text: str) -> str:
        """Mention the bot with `text` (responses backend, native streaming) and hold the
        answer's text after its first piece until Slack's stream has started: the answer
        streams however slow the machine is (a run over before the bot saw any text is
        rightly posted whole). Returns the thread's root ts."""
        gate = self.openai.hold_answer_text()
        _, _, root = await self.events.mention(channel, user, text)
        await self.slack.wait_for(lambda: bool(self.slack.calls_to("chat.startStream")))
        gate.set()
        return root

    async def wait_for_bot_replies(
        self, channel: str, thread_ts: str, count: int, timeout: float = 10
    ) -> list[Message]:
        """Wait until the thread holds `count` finished bot messages (none says Thinking or
        is still streaming)."""

        def replies() -> list[Message]:
            return [m for m in self.slack.thread(channel, thread_ts) if m.bot_id]

        def ready() -> bool:
            found = replies()
            return len(found) >= count and not any(
                m.stream_open or "thinking" in self.slack.visible_text(channel, m.ts).lower()
                for m in found
            )

        await self.slack.wait_for(ready, timeout=timeout)
        return replies()

    async def native_stop(self, channel: str, thread_ts: str, user: str) -> tuple[int, str]:
        """`user` clicks Slack's own Stop on the thread's agent session: Slack stops the
        app's streams there and sends agent_session_stopped."""
        stopped = self.slack.stop_streams(channel, thread_ts)
        return await self.events.agent_session_stopped(channel, thread_ts, user, stopped)

    async def wait_idle(self) -> None:
        await self.bot.worker.wait_idle()

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(self.base_url + path) as r:
            return r.status, await r.text()


async def start_bot(settings: Settings) -> tuple[TutorBot, SlackEventSender, str]:
    bot = await TutorBot.create(settings)
    port = await bot.start_http(host="127.0.0.1", port=0)
    base_url = f"http://127.0.0.1:{port}"
    return bot, SlackEventSender(base_url + "/slack/events", SIGNING_SECRET), base_url


def bot_settings(
    slack_url: str, openai_url: str, redis_url: str, prefix: str, backend: BackendKind
) -> Settings:
    return Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack_url,
        redis_url=redis_url,
        redis_prefix=prefix,
        openai_api_key="sk-test",
        openai_base_url=openai_url,
        backend=backend,
        poll_interval=0.02,
        run_timeout=10.0,
        openai_timeout=5.0,
        openai_max_retries=2,
        streaming=StreamingMode.OFF,  # the streaming tests turn it on
        # Tests ask many questions as one person, fast: the guards' own tests turn these on.
        user_rate=0,
        max_queued_per_conversation=0,
        max_queued_per_user=0,
    )


@pytest.fixture(params=BACKENDS, ids=[b.value for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> BackendKind:
    return BackendKind(request.param)


@pytest.fixture
async def harness(
    redis_server: RedisServer, redis_prefix: str, backend: BackendKind
) -> AsyncIterator[Harness]:
    async with running_harness(redis_server.url, redis_prefix, backend) as h:
        yield h


class running_harness:
    """Start stand-ins and bot; stop them all on exit, whatever happened."""

    def __init__(self, redis_url: str, prefix: str, backend: BackendKind, **changes: object):
        self._redis_url = redis_url
        self._prefix = prefix
        self._backend = backend
        self._changes = changes

    async def __aenter__(self) -> Harness:
        slack = SlackStandIn(token=BOT_TOKEN)
        openai = OpenAIStandIn(queued_seconds=0.05, in_progress_seconds=0.1)
        slack_url = await slack.start()
        openai_url = await openai.start()
        settings = bot_settings(slack_url, openai_url, self._redis_url, self._prefix, self._backend)
        settings = dataclasses.replace(settings, **self._changes)  # type: ignore[arg-type]
        bot, events, base_url = await start_bot(settings)
        events.issue_trigger = slack.issue_trigger  # views.open checks them as Slack does
        self._harness = Harness(slack, openai, settings, bot, events, base_url)
        return self._harness

    async def __aexit__(self, *exc_info: object) -> None:
        h = self._harness
        await h.bot.stop(grace_seconds=2)
        await h.events.close()
        await h.slack.stop()
        await h.openai.stop()


@contextlib.asynccontextmanager
async def harness_with_own_redis(
    workdir: Path, prefix: str, backend: BackendKind, *, persistent: bool = False, **changes: object
) -> AsyncIterator[tuple[Harness, RedisServer]]:
    """A harness on a redis-server of its own, which the test may stop and start again."""
    own_redis = RedisServer(workdir, persistent=persistent)
    own_redis.start()
    try:
        async with running_harness(own_redis.url, prefix, backend, **changes) as harness:
            yield harness, own_redis
    finally:
        own_redis.stop()


@pytest.fixture
async def stand_ins() -> AsyncIterator[tuple[SlackStandIn, OpenAIStandIn]]:
    slack, openai = SlackStandIn(token=BOT_TOKEN), OpenAIStandIn()
    await slack.start()
    await openai.start()
    yield slack, openai
    await slack.stop()
    await openai.stop()
