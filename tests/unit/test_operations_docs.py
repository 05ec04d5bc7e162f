"""The dashboard and the alerts read only metrics the bot exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.exposition import generate_latest

from bot.backends.base import Usage
from bot.metrics import Metrics

DOCS = Path(__file__).resolve().parents[2] / "docs"


def exported_names() -> set[str]:
    metrics = Metrics()
    metrics.turn_ended("answered", 1.0, 0.5)
    metrics.api_error("slack", "ratelimited")
    metrics.tokens_used(Usage(10, 5, 2))
    metrics.question_refused("rate")
    text = generate_latest(metrics.registry).decode()
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    return samples | {family.name for family in metrics.registry.collect()}


def test_dashboard_and_alerts_use_exported_metrics() -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    alerts = (DOCS / "operations.md").read_text()
    used = set(re.findall(r"\btutor_[a-z_]+", " ".join(expressions) + alerts))
    assert used, "the dashboard reads the bot's metrics"
    assert used <= exported_names(), used - exported_names()
