"""Many machines on a real Redis Cluster: 2 `web` and 2 `worker` processes, the turn queue in
4 shards, a master failing over in the middle of a soak: nothing lost, nothing twice, every
conversation answered in order."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from bot.local.openai_api import OpenAIStandIn
from bot.local.slack_api import SlackStandIn
from bot.local.slack_events import SlackEventSender
from bot.slack.conversation_keys import thread_key
from bot.storage.keys import Keys
from tests.cluster import RedisCluster
from tests.conftest import free_port
from tests.e2e.conftest import SIGNING_SECRET
from tests.e2e.processes import bot_environment, stop_bot, wait_healthy

CHANNEL = "C700"
CONVERSATIONS = 8
MESSAGES = 4
SHARDS = 4


async def start_role(
    role: str, slack: SlackStandIn, openai: OpenAIStandIn, cluster: RedisCluster, prefix: str,
    name: str, cwd: Path,
) -> tuple[asyncio.subprocess.Process, int]:  # fmt: skip
    port = free_port()
    env = {
        **bot_environment(slack, openai, port),
        "REDIS_URL": cluster.url,
        "TUTOR_REDIS_CLUSTER": "on",
        "TUTOR_REDIS_SHARDS": str(SHARDS),
        "TUTOR_REDIS_PREFIX": prefix,
        "TUTOR_WORKER_NAME": name,
        "TUTOR_LEASE_SECONDS": "6",  # renewed every 2 s: room for a loaded machine
        "TUTOR_START_CHECKS": "off",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", role, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    return process, port


async def test_two_web_and_two_worker_processes_on_a_cluster_through_a_failover(
    stand_ins: tuple[SlackStandIn, OpenAIStandIn],
    redis_cluster: RedisCluster,
    redis_prefix: str,
    tmp_path: Path,
) -> None:
    slack, openai = stand_ins
    openai.queued_seconds, openai.in_progress_seconds = 0.02, 0.05
    roles = ["web", "web", "worker", "worker"]
    started = await asyncio.gather(
        *(
            start_role(role, slack, openai, redis_cluster, redis_prefix, f"{role}{i}", tmp_path)
            for i, role in enumerate(roles)
        )
    )
    processes = [process for process, _ in started]
    senders: list[SlackEventSender] = []
    roots: dict[int, str] = {}
    failed_over = asyncio.Event()
    try:
        await asyncio.gather(*(wait_healthy(port, process) for process, port in started))
        senders = [
            SlackEventSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET)
            for _, port in started[:2]
        ]

        def fail_over_shard_of(conversation_key: str) -> None:
            stream = Keys(redis_prefix, SHARDS, cluster=True).ready_stream_of(conversation_key)
            redis_cluster.fail_over(redis_cluster.replica_serving(stream))

        async def converse(c: int) -> None:
            for m in range(1, MESSAGES + 1):
                if m == 2 and c == CONVERSATIONS // 2 and not failed_over.is_set():
                    failed_over.set()
                    # The master of this conversation's queue shard hands over to its
                    # replica while turns come and go.
                    await asyncio.to_thread(fail_over_shard_of, thread_key("T1", CHANNEL, roots[c]))
                message = {"ts": senders[0].next_ts()}
                if m > 1:
                    message["thread_ts"] = roots[c]
                else:
                    roots[c] = message["ts"]
                # Slack delivers each event to one web process, and again to the other (a
                # retry): the second is a repeat.
                for attempt, sender in enumerate((senders[(c + m) % 2], senders[(c + m + 1) % 2])):
                    retry = {"retry_num": attempt} if attempt else {}
                    status, _, _ = await sender.mention(
                        CHANNEL, f"U{c}", f"<@UBOT> c{c} m{m}", event_id=f"Ev_cl_{c}_{m}",
                        **message, **retry,
                    )  # fmt: skip
                    assert status == 200

        await asyncio.gather(*(converse(c) for c in range(CONVERSATIONS)))
        assert failed_over.is_set()

        def answers(c: int) -> list[str]:
            return [slack.visible_text(CHANNEL, m.ts) for m in slack.thread(CHANNEL, roots[c])]

        def finished() -> bool:
            return all(
                len(answers(c)) >= MESSAGES and not any("Thinking" in a for a in answers(c))
                for c in range(CONVERSATIONS)
            )

        await slack.wait_for(finished, timeout=90)
    finally:
        for sender in senders:
            await sender.close()
        outputs = await asyncio.gather(*(stop_bot(process) for process in processes))
        for role, output in zip(roles, outputs, strict=True):
            for line in output.splitlines():  # shown if the test fails
                if " INFO " not in line and " DEBUG " not in line:
                    print(role, line)

    lost = duplicated = out_of_order = 0
    wrong: list[str] = []
    for c in range(CONVERSATIONS):
        got = answers(c)
        expected = [f"Answer {m}: c{c} m{m}" for m in range(1, MESSAGES + 1)]
        duplicated += max(0, len(got) - MESSAGES)
        lost += sum(1 for e in expected if e not in got)
        # The model numbers its answers by the questions it has seen: in order, the m-th
        # question gets "Answer m".
        answered = [re.match(r"^Answer (\d+): c\d+ m(\d+)$", a) for a in got]
        out_of_order += any(m is None or m[1] != m[2] for m in answered)
        if got != expected:
            wrong.append(f"c{c}: {got}")
    assert (lost, duplicated, out_of_order) == (0, 0, 0), "\n".join(wrong)
