"""What operators watch: turns by outcome, latencies, the queue, API errors, tokens.

One `Metrics` per bot, on its own prometheus_client registry (not the global one), so
several bots in one process (tests, benchmarks) each count only their own. It is handed to
the pieces that report (the engine, the worker, the API clients) and rendered by
`GET /metrics` in Prometheus' text format, or OpenMetrics when the scraper asks for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

from bot.backends.base import Usage

# Seconds, from a quick answer to a run that hits the default two-minute timeout.
TURN_BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 20, 30, 45, 60, 90, 120, 180)
# Seconds the bot itself adds to a turn (everything but the model's work): small.
OVERHEAD_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30)
TOKEN_KINDS = ("input", "cached_input", "output")


class Metrics:
    """The bot's metrics; each reporting method is cheap and never raises."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.turns = Counter(
            "tutor_turns", "Turns ended, by outcome", ["outcome"], registry=self.registry
        )
        self.turn_seconds = Histogram(
            "tutor_turn_seconds",
            "From the question's arrival to the end of its turn (waiting behind earlier "
            "questions of its conversation included)",
            buckets=TURN_BUCKETS,
            registry=self.registry,
        )
        self.overhead_seconds = Histogram(
            "tutor_overhead_seconds",
            "Time a turn spent outside the model's run: recording, queueing for a free "
            "slot, creating the conversation and message, delivering the answer",
            buckets=OVERHEAD_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "tutor_queue_depth",
            "Conversations with questions waiting or being answered, across all processes",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "tutor_turns_in_flight",
            "Conversations this process is answering now",
            registry=self.registry,
        )
        self.api_errors = Counter(
            "tutor_api_errors",
            "Failed calls to Slack and the model server, by service and error code "
            "(retried attempts included)",
            ["service", "code"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "tutor_tokens",
            "Tokens the model server billed, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.refused = Counter(
            "tutor_questions_refused",
            "Questions the guards refused, by reason (workspace, channel, user, too_long, "
            "rate, conversation_full, user_full)",
            ["reason"],
            registry=self.registry,
        )

    def turn_ended(self, outcome: str, seconds: float, model_seconds: float) -> None:
        """A turn ended `seconds` after its question arrived, `model_seconds` of it in the run."""
        self.turns.labels(outcome).inc()
        self.turn_seconds.observe(max(seconds, 0.0))
        self.overhead_seconds.observe(max(seconds - model_seconds, 0.0))

    def question_refused(self, reason: str) -> None:
        self.refused.labels(reason).inc()

    def api_error(self, service: str, code: str) -> None:
        self.api_errors.labels(service, code).inc()

    def tokens_used(self, usage: Usage) -> None:
        """Count a run's tokens; `input` includes the cached ones, as the APIs bill them."""
        self.tokens.labels("input").inc(usage.input_tokens)
        self.tokens.labels("cached_input").inc(usage.cached_tokens)
        self.tokens.labels("output").inc(usage.output_tokens)

    async def render(
        self, accept: str | None, refresh: Callable[[], Awaitable[None]] | None = None
    ) -> tuple[bytes, str]:
        """The body and content type for a scrape; `refresh` updates gauges read from Redis."""
        if refresh is not None:
            await refresh()
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
