"""SCAIP forwarding: claim due forwards, send each over SIP, record the centre's answer.

A ``2xx`` answer means the centre *received* the alarm (its ``mrs`` body, when present, must
not say otherwise); it is recorded as ``received``, and the alarm stays a dosewatch alarm that a
nurse acknowledges. ``408``, ``5xx``, ``6xx`` and no answer at all are retried with the
outboxes' backoff (:mod:`dosewatch.domain.retry`) until they go through or the tries run out;
another ``4xx`` (a wrong URI, a refused sender) is not retried. A forward that is given up stays
listed as ``failed`` (``GET /api/v1/scaip/forwards``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from psycopg_pool import ConnectionPool

from alarms.sip import SipError, SipSender
from dosewatch.clock import Clock
from dosewatch.db import scaip as scaip_sql
from dosewatch.domain import scaip
from dosewatch.domain.retry import Failure, is_permanent, next_attempt

log = logging.getLogger(__name__)


class ScaipForwarder:
    def __init__(
        self, pool: ConnectionPool, clock: Clock, sender: SipSender,
        jitter: Callable[[], float] = random.random,
    ) -> None:  # fmt: skip
        self._pool, self._clock, self._sender, self._jitter = pool, clock, sender, jitter

    def run(self, batch: int = 50) -> int:
        handled = 0
        while True:
            with self._pool.connection() as conn, conn.transaction():
                due = scaip_sql.claim(conn, self._clock.now(), batch)
            for forward in due:
                self._send(forward)
            handled += len(due)
            if len(due) < batch:
                return handled

    def _send(self, f: scaip_sql.Forward) -> None:
        try:
            answer = self._sender.send(f.centre_uri, f.body, scaip.CONTENT_TYPE)
        except SipError as exc:
            self._failed(f, Failure(None, message=str(exc)))
            return
        if 200 <= answer.code < 300:
            reply = scaip.parse_answer(answer.body)
            if reply.snu not in (None, 0):
                self._failed(f, Failure(503, message=f"centre answered snu={reply.snu}"))
                return
            with self._pool.connection() as conn, conn.transaction():
                scaip_sql.record_received(conn, f.id, answer.code, answer.reason, self._clock.now())
            return
        status = 503 if answer.code == 408 or answer.code >= 600 else answer.code
        self._failed(f, Failure(status, message=f"{answer.code} {answer.reason}"))

    def _failed(self, f: scaip_sql.Forward, failure: Failure) -> None:
        now = self._clock.now()
        retry_at = None if is_permanent(failure) else next_attempt(f.attempts, now, self._jitter())
        if retry_at is None:
            log.warning("SCAIP forward %s to %s given up after %d attempt(s): %s",
                        f.ref, f.centre_uri, f.attempts, failure.message)  # fmt: skip
        with self._pool.connection() as conn, conn.transaction():
            scaip_sql.record_failure(conn, f.id, failure.status, failure.message, retry_at)
