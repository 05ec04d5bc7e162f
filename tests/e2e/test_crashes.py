"""Real processes killed with SIGKILL: turns are finished by the next process, exactly once."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path

import aiohttp
import pytest

from bot.backends.chat_history import ChatHistoryStore
from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.local.slack_events import SlackEventSender
from bot.storage.connection import connect
from bot.storage.keys import WORKER_GROUP, Keys
from tests.conftest import RedisServer, free_port
from tests.e2e.conftest import SIGNING_SECRET
from tests.e2e.processes import bot_environment, run_bot, stop_bot, wait_healthy
from tests.malformed_requests import MALFORMED

CHANNEL = "C500"
# The soak's Slack: what a bot did not acknowledge (a 503 while Redis is away) is delivered
# again, up to this many times, this long apart (Slack: at once, after 1 and 5 minutes).
REDELIVERIES = 40
REDELIVER_AFTER_SECONDS = 0.5
OUTAGE_SECONDS = 2.0


class BotProcess:
    """One `python -m bot` with a fixed worker name, restartable after a kill."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.port = int(env["PORT"])
        self.process: asyncio.subprocess.Process | None = None
        self.events = SlackEventSender(f"http://127.0.0.1:{self.port}/slack/events", SIGNING_SECRET)

    async def start(self) -> None:
        self.process = await run_bot(self.env, self.cwd)
        await wait_healthy(self.port, self.process)

    async def kill(self) -> None:
        assert self.process is not None
        await stop_bot(self.process, signal.SIGKILL)

    async def stop(self) -> str:
        await self.events.close()
        return await stop_bot(self.process) if self.process else ""


def process_env(
    slack: SlackStandIn,
    openai: OpenAIStandIn,
    redis: RedisServer,
    prefix: str,
    name: str,
    lease_seconds: float = 1,
) -> dict[str, str]:
    return {
        **bot_environment(slack, openai, free_port()),
        "REDIS_URL": redis.url,
        "TUTOR_REDIS_PREFIX": prefix,
        "TUTOR_WORKER_NAME": name,
        "TUTOR_LEASE_SECONDS": str(lease_seconds),
        "TUTOR_POLL_INTERVAL": "0.05",
        # These tests count the requests each turn makes; the doctor's probes are not turns.
        "TUTOR_START_CHECKS": "off",
    }


@pytest.mark.parametrize("streaming", ["edit", "native"])
async def test_sigkill_mid_run_then_restart_completes_the_same_placeholder(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn],
    redis_server: RedisServer,
    redis_prefix: str,
    tmp_path: Path,
    streaming: str,
) -> None:
    """Killed while the answer was being shown (in the placeholder, or in a Slack stream)."""
    slack, openai = stand_ins
    env = process_env(slack, openai, redis_server, redis_prefix, "w1")
    bot = BotProcess({**env, "TUTOR_STREAMING": streaming}, tmp_path)
    shown_by = "chat.delete" if streaming == "native" else "chat.update"  # placeholder gone
    await bot.start()
    try:
        _, _, ts = await bot.events.mention(CHANNEL, "U1", "<@UBOT> [slow:2] Who was Solon?")
        await slack.wait_for(
            lambda: openai.count("POST", r"/responses$") == 1 and bool(slack.calls_to(shown_by)),
            timeout=45,
        )
        await bot.kill()
        [placeholder] = slack.thread(CHANNEL, ts)
        if streaming == "native":
            assert placeholder.stream_open, "the dead process left its stream open"
        else:
            assert "thinking" in slack.visible_text(CHANNEL, placeholder.ts).lower()

        await bot.start()
        await slack.wait_for(
            lambda: slack.visible_text(CHANNEL, placeholder.ts) == "Answer 1: Who was Solon?",
            timeout=45,
        )
    finally:
        await bot.stop()
    assert slack.thread(CHANNEL, ts) == [placeholder], "the same message was completed"
    assert not placeholder.stream_open
    assert len(slack.calls_to("chat.postMessage")) == 1, "no second placeholder"
    assert openai.count("POST", r"/responses$") == 1, "no second run was started"


async def test_a_run_longer_than_the_lease_still_survives_a_crash(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn],
    redis_server: RedisServer,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    """The worker's periodic claim takes back its own long-running entry; it must stay pending."""
    slack, openai = stand_ins
    env = process_env(slack, openai, redis_server, redis_prefix, "w1")
    bot = BotProcess({**env, "TUTOR_STREAMING": "off"}, tmp_path)
    keys = Keys(redis_prefix)
    redis = connect(redis_server.url)
    await bot.start()
    try:
        _, _, ts = await bot.events.mention(CHANNEL, "U1", "<@UBOT> [slow:6] Who was Cleisthenes?")

        async def entry_claimed_again_or_gone() -> bool:
            pending = await redis.xpending_range(keys.ready_stream(0), WORKER_GROUP, "-", "+", 10)
            return not pending or pending[0]["times_delivered"] >= 2

        deadline = asyncio.get_running_loop().time() + 20
        while not await entry_claimed_again_or_gone():
            assert asyncio.get_running_loop().time() < deadline, "the entry was never claimed"
            await asyncio.sleep(0.05)
        await bot.kill()

        await bot.start()
        await slack.wait_for(
            lambda: any(
                "Answer 1: Who was Cleisthenes?" == slack.visible_text(CHANNEL, m.ts)
                for m in slack.thread(CHANNEL, ts)
            ),
            timeout=45,
        )
    finally:
        await bot.stop()
        await redis.aclose()
    assert openai.count("POST", r"/responses$") == 1, "the same response was followed"


@pytest.mark.parametrize("conversations,messages", [(30, 5)])
async def test_soak_every_message_answered_exactly_once_in_order(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn],
    redis_prefix: str,
    tmp_path: Path,
    conversations: int,
    messages: int,
) -> None:
    """Two processes, Slack retries, bursts, injected 429/500s, one SIGKILL, a Redis outage
    and malformed requests."""
    slack, openai = stand_ins
    openai.queued_seconds, openai.in_progress_seconds = 0.02, 0.05
    redis_server = RedisServer(tmp_path / "redis", persistent=True)
    (tmp_path / "redis").mkdir()
    redis_server.start()
    bots = [
        # A lease of 4 s: a loaded test machine's CPU stalls must not look like a dead process.
        BotProcess(
            process_env(slack, openai, redis_server, redis_prefix, f"w{i}", lease_seconds=4),
            tmp_path,
        )
        for i in (1, 2)
    ]
    await asyncio.gather(*(bot.start() for bot in bots))
    # Within the SDK's bounded retries (2), so every message still gets its answer.
    openai.fail_next("POST", r"/responses$", 500, count=1)
    openai.fail_next("POST", r"/responses$", 429, count=1, retry_after=0.05)
    slack.rate_limit("chat.update", count=10, retry_after=1)
    slack.rate_limit("chat.postMessage", count=4, retry_after=1)
    roots: dict[int, str] = {}
    killed = asyncio.Event()

    async def deliver(event_id: str, index: int, **message: object) -> None:
        """Like Slack: deliver, retry once anyway (slow ack), fail over if a bot is down, and
        redeliver what was not acknowledged (Slack waits minutes; the soak less)."""
        acked = False
        for attempt in range(REDELIVERIES):
            first, other = bots[(index + attempt) % 2], bots[(index + attempt + 1) % 2]
            retry = {"retry_num": attempt} if attempt else {}
            try:
                status, _, _ = await first.events.mention(event_id=event_id, **retry, **message)  # type: ignore[arg-type]
                acked = acked or status == 200
            except aiohttp.ClientError:
                pass
            try:
                status, _, _ = await other.events.mention(
                    event_id=event_id, retry_num=attempt + 1, **message
                )  # type: ignore[arg-type]
                acked = acked or status == 200
            except aiohttp.ClientError:
                pass
            if acked:
                return
            await asyncio.sleep(REDELIVER_AFTER_SECONDS)  # Slack's pause before redelivering
        raise AssertionError(f"{event_id} was never acknowledged")

    async def send_malformed(index: int) -> None:
        name, body, content_type = MALFORMED[index % len(MALFORMED)]
        status, _ = await bots[0].events.send_raw(body, content_type)  # the one never killed
        assert 400 <= status < 500, f"{name}: {status}"

    async def redis_outage() -> None:
        redis_server.stop()
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
        redis_server.start()

    async def converse(c: int) -> None:
        for m in range(1, messages + 1):
            if c == conversations // 3 and m == 2 and not outage_done.is_set():
                outage_done.set()
                outages.append(asyncio.ensure_future(redis_outage()))
            if m == 4:
                await send_malformed(c)
            if c == conversations // 2 and m == 3 and not killed.is_set():
                killed.set()
                # At most two failures in a row for any one request, like the POST ones
                # above: the SDK's two retries see every message through.
                openai.fail_next("GET", r"/responses/", 503, count=2)
                await bots[1].kill()
                asyncio.get_running_loop().call_later(1.0, lambda: restarts.append(
                    asyncio.ensure_future(bots[1].start())))  # fmt: skip
            message = {"channel": CHANNEL, "user": f"U{c}", "text": f"<@UBOT> c{c} m{m}",
                       "ts": bots[0].events.next_ts()}  # fmt: skip
            if m > 1:
                message["thread_ts"] = roots[c]
            else:
                roots[c] = str(message["ts"])
            await deliver(f"Ev_soak_{c}_{m}", c + m, **message)

    restarts: list[asyncio.Future[None]] = []
    outages: list[asyncio.Future[None]] = []
    outage_done = asyncio.Event()
    try:
        await asyncio.gather(*(converse(c) for c in range(conversations)))
        await asyncio.gather(*restarts, *outages)

        def answers(c: int) -> list[str]:
            return [slack.visible_text(CHANNEL, m.ts) for m in slack.thread(CHANNEL, roots[c])]

        def finished() -> bool:
            return all(
                len([a for a in answers(c) if "can't take" not in a]) >= messages
                and not any("Thinking" in a for a in answers(c))
                and not any(m.stream_open for m in slack.thread(CHANNEL, roots[c]))
                for c in range(conversations)
            )

        try:
            await slack.wait_for(finished, timeout=60)
        except TimeoutError:
            for c in range(conversations):
                print(c, roots[c], answers(c))
            raise
    finally:
        for bot in bots:
            for line in (await bot.stop()).splitlines():  # shown by pytest when the test fails
                if " INFO " not in line and " DEBUG " not in line:
                    print(bot.env["TUTOR_WORKER_NAME"], line)
        redis_server.stop()

    lost = duplicated = out_of_order = thinking = notices = misplaced = 0
    wrong: list[str] = []
    for c in range(conversations):
        # While Redis was away each conversation had one message on its way: one notice.
        got = [a for a in answers(c) if "can't take questions" not in a]
        notices += len(answers(c)) - len(got)
        if len(answers(c)) - len(got) > 1:
            wrong.append(f"c{c}: more than one notice")
        expected = [f"Answer {m}: c{c} m{m}" for m in range(1, messages + 1)]
        thinking += sum("Thinking" in a for a in got)
        duplicated += max(0, len(got) - messages)
        lost += sum(1 for e in expected if e not in got)
        # The model numbers its answers by the questions it has seen: answered in order,
        # the m-th question gets "Answer m".
        answered = [re.match(r"^Answer (\d+): c\d+ m(\d+)$", a) for a in got]
        out_of_order += any(m is not None and m[1] != m[2] for m in answered)
        # Where each placeholder stands: a crash while one was being posted may leave it
        # posted late, below a later question's (told, not asserted).
        numbers = [int(m[1]) for m in answered if m is not None]
        misplaced += numbers != sorted(numbers)
        if got != expected:
            wrong.append(f"c{c}: {got}")
    total = conversations * messages
    print(
        f"\nsoak: {total} messages in {conversations} conversations, 2 processes, 1 SIGKILL, "
        f"{OUTAGE_SECONDS:g} s without Redis, {conversations} malformed requests: "
        f"{total - lost} answered, {lost} lost, {duplicated} duplicated, "
        f"{out_of_order} conversations out of order, {thinking} left Thinking, "
        f"{notices} notices that Redis was away, {misplaced} conversations with a placeholder "
        "posted late"
    )
    assert (lost, duplicated, out_of_order, thinking) == (0, 0, 0, 0), "\n".join(wrong)


async def test_chat_killed_mid_answer_asks_the_model_again_and_remembers_one_answer(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn],
    redis_server: RedisServer,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    """The `chat` history is the bot's own: a completion lost with its process is asked again."""
    slack, openai = stand_ins
    completions = r"/chat/completions$"
    env = process_env(slack, openai, redis_server, redis_prefix, "w1")
    bot = BotProcess({**env, "TUTOR_BACKEND": "chat", "TUTOR_STREAMING": "off"}, tmp_path)
    held = openai.hold("POST", completions)
    keys = Keys(redis_prefix)
    redis = connect(redis_server.url)
    await bot.start()
    try:
        _, _, ts = await bot.events.mention(CHANNEL, "U1", "<@UBOT> Who was Solon?")
        await slack.wait_for(lambda: bool(slack.thread(CHANNEL, ts)))
        deadline = asyncio.get_running_loop().time() + 20
        while openai.count("POST", completions) < 1:  # the model is answering: held
            assert asyncio.get_running_loop().time() < deadline, "no completion was asked for"
            await asyncio.sleep(0.02)
        await bot.kill()
        [placeholder] = slack.thread(CHANNEL, ts)

        held.set()  # the dead process's completion goes nowhere; the next one is answered
        await bot.start()
        await slack.wait_for(
            lambda: "Thinking" not in slack.visible_text(CHANNEL, placeholder.ts), timeout=45
        )
        conversation = await redis.get(keys.conversation("chat", f"T1:{CHANNEL}:{ts}"))
        stored = await ChatHistoryStore(redis, keys).read(conversation or "")
    finally:
        await bot.stop()
        await redis.aclose()
    assert slack.visible_text(CHANNEL, placeholder.ts) == "Answer 1: Who was Solon?"
    assert slack.thread(CHANNEL, ts) == [placeholder], "answered once, in the same placeholder"
    assert openai.count("POST", completions) == 2, "the model was asked again"
    assert [(m.role, m.content) for m in stored] == [
        ("user", "Who was Solon?"),
        ("assistant", "Answer 1: Who was Solon?"),
    ]
