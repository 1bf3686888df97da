"""When a dispenser counts as offline: one predicate, one default.

A dispenser reports its status every 5 minutes; three missed reports (15 minutes of silence)
mean it is offline — or sooner, when its Last Will (``online = false``) says so. A dispenser
never heard from at all is *not* offline: nothing is known, and for a closing window that means
the safer ``missed`` rather than ``unknown``.

The missed-dose sweep (missed or unknown), the device-alarm sweep (``dispenser_offline``) and the
``DOSEWATCH_OFFLINE_AFTER_MIN`` setting's default all use :data:`OFFLINE_AFTER` and
:func:`is_offline`; where SQL evaluates it set-based, a test runs both on the same cases.
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
