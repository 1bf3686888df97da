"""Prometheus metrics of the gateway process.

Counted only after the batch's commit, so a batch retried while the database is down is counted
once, when it lands. Everything is in :data:`REGISTRY` (not prometheus_client's global one), so
the web app can expose it next to its own metrics without name clashes:

- in one process (``dosewatch run``): ``app.mount("/metrics/gateway", gateway.metrics.asgi_app())``;
- a separate ``dosewatch gateway`` process: ``gateway.metrics.serve(port)`` starts a small HTTP
  server for Prometheus to scrape.
"""

from __future__ import annotations

import re
from collections import Counter as Tally
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RECEIVED = Counter(
    "dosewatch_gateway_received",
    "MQTT messages received from the broker (redeliveries included)",
    registry=REGISTRY,
)
STORED = Counter(
    "dosewatch_gateway_stored",
    "messages committed, by kind: event (new), status, online",
    ["kind"],
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "dosewatch_gateway_duplicates",
    "events already stored (same dispenser and event_id): redeliveries and device repeats",
    registry=REGISTRY,
)
# Counts every receipt quarantined in a committed batch, redeliveries included: it measures the
# refused traffic. The quarantine table counts the same receipts on one row per distinct message
# (its ``repeats``), so this counter's total equals the sum of ``repeats``, not the row count.
QUARANTINED = Counter(
    "dosewatch_gateway_quarantined",
    "messages quarantined, by reason (every receipt, redeliveries included)",
    ["reason"],
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "dosewatch_gateway_batch_size",
    "messages per committed batch",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "dosewatch_gateway_batch_seconds",
    "time to write and commit one batch (successful attempt)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
RECEIVE_TO_COMMIT = Histogram(
    "dosewatch_gateway_receive_to_commit_seconds",
    "from a message's arrival in the gateway to its commit (and acknowledgement)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
LAG_MESSAGES = Gauge(
    "dosewatch_gateway_consumer_lag_messages",
    "messages received and not yet committed (unacknowledged to the broker)",
    registry=REGISTRY,
)
LAG_SECONDS = Gauge(
    "dosewatch_gateway_consumer_lag_seconds",
    "age of the oldest message received and not yet committed (0 when none)",
    registry=REGISTRY,
)
DB_RETRIES = Counter(
    "dosewatch_gateway_db_retries",
    "failed batch attempts (database unreachable or refusing); the batch is held and retried",
    registry=REGISTRY,
)
SESSION_YIELDED = Gauge(
    "dosewatch_gateway_session_yielded",
    "1 while this gateway has given up its broker session to another client using the same "
    "client id (DOSEWATCH_MQTT_CLIENT_ID) that was there first: it receives nothing",
    ["client_id"],
    registry=REGISTRY,
)
SESSION_TAKEOVERS = Counter(
    "dosewatch_gateway_session_takeovers",
    "times another client connected with this gateway's client id and took its session",
    ["client_id"],
    registry=REGISTRY,
)
FALLBACKS = Counter(
    "dosewatch_gateway_fallbacks",
    "batches the database refused as a whole, then stored one message at a time (attempts)",
    registry=REGISTRY,
)
BUGS = Counter(
    "dosewatch_gateway_bugs",
    "exceptions that are neither bad input nor a database error: a defect in the gateway;"
    " the batch is quarantined with its raw bytes and the gateway reports itself unhealthy",
    ["where"],
    registry=REGISTRY,
)
HEALTHY = Gauge(
    "dosewatch_gateway_healthy",
    "1 while the gateway has met no bug since it started; 0 after one (page on it)",
    registry=REGISTRY,
)
HEALTHY.set(1)

_REASONS = (
    # Reasons the gateway writes itself come first: their free text may name anything.
    ("gateway_bug", re.compile(r"^gateway bug")),
    ("storage_error", re.compile(r"^storage error")),
    ("unknown_dispenser", re.compile(r"^unknown dispenser")),
    ("spoofed_topic", re.compile(r"differs from payload dispenser_id")),
    ("oversize", re.compile(r"bytes; the limit is")),
    ("not_utf8", re.compile(r"not UTF-8")),
    ("not_json", re.compile(r"not JSON|nested too deeply|must be a JSON object")),
    ("invalid", re.compile(r"^invalid |online payload must be")),
    ("bad_topic", re.compile(r"topic")),
)


def reason_label(reason: str) -> str:
    """A quarantine reason (free text naming the detail) → one of a few fixed labels."""
    for label, pattern in _REASONS:
        if pattern.search(reason):
            return label
    return "other"


def record_batch(outcomes: Tally[str], reasons: Tally[str], size: int, seconds: float) -> None:
    """Count one committed batch (``outcomes`` from write_batch, ``reasons`` its quarantines)."""
    BATCH_SIZE.observe(size)
    BATCH_SECONDS.observe(seconds)
    for outcome, kind in (("stored", "event"), ("status", "status"), ("online", "online")):
        if outcomes.get(outcome):
            STORED.labels(kind).inc(outcomes[outcome])
    if outcomes.get("duplicate"):
        DUPLICATES.inc(outcomes["duplicate"])
    for reason, n in reasons.items():
        QUARANTINED.labels(reason_label(reason)).inc(n)


def asgi_app() -> Any:
    """An ASGI app serving these metrics (mount it in the web app)."""
    from prometheus_client import make_asgi_app

    return make_asgi_app(registry=REGISTRY)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Serve these metrics on ``http://addr:port/`` from a daemon thread."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=addr, registry=REGISTRY)


def value(metric: Any, **labels: str) -> float:
    """A metric's current value (tests and the self-check)."""
    name = metric._name
    sample = REGISTRY.get_sample_value(
        name + ("_total" if isinstance(metric, Counter) else ""), labels or None
    )
    return sample or 0.0
