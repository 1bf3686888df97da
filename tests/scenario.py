"""A scenario harness in the style of Alertmanager's acceptance tests.

A scenario is a script of things that happen at fake-clock offsets (a dose event arrives, a
nurse acknowledges, a shift starts). :meth:`Scenario.run_until` moves the clock minute by
minute and runs every periodic job at each tick, exactly as the scheduler would; whatever
reaches the notifier is recorded with the fake time it was sent at. Tests then assert exactly
which notifications went out, to whom, and when — no sleeping, no real time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg_pool import ConnectionPool

from alarms.escalation import run_escalations, run_reminders
from alarms.jobs import sweep_missed_doses
from alarms.notifier import Notifier, Outgoing
from alarms.outbox import Dispatcher
from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from gateway.writer import Inbound, write_batch
from tests.helpers import add_dispenser

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@dataclass(frozen=True)
class Sent:
    at: datetime  # fake time
    channel: str
    to: str
    body: str


class _Spy:
    """Wraps the notifier under test and stamps each send with the fake time."""

    def __init__(self, inner: Notifier, clock: FakeClock, log: list[Sent]) -> None:
        self.name = inner.name
        self.public_url = inner.public_url
        self._inner, self._clock, self._log = inner, clock, log

    def send(self, out: Outgoing) -> str:
        sid = self._inner.send(out)
        self._log.append(Sent(self._clock.now(), out.channel.value, out.to, out.body))
        return sid

    def find_sent(
        self, out: Outgoing, since: datetime, exclude: frozenset[str] = frozenset()
    ) -> str | None:
        return self._inner.find_sent(out, since, exclude)


@dataclass
class Scenario:
    pool: ConnectionPool
    clock: FakeClock
    notifier: Notifier
    sent: list[Sent] = field(default_factory=list)
    script: list[tuple[datetime, Callable[[], Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(
            self.pool,
            self.clock,
            _Spy(self.notifier, self.clock, self.sent),
            STOCKHOLM,
            lambda: 1.0,
        )

    def at(self, when: datetime, action: Callable[[], Any]) -> None:
        self.script.append((when, action))
        self.script.sort(key=lambda item: item[0])

    def tick(self) -> None:
        """Every periodic job, in the scheduler's order, until none has anything left to do at
        this instant (the real scheduler runs them every few seconds: "at once" means that)."""
        sweep_missed_doses(self.pool, self.clock)
        for _ in range(20):
            busy = run_escalations(self.pool, self.clock) + run_reminders(self.pool, self.clock)
            busy += self.dispatcher.run()
            if not busy:
                return
        raise AssertionError("the jobs did not settle: is something looping?")

    def run_until(self, end: datetime, step: timedelta = timedelta(minutes=1)) -> None:
        while self.clock.now() <= end:
            while self.script and self.script[0][0] <= self.clock.now():
                _, action = self.script.pop(0)
                action()
            self.tick()
            self.clock.advance(step)

    # --- things that happen -------------------------------------------------------------

    def dose_taken(self, dispenser_id: str, due_at: datetime, seq: int = 1) -> None:
        now = self.clock.now()
        payload = event(dispenser_id, seq, "dose_taken", now, dose_due_at=due_at, doses_left=10)
        with self.pool.connection() as conn:
            write_batch(
                conn, [Inbound(f"dosewatch/v1/dispensers/{dispenser_id}/events", payload, now)]
            )

    def sent_to(self, number: str) -> list[Sent]:
        return [s for s in self.sent if s.to == number]

    def summary(self, names: dict[str, str]) -> list[tuple[str, str, str]]:
        """(local HH:MM, channel, who) per send: compact expectations."""
        return [
            (s.at.astimezone(STOCKHOLM).strftime("%H:%M"), s.channel, names.get(s.to, s.to))
            for s in self.sent
        ]


def add_team(
    pool: ConnectionPool,
    now: datetime,
    name: str,
    nurses: list[tuple[str, str, str, str]],
    shift: tuple[datetime, datetime],
    policy: dict[str, Any] | None = None,
) -> tuple[int, dict[str, int]]:
    """A team with nurses (name, phone, language, role), all on the given shift."""
    with pool.connection() as conn, conn.transaction():
        team = conn.execute(
            "INSERT INTO teams (name, created_at) VALUES (%s, %s) RETURNING id", (name, now)
        ).fetchone()
        assert team is not None
        ids: dict[str, int] = {}
        for nurse_name, phone, language, role in nurses:
            row = conn.execute(
                "INSERT INTO nurses (team_id, name, phone, language, created_at)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (team["id"], nurse_name, phone, language, now),
            ).fetchone()
            assert row is not None
            ids[nurse_name] = row["id"]
            conn.execute(
                "INSERT INTO shifts (team_id, nurse_id, starts_at, ends_at, role)"
                " VALUES (%s, %s, %s, %s, %s)",
                (team["id"], row["id"], shift[0], shift[1], role),
            )
        if policy is not None:
            conn.execute(
                "INSERT INTO escalation_policies (team_id, version, policy, created_at,"
                " created_by) VALUES (%s, 1, %s, %s, 'test')",
                (team["id"], json.dumps(policy), now),
            )
        return int(team["id"]), ids


def put_patient_in_team(pool: ConnectionPool, patient_id: int, team_id: int) -> None:
    with pool.connection() as conn:
        conn.execute("UPDATE patients SET team_id = %s WHERE id = %s", (team_id, patient_id))


def nurse_and_lead_with_a_patient(
    pool: ConnectionPool,
    now: datetime,
    phones: tuple[str, str],
    shift: tuple[datetime, datetime],
    dispenser_id: str = "DSP-1",
) -> int:
    """The usual cast: Anna (primary) and Lars (lead) on one shift, one patient with the
    default 08:00 + 20:00 dispenser. Returns the team id."""
    patient_id = add_dispenser(pool, dispenser_id, now)
    team_id, _ = add_team(
        pool,
        now,
        "Umeå Norr",
        [("Anna", phones[0], "sv", "primary"), ("Lars", phones[1], "sv", "lead")],
        shift,
    )
    put_patient_in_team(pool, patient_id, team_id)
    return team_id
