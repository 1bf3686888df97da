"""The outbox dispatcher: claim due notifications, send them, record what happened.

Claiming and recording are short transactions; the provider is called in between with no lock
held. SMS alarm notifications due for the same number at the same time are bundled into one
message. A claimed row whose earlier claimant died mid-send (``reclaimed``) is first looked up
at the provider by its ``ref``, so a send that did happen is recorded instead of repeated.

Failures follow :mod:`dosewatch.domain.retry`: transient ones are retried with backoff;
permanent ones (and retries exhausted) mark the row failed and bring the alarm's next step
forward to now, because waiting for a nurse who was never told makes no sense.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg_pool import ConnectionPool

from alarms.notifier import NotificationError, Notifier, Outgoing
from dosewatch import messages
from dosewatch.clock import Clock
from dosewatch.db import escalation as escalation_sql
from dosewatch.db import message_facts
from dosewatch.db import notifications as outbox_sql
from dosewatch.domain.escalation import Channel
from dosewatch.domain.retry import Failure, is_permanent, next_attempt

log = logging.getLogger(__name__)
Row = dict[str, Any]
BUNDLE_MAX = 5
BUNDLE_WINDOW = timedelta(seconds=60)


class Dispatcher:
    def __init__(
        self,
        pool: ConnectionPool,
        clock: Clock,
        notifier: Notifier | None,
        tz: ZoneInfo,
        jitter: Callable[[], float] = random.random,
        lease: timedelta = outbox_sql.LEASE,
        bundle_window: timedelta = BUNDLE_WINDOW,
    ) -> None:
        self._pool, self._clock, self._notifier, self._tz = pool, clock, notifier, tz
        self._jitter, self._lease, self._bundle_window = jitter, lease, bundle_window

    def run(self, batch: int = 200) -> int:
        """Dispatch everything due now; return how many rows were handled."""
        handled = 0
        while True:
            with self._pool.connection() as conn, conn.transaction():
                rows = outbox_sql.claim(conn, self._clock.now(), batch, self._lease)
            for group in self._groups(rows):
                self._dispatch(group)
            handled += len(rows)
            if len(rows) < batch:
                return handled

    def _groups(self, rows: list[Row]) -> list[list[Row]]:
        """One send per row, except alarm SMS to the same number and language: one bundle."""
        bundles: dict[tuple[str, str], list[Row]] = defaultdict(list)
        groups: list[list[Row]] = []
        for row in rows:
            if row["channel"] == "sms" and row["purpose"] == "alarm" and not row["reclaimed"]:
                bundles[(row["to_number"], row["language"])].append(row)
            else:
                groups.append([row])
        for (number, _), bundle in bundles.items():
            if self._hold(number, bundle):
                continue
            # A few alarms per SMS: readable, and one message long.
            groups += [bundle[i : i + BUNDLE_MAX] for i in range(0, len(bundle), BUNDLE_MAX)]
        return groups

    def _hold(self, number: str, bundle: list[Row]) -> bool:
        """Hold alarm SMS for a nurse who had one less than ``bundle_window`` ago, so that what
        arrives meanwhile goes out together in one SMS instead of a burst of beeps. The first
        SMS about a quiet night is never held."""
        now = self._clock.now()
        with self._pool.connection() as conn:
            last = outbox_sql.last_alarm_sms_at(conn, number)
            if last is None or now - last >= self._bundle_window:
                return False
            outbox_sql.postpone(conn, [r["id"] for r in bundle], last + self._bundle_window, now)
        return True

    def _dispatch(self, group: list[Row]) -> None:
        ids = [r["id"] for r in group]
        now = self._clock.now()
        if self._notifier is None:
            with self._pool.connection() as conn:
                outbox_sql.set_status(conn, ids, "skipped", now, "console-only: no SMS provider")
            return
        with self._pool.connection() as conn:
            facts = message_facts.for_notifications(conn, ids)
        links = self._notifier.public_url
        out = self._outgoing(group, [facts[i] for i in ids if i in facts], links)
        try:
            sid = None
            if any(r["reclaimed"] for r in group):
                since = min(r["created_at"] for r in group)
                with self._pool.connection() as conn:
                    known = outbox_sql.sids_sent_to(conn, out.to, since)
                sid = self._notifier.find_sent(out, since, frozenset(known))
            if sid is None:
                sid = self._notifier.send(out)
        except NotificationError as exc:
            self._failed(group, exc, now)
            return
        except Exception as exc:  # noqa: BLE001 - a defect must not stop every other SMS
            # Deliberate: a bug in one message (logged with its traceback) is retried with
            # backoff and then fails that row, so the escalation moves on; letting it escape
            # would stop the dispatcher, and with it every nurse's page.
            log.exception("sending %s failed unexpectedly (a defect)", out.ref)
            self._failed(group, NotificationError(Failure(None, None, str(exc))), now)
            return
        with self._pool.connection() as conn:
            outbox_sql.mark_sent(conn, ids, sid, out.ref, self._clock.now())

    def _outgoing(self, group: list[Row], facts: list[messages.AlarmFacts], links: str) -> Outgoing:
        """The message for one group. What it says about the patient follows the team's
        choice (:mod:`dosewatch.domain.disclosure`); a call's text is only for logs and fakes,
        since the webhook builds the call's script when it is answered."""
        first = group[0]
        language = first["language"]
        purpose = first["purpose"]
        if first["channel"] == "voice":
            body = messages.voice_prompt(language, any(f.training for f in facts))
        elif purpose == "alarm":
            body = messages.alarm_sms(facts, language, self._tz, links)
        elif purpose == "all_clear":
            body = messages.all_clear_sms(facts[0], language, self._tz, links)
        elif purpose == "reminder":
            body = messages.reminder_sms(facts[0], language, links)
        else:  # patient_reminder
            body = messages.patient_reminder_sms(language)
        ref = f"n{first['id']}"
        if first["channel"] == "sms":
            body = messages.with_ref(body, ref)
        return Outgoing(
            channel=Channel(first["channel"]),
            to=first["to_number"],
            body=body,
            notification_ids=tuple(r["id"] for r in group),
            ref=ref,
        )

    def _failed(self, group: list[Row], exc: NotificationError, now: datetime) -> None:
        ids = [r["id"] for r in group]
        attempts = max(r["attempts"] for r in group)
        retry_at = (
            None if is_permanent(exc.failure) else next_attempt(attempts, now, self._jitter())
        )
        with self._pool.connection() as conn, conn.transaction():
            if retry_at is not None:
                log.warning("notification %s failed (%s); retrying at %s", ids, exc, retry_at)
                outbox_sql.mark_retry(conn, ids, retry_at, str(exc), now)
                return
            log.error("notification %s failed for good: %s", ids, exc)
            outbox_sql.set_status(conn, ids, "failed", now, str(exc))
            for alarm_id in {r["alarm_id"] for r in group if r["purpose"] == "alarm"}:
                escalation_sql.advance_now(conn, alarm_id, now)
