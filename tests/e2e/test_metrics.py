"""GET /metrics: what operators watch, in Prometheus' format, counted from real turns."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.settings import BackendKind
from tests.conftest import RedisServer
from tests.e2e.conftest import running_harness


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_count_turns_latency_tokens_and_api_errors(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    async with running_harness(redis_server.url, redis_prefix, BackendKind.RESPONSES) as h:
        h.openai.fail_next("POST", r"/responses$", 500)  # the SDK retries it
        h.slack.rate_limit("chat.postMessage", retry_after=0)  # slack_sdk retries it
        _, _, ts = await h.events.mention("C1", "U1", "<@UBOT> Who was Hypatia?")
        await h.wait_for_bot_replies("C1", ts, 1)
        await h.wait_idle()
        status, text = await h.get("/metrics")
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                h.base_url + "/metrics", headers={"Accept": "application/openmetrics-text"}
            ) as response,
        ):
            open_metrics = response.headers["Content-Type"]
            assert (await response.text()).rstrip().endswith("# EOF")
    assert status == 200
    found = samples(text)
    assert found[("tutor_turns_total", (("outcome", "answered"),))] == 1
    assert found[("tutor_turn_seconds_count", ())] == 1
    assert found[("tutor_overhead_seconds_count", ())] == 1
    assert found[("tutor_overhead_seconds_sum", ())] <= found[("tutor_turn_seconds_sum", ())]
    assert found[("tutor_api_errors_total", (("code", "500"), ("service", "openai")))] == 1
    assert found[("tutor_api_errors_total", (("code", "ratelimited"), ("service", "slack")))] == 1
    assert found[("tutor_tokens_total", (("kind", "input"),))] > 0
    assert found[("tutor_tokens_total", (("kind", "output"),))] > 0
    assert found[("tutor_queue_depth", ())] == 0
    assert found[("tutor_turns_in_flight", ())] == 0
    assert open_metrics.startswith("application/openmetrics-text")
