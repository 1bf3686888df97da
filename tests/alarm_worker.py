"""An alarm process for the kill test: the real sweeps and dispatcher, on the system clock.

``python -m tests.alarm_worker DATABASE_URL TWILIO_URL ACCOUNT_SID AUTH_TOKEN`` runs what the
scheduler runs (missed-dose sweep, escalation, dispatch) in a tight loop, with a 2-second outbox
lease so that a row left 'sending' by a killed process is taken over quickly.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta
from zoneinfo import ZoneInfo

from alarms.escalation import run_escalations
from alarms.missed import sweep_missed_doses
from alarms.outbox import Dispatcher
from alarms.twilio_notifier import TwilioNotifier
from dosewatch.clock import SystemClock
from dosewatch.db.pool import make_pool

FROM, PUBLIC = "+46101234567", "https://dosewatch.example.se"


def main() -> None:
    db_url, api_url, sid, token = sys.argv[1:5]
    pool = make_pool(db_url, max_size=2, name="alarm-worker")
    clock = SystemClock()
    notifier = TwilioNotifier(sid, token, FROM, PUBLIC, api_url=api_url)
    # A short lease and bundle window: the test runs on the real clock and must not wait
    # a minute for either.
    dispatcher = Dispatcher(
        pool,
        clock,
        notifier,
        ZoneInfo("Europe/Stockholm"),
        lease=timedelta(seconds=2),
        bundle_window=timedelta(seconds=1),
    )
    print("ready", flush=True)
    while True:
        sweep_missed_doses(pool, clock, batch=50)
        run_escalations(pool, clock, batch=50)
        dispatcher.run(batch=20)
        time.sleep(0.05)


if __name__ == "__main__":
    main()
