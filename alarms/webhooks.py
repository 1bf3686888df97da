"""Webhooks out: fan queued alarm events out to subscriptions, then deliver them, signed.

Deliveries are made by :func:`alarms.fanout.fan_out`; :class:`WebhookDispatcher`, safe in any
number of processes, claims due deliveries under a lease, POSTs each with no lock held,
  and records the answer. 2xx is delivered. A transient failure (network, timeout, 408, 429,
  5xx) is retried with :mod:`dosewatch.domain.retry`'s backoff; any other 4xx, or the retries
  exhausted, marks it ``failed`` — shown in ``GET /api/v1/webhooks/{id}/deliveries`` and
  counted in ``/api/v1/health``, never silently dropped.

The HTTP client is the one seam (an ``httpx.Client``; tests may give it a mock transport).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import httpx
from psycopg_pool import ConnectionPool

from dosewatch.clock import Clock
from dosewatch.db import webhooks as webhook_sql
from dosewatch.domain import webhooks
from dosewatch.domain.retry import Failure, is_permanent, next_attempt

log = logging.getLogger(__name__)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class WebhookDispatcher:
    def __init__(
        self,
        pool: ConnectionPool,
        clock: Clock,
        client: httpx.Client | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._pool, self._clock, self._jitter = pool, clock, jitter
        self._client = client or httpx.Client(timeout=TIMEOUT, follow_redirects=False)

    def run(self, batch: int = 100) -> int:
        handled = 0
        while True:
            with self._pool.connection() as conn, conn.transaction():
                due = webhook_sql.claim(conn, self._clock.now(), batch)
            for delivery in due:
                self._deliver(delivery)
            handled += len(due)
            if len(due) < batch:
                return handled

    def _deliver(self, d: webhook_sql.Delivery) -> None:
        body = webhooks.body_bytes(d.payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "dosewatch-webhooks",
            webhooks.SIGNATURE_HEADER: webhooks.sign(d.secret, body, self._clock.now()),
            webhooks.EVENT_ID_HEADER: d.event_id,
            webhooks.EVENT_TYPE_HEADER: d.event_type,
        }
        try:
            response = self._client.post(d.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self._failed(d, Failure(None, message=f"{type(exc).__name__}: {exc}"))
            return
        if 200 <= response.status_code < 300:
            with self._pool.connection() as conn, conn.transaction():
                webhook_sql.record_sent(conn, d.id, response.status_code, self._clock.now())
            return
        status = response.status_code
        # 408 and 429 are "try later"; the retry rules treat other 4xx as permanent.
        failure = Failure(503 if status == 408 else status, message=response.text[:200])
        self._failed(d, failure)

    def _failed(self, d: webhook_sql.Delivery, failure: Failure) -> None:
        now = self._clock.now()
        retry_at = None if is_permanent(failure) else next_attempt(d.attempts, now, self._jitter())
        if retry_at is None:
            log.warning(
                "webhook %s to %s given up after %d attempt(s): %s %s",
                d.event_id, d.url, d.attempts, failure.status, failure.message,
            )  # fmt: skip
        with self._pool.connection() as conn, conn.transaction():
            webhook_sql.record_failure(
                conn, d.id, failure.status, failure.message or str(failure.status), retry_at
            )

    def close(self) -> None:
        self._client.close()
