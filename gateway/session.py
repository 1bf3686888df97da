"""Who holds the broker session: detect a session taken over, and back off instead of fighting.

The broker keeps one session per client id. When a second client connects with the same id the
broker gives it the session and drops the first: MQTT 5 may say why (DISCONNECT with reason code
0x8E, "Session taken over"); 3.1.1, and Mosquitto 2.0.11 even over MQTT 5, just close the socket.
Two gateways with the same ``DOSEWATCH_MQTT_CLIENT_ID`` on one broker (a staging and a
production installation, say) would take it from each other on every reconnect, and each would
store what it received in its own database.

The rule is that the gateway that was there first keeps the session (:func:`after_disconnect`):

- told of a takeover (0x8E) after holding the session for :data:`SETTLE_S` or more: this
  gateway was first. It reconnects as usual, taking the session back, and logs one warning.
  Without a reason code the first holder cannot tell a takeover from a lost connection; it
  reconnects all the same, which is what makes the newcomer yield;
- dropped within :data:`SETTLE_S` of connecting, by 0x8E or (no reason given) after resuming an
  existing session: another gateway was first and took it back. This one **yields**: one
  ERROR line naming ``DOSEWATCH_MQTT_CLIENT_ID``, the ``dosewatch_gateway_session_yielded``
  metric, its status row set to ``yielded`` (``/api/v1/health`` fails), and it retries after
  30 s, doubling up to 10 min, instead of every second.

Nothing received on a connection that resumed an existing session is stored until that
connection has lasted :data:`SETTLE_S`: that is the only case in which the session may be
someone else's. The messages wait unacknowledged and are dropped if the session is lost in
that time, so the broker delivers them again to the gateway that keeps it; that gateway stores
every event sent to it. A new session holds nobody's messages, so those are stored at once.
Receive times are stamped on arrival, so the wait never makes a dose late (a window that
closes during those seconds may open an alarm, which clears itself when the event lands).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, Generic, Literal, TypeVar

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.reasoncodes import ReasonCode
from psycopg_pool import ConnectionPool, PoolTimeout

from dosewatch.clock import Clock
from dosewatch.db import gateway_sessions
from dosewatch.db.gateway_sessions import GatewaySession
from gateway import metrics

log = logging.getLogger(__name__)

SETTLE_S = 5.0
YIELD_FIRST_S = 30
YIELD_MAX_S = 600
HEARTBEAT_S = 30.0
TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason code "Session taken over"
_RECLAIM_LOG_EVERY_S = 600.0
# paho's own reconnect pace when nothing is wrong (connection.py sets the same).
_RECONNECT = (1, 30)

Decision = Literal["reconnect", "reclaim", "yield"]
T = TypeVar("T")


def after_disconnect(
    reason: int | None, *, session_present: bool, held_for_s: float, settle_s: float = SETTLE_S
) -> Decision:
    """What a gateway does when the broker drops it (see the module docstring).

    ``reason`` is the reason code of the broker's MQTT 5 DISCONNECT, or None when the connection
    just closed (always over 3.1.1; Mosquitto 2.0.11 also closes an MQTT 5 session taken over
    without saying why). ``held_for_s`` is how long the connection lasted, ``session_present``
    whether it had resumed an existing session.
    """
    fresh = held_for_s < settle_s
    if reason is not None:
        if reason != TAKEN_OVER:
            return "reconnect"
        return "yield" if fresh else "reclaim"
    # No reason given. A resumed session lost within seconds is the other gateway taking it
    # back; anything later, or a new session (nobody else had it), is an ordinary drop.
    return "yield" if fresh and session_present else "reconnect"


def yield_delay_s(times_in_a_row: int) -> int:
    return int(min(YIELD_MAX_S, YIELD_FIRST_S * 2 ** max(0, times_in_a_row - 1)))


class SessionGuard(Generic[T]):
    """The gateway's side of the rule. paho's callbacks report here (through
    :mod:`gateway.connection`), every received message passes through :meth:`deliver` on its
    way to ``accept`` (the gateway's inbox), and a thread keeps this client id's
    ``gateway_sessions`` row current (on every change, and every ``heartbeat_s``)."""

    def __init__(
        self,
        client_id: str,
        broker: str,
        pool: ConnectionPool,
        clock: Clock,
        *,
        accept: Callable[[T], None],
        on_dropped: Callable[[int], None],
        settle_s: float = SETTLE_S,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.client_id, self._broker, self._pool, self._clock = client_id, broker, pool, clock
        self._accept, self._on_dropped = accept, on_dropped
        self._settle_s, self._heartbeat_s = settle_s, heartbeat_s
        self._lock = threading.Lock()
        self._held: list[T] = []
        self._holding = False
        self._epoch = 0  # one per connection: a settle timer of an earlier one does nothing
        self._connected_at = 0.0
        self._session_present = False
        self._yields_in_a_row = 0
        self._last_reclaim_log = -_RECLAIM_LOG_EVERY_S
        self._timer: threading.Timer | None = None
        now = clock.now()
        self._row = GatewaySession(
            client_id=client_id,
            state="connecting",
            broker=broker,
            host=socket.gethostname(),
            pid=os.getpid(),
            since=now,
            takeovers=0,
            last_takeover_at=None,
            retry_at=None,
            seen_at=now,
        )
        self.settled = threading.Event()  # the current connection has lasted settle_s
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._writer = threading.Thread(
            target=self._write_loop, name="gateway-session", daemon=True
        )
        metrics.SESSION_YIELDED.labels(client_id).set(0)

    @property
    def state(self) -> str:
        return self._row.state

    # --- paho's network thread ------------------------------------------------------------

    def connected(self, client: mqtt.Client, session_present: bool) -> None:
        with self._lock:
            self._epoch += 1
            self._connected_at = time.monotonic()
            self._session_present = session_present
            self._holding = session_present
            self.settled.clear()
            self._timer = threading.Timer(self._settle_s, self._settle, (client, self._epoch))
            self._timer.daemon = True
            self._timer.start()
            if self._row.state == "connecting":
                self._set(state="connected")
                self._writer.start()

    def disconnected(self, client: mqtt.Client, rc: ReasonCode, from_broker: bool) -> None:
        """``from_broker``: the broker sent a DISCONNECT (MQTT 5), rather than the connection
        closing."""
        with self._lock:
            self._epoch += 1
            self.settled.clear()
            held_for = time.monotonic() - self._connected_at
            if not rc.is_failure and not from_broker:  # our own disconnect(): the end
                decision: Decision = "reconnect"
            else:
                decision = after_disconnect(
                    rc.value if from_broker else None,
                    session_present=self._session_present,
                    held_for_s=held_for,
                    settle_s=self._settle_s,
                )
            dropped, self._held, self._holding = len(self._held), [], False
            first_yield = decision == "yield" and self._row.state != "yielded"
            delay = 0
            if decision != "reconnect":
                self._set(takeovers=self._row.takeovers + 1, last_takeover_at=self._clock.now())
            if decision == "yield":
                self._yields_in_a_row += 1
                delay = yield_delay_s(self._yields_in_a_row)
                self._set(state="yielded", retry_at=self._clock.now() + timedelta(seconds=delay))
        if dropped:
            self._on_dropped(dropped)
        if decision != "reconnect":
            metrics.SESSION_TAKEOVERS.labels(self.client_id).inc()
        if decision == "yield":
            client.reconnect_delay_set(min_delay=delay, max_delay=delay)
            metrics.SESSION_YIELDED.labels(self.client_id).set(1)
            how = f"{rc}" if from_broker else "closed without a reason, as on a takeover"
            self._log_yield(delay, first_yield, f"{held_for:.1f} s after connecting: {how}")
        elif decision == "reclaim":
            self._log_reclaim(rc)
        elif rc.is_failure:  # not our own disconnect(): paho reconnects by itself
            log.warning("MQTT connection lost (%s); reconnecting", rc)

    def deliver(self, item: T) -> None:
        """Pass a received message on, or hold it while the session may be another gateway's."""
        with self._lock:
            if self._holding:
                self._held.append(item)
                return
        self._accept(item)

    def _settle(self, client: mqtt.Client, epoch: int) -> None:
        with self._lock:
            if epoch != self._epoch:  # dropped since: that connection never settled
                return
            for item in self._held:  # under the lock: later arrivals queue up behind them
                self._accept(item)
            self._held, self._holding = [], False
            was_yielded = self._row.state == "yielded"
            self._yields_in_a_row = 0
            self._set(state="connected", retry_at=None)
            self.settled.set()
        if was_yielded:
            client.reconnect_delay_set(*_RECONNECT)
            metrics.SESSION_YIELDED.labels(self.client_id).set(0)
            log.info("MQTT session %r is this gateway's again; receiving", self.client_id)

    def _log_yield(self, delay: int, first: bool, evidence: str) -> None:
        if not first:  # one clear line per episode; the retries are routine
            log.debug(
                "MQTT session %r still another client's; retry in %d s", self.client_id, delay
            )
            return
        log.error(
            "MQTT session taken over (%s): another client uses DOSEWATCH_MQTT_CLIENT_ID=%r on %s "
            "and was there first, so this gateway yields and stores nothing (retry in %d s, then "
            "less often). Give each installation, and each gateway of a shared subscription, its "
            "own id (unset, it is derived from the database's installation id; a database copied "
            "from another installation has that one's: see deploy/README.md)",
            evidence,
            self.client_id,
            self._broker,
            delay,
        )

    def _log_reclaim(self, rc: ReasonCode) -> None:
        now = time.monotonic()
        if now - self._last_reclaim_log < _RECLAIM_LOG_EVERY_S:
            log.debug("MQTT session %r taken over again; taking it back", self.client_id)
            return
        self._last_reclaim_log = now
        log.warning(
            "MQTT session taken over (%s) by another client using DOSEWATCH_MQTT_CLIENT_ID=%r on "
            "%s; this gateway held it first and takes it back (the other one yields: see its log)",
            rc,
            self.client_id,
            self._broker,
        )

    # --- the status row ---------------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        """Change the row (caller holds the lock); the writer thread stores it."""
        if changes.get("state", self._row.state) != self._row.state:
            changes["since"] = self._clock.now()
        self._row = replace(self._row, **changes)
        self._changed.set()

    def _write_loop(self) -> None:
        while not self._stopping.is_set():
            self._changed.wait(self._heartbeat_s)
            self._changed.clear()
            self._store()

    def _store(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            row = replace(self._row, seen_at=self._clock.now())
        try:
            with self._pool.connection(timeout=timeout_s) as conn:
                gateway_sessions.record(conn, row)
        except (psycopg.Error, PoolTimeout) as exc:  # database away: the next beat tries again
            log.debug("could not record the gateway session status: %s", exc)

    def stop(self) -> None:
        """Record ``stopped`` (after the client has disconnected: its callback changes nothing
        then) and end the status thread."""
        with self._lock:
            self._epoch += 1
            if self._timer is not None:
                self._timer.cancel()
            self._set(state="stopped", retry_at=None)
        self._stopping.set()
        self._changed.set()
        if self._writer.is_alive():
            self._writer.join(timeout=10)
            self._store()
        metrics.SESSION_YIELDED.labels(self.client_id).set(0)
