"""When a dispenser counts as offline: the predicates, one default.

A dispenser reports its status every 5 minutes; three missed reports (15 minutes of silence)
mean it is offline — or sooner, when its Last Will (``online = false``) says so. A dispenser
never heard from at all is *not* offline: nothing is known, and for a closing window that means
the safer ``missed`` rather than ``unknown``.

Two questions, two functions, one threshold:

* :func:`is_offline` — *is it offline now?* The missed-dose sweep asks this when a window
  closes (missed or unknown): a Last Will counts at once, since a dose taken behind a dead line
  may still be reported.
* :func:`offline_for_alarm` — *has it been offline long enough to call someone?* The
  device-alarm sweep (``dispenser_offline``) asks this: offline for :data:`OFFLINE_AFTER`.

The ``DOSEWATCH_OFFLINE_AFTER_MIN`` setting's default is :data:`OFFLINE_AFTER`; where SQL
evaluates these set-based, a test runs both on the same cases.
"""

from __future__ import annotations

from datetime import datetime, timedelta

OFFLINE_AFTER = timedelta(minutes=15)


def is_offline(
    online: bool | None,
    last_seen_at: datetime | None,
    now: datetime,
    after: timedelta = OFFLINE_AFTER,
) -> bool:
    """Offline by Last Will (``online`` is False), or silent for longer than ``after``."""
    if online is False:
        return True
    return last_seen_at is not None and last_seen_at < now - after


def offline_for_alarm(
    online: bool | None,
    online_changed_at: datetime | None,
    last_seen_at: datetime | None,
    now: datetime,
    after: timedelta = OFFLINE_AFTER,
) -> bool:
    """Offline for ``after`` at least: silent that long, or its Last Will standing that long.

    Why a Last Will must *stand* before anyone is called: the broker publishes the Last Will of
    every connected dispenser when it stops (Mosquitto does, on a restart or an upgrade), and a
    dispenser on a flaky line drops and reconnects within seconds. Those Wills are followed at
    once by the devices' own ``online = 1`` — which the gateway may store seconds later (a
    resumed broker session is held for ``gateway.session.SETTLE_S``). Judged the instant it
    lands, a server-side restart would page a nurse for every dispenser of the fleet; judged
    after ``after``, only a dispenser still gone is flagged, after the same delay a dispenser
    that died without a Will gets (its silence), well inside the 2-hour look-ahead of the
    alarm. A Will of unknown age (no change time) counts as old: never hide a dead dispenser.
    """
    if last_seen_at is not None and last_seen_at < now - after:
        return True
    if online is not False:
        return False
    return online_changed_at is None or online_changed_at <= now - after
