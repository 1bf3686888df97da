"""A believable two months for the report pages, the PDF and the Grafana panels.

Three teams of home care in Umeå, 18 patients, four doses a day (08, 12, 17 and 21 o'clock) from
1 October 2026 up to the clock's today, written straight into the tables the gateway and the
alarm jobs fill: slots with their final states, the ``dose_taken`` events behind every take,
absences whose slots are suspended, and an alarm (acknowledged, resolved, with its SMS) for
every dose not taken. October holds the autumn daylight-saving change (25 October).

Each patient has a profile, drawn from a seeded random generator so every run writes the same
rows: how often they take a dose, how often late; one is habitually late for the morning dose,
one spends five days in hospital, one has a dispenser that is often offline (``unknown``), one
a dispenser whose clock runs fast, one was well in October and falls in November. The figures
the pages show are computed from these slots by the report code; nothing here states a figure.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from dosewatch.db import rollups
from dosewatch.domain.schedule import local_instant

TZ = "Europe/Stockholm"
START = date(2026, 10, 1)
DOSES = (
    (time(8, 0), "morning"),
    (time(12, 0), "lunch"),
    (time(17, 0), "afternoon"),
    (time(21, 0), "evening"),
)
WINDOW = timedelta(minutes=60)
TEAMS = {
    "Hemtjänst Norr": ("Haga", "Teg"),
    "Hemtjänst Söder": ("Ersboda", "Mariehem"),
    "Hemsjukvård Väst": ("Holmsund", None),
}
NAMES = (
    "Astrid Lindqvist",
    "Bertil Nyström",
    "Carin Holmberg",
    "Dagny Öberg",
    "Erik Åström",
    "Frida Sjöberg",
    "Gunnar Lundgren",
    "Hjördis Wikström",
    "Ingvar Forsberg",
    "Judit Näslund",
    "Karl-Åke Berglund",
    "Lilian Marklund",
    "Margit Isaksson",
    "Nils Öhman",
    "Olga Bäckström",
    "Per-Erik Lindström",
    "Rut Sandberg",
    "Sture Håkansson",
)
POLICY = {
    "steps": [
        {"whom": "on_duty", "how": "sms", "wait_min": 10},
        {"whom": "on_duty", "how": "voice", "wait_min": 10},
        {"whom": "lead", "how": "sms", "wait_min": 10},
    ],
    "repeats": 0,
}


@dataclass
class Seeded:
    teams: dict[str, int] = field(default_factory=dict)
    patients: dict[str, int] = field(default_factory=dict)  # name → id
    team_of: dict[str, str] = field(default_factory=dict)  # patient name → team name


@dataclass(frozen=True)
class _Profile:
    take: float  # chance a dose is taken at all
    late: float  # of those, the chance it is taken after the window
    unknown: float = 0.0  # chance the dispenser is offline at window close (never resolved)
    late_morning: bool = False
    hospital: tuple[date, date] | None = None
    falls_from: date | None = None


def _profiles(rng: random.Random) -> list[_Profile]:
    out = [_Profile(take=rng.uniform(0.965, 0.998), late=rng.uniform(0.01, 0.05)) for _ in NAMES]
    out[2] = _Profile(take=0.90, late=0.08)
    out[4] = _Profile(take=0.985, late=0.02, late_morning=True)
    out[7] = _Profile(take=0.99, late=0.02, hospital=(date(2026, 10, 12), date(2026, 10, 17)))
    out[9] = _Profile(take=0.97, late=0.03, unknown=0.05)
    out[13] = _Profile(take=0.99, late=0.02, falls_from=date(2026, 11, 6))
    out[16] = _Profile(take=0.93, late=0.06)
    return out


def seed(pool: ConnectionPool, now: datetime, seed_value: int = 2026) -> Seeded:
    """Write the months up to ``now`` (slots after it stay pending) and bring the rollup up to
    date. Returns the ids by name."""
    rng = random.Random(seed_value)
    tz = ZoneInfo(TZ)
    out = Seeded()
    with pool.connection() as conn, conn.transaction():
        for name in TEAMS:
            row = conn.execute(
                "INSERT INTO teams (name, created_at) VALUES (%s, %s) RETURNING id", (name, now)
            ).fetchone()
            assert row is not None
            out.teams[name] = row["id"]  # type: ignore[call-overload]
        slots: list[tuple[object, ...]] = []
        for i, (name, profile) in enumerate(zip(NAMES, _profiles(rng), strict=True)):
            team = list(TEAMS)[i % 3]
            district = TEAMS[team][(i // 3) % 2]
            row = conn.execute(
                "INSERT INTO patients (name, phone, address, team_id, district) VALUES"
                " (%s, %s, %s, %s, %s) RETURNING id",
                (
                    name,
                    f"+46 90 140 {i:02d} 00",
                    f"Storgatan {i + 1}, Umeå",
                    out.teams[team],
                    district,
                ),
            ).fetchone()
            assert row is not None
            pid = row["id"]  # type: ignore[call-overload]
            out.patients[name], out.team_of[name] = pid, team
            dispenser = f"UME-{1001 + i}"
            conn.execute(
                "INSERT INTO dispensers (id, patient_id) VALUES (%s, %s)", (dispenser, pid)
            )
            conn.execute(
                "INSERT INTO schedules (dispenser_id, version, timezone, doses, valid_from,"
                " created_at, effective_from) VALUES (%s, 1, %s, %s, %s, %s, %s)",
                (
                    dispenser,
                    TZ,
                    Jsonb(
                        [
                            {"time": t.strftime("%H:%M"), "label": lb, "window_min": 60}
                            for t, lb in DOSES
                        ]
                    ),
                    START,
                    now,
                    datetime.combine(START, time(), tz),
                ),
            )
            absence = None
            if profile.hospital:
                starts = datetime.combine(profile.hospital[0], time(10), tz)
                ends = datetime.combine(profile.hospital[1], time(14), tz)
                row = conn.execute(
                    "INSERT INTO absences (dispenser_id, starts_at, ends_at, reason, created_by,"
                    " created_at) VALUES (%s, %s, %s, 'Sjukhusvistelse', 'seed', %s) RETURNING id",
                    (dispenser, starts, ends, now),
                ).fetchone()
                assert row is not None
                absence = (row["id"], starts, ends)  # type: ignore[call-overload]
            day = START
            while day <= now.astimezone(tz).date():
                for t, label in DOSES:
                    due = local_instant(day, t, tz)
                    slots.append(_slot(rng, profile, dispenser, due, t, label, day, now, absence))
                day += timedelta(days=1)
        _write(conn, slots)
        # The often-offline dispenser went offline before each unknown dose and came back
        # hours later; another one's clock runs three minutes fast.
        conn.execute(
            "INSERT INTO dispenser_online_history (dispenser_id, at, online, source)"
            " SELECT dispenser_id, due_at - interval '20 minutes', false, 'seed' FROM dose_slots"
            " WHERE state = 'unknown' UNION ALL"
            " SELECT dispenser_id, window_end + interval '3 hours', true, 'seed' FROM dose_slots"
            " WHERE state = 'unknown'"
        )
        conn.execute(
            "INSERT INTO dispenser_presence (dispenser_id, online, online_changed_at,"
            " last_seen_at, clock_offset_s, clock_flagged, updated_at)"
            " VALUES ('UME-1016', true, %(now)s, %(now)s, 190, true, %(now)s)",
            {"now": now},
        )
        rollups.refresh_all(conn, now)
    return out


def _slot(
    rng: random.Random,
    p: _Profile,
    dispenser: str,
    due: datetime,
    t: time,
    label: str,
    day: date,
    now: datetime,
    absence: tuple[int, datetime, datetime] | None,
) -> tuple[object, ...]:
    """(dispenser, due, window_end, state, label, local_time, absence_id, taken_at)."""
    end = due + WINDOW
    if absence and absence[1] <= due < absence[2]:
        return (dispenser, due, end, "suspended", label, t, absence[0], None)
    if end > now:
        return (dispenser, due, end, "pending", label, t, None, None)
    take = p.take - (0.25 if p.falls_from and day >= p.falls_from else 0.0)
    if rng.random() < p.unknown:
        return (dispenser, due, end, "unknown", label, t, None, None)
    if rng.random() >= take:
        return (dispenser, due, end, "missed", label, t, None, None)
    if p.late_morning and t.hour == 8 and rng.random() < 0.8:
        return (
            dispenser,
            due,
            end,
            "taken_late",
            label,
            t,
            None,
            due + timedelta(minutes=rng.randint(62, 95)),
        )
    if rng.random() < p.late:
        return (
            dispenser,
            due,
            end,
            "taken_late",
            label,
            t,
            None,
            end + timedelta(minutes=rng.randint(3, 50)),
        )
    return (
        dispenser,
        due,
        end,
        "taken",
        label,
        t,
        None,
        due + timedelta(minutes=rng.randint(0, 40)),
    )


def _write(conn: object, slots: list[tuple[object, ...]]) -> None:
    with conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.executemany(
            "INSERT INTO dose_slots (dispenser_id, due_at, window_end, state, schedule_version,"
            " label, local_time, absence_id, closed_at, taken_event_id) VALUES"
            " (%s, %s, %s, %s, 1, %s, %s, %s, %s, %s)",
            [
                (
                    d,
                    due,
                    end,
                    st,
                    lb,
                    lt,
                    ab,
                    None if st == "pending" else end,
                    f"{d}-{due:%Y%m%d%H%M}" if taken else None,
                )
                for d, due, end, st, lb, lt, ab, taken in slots
            ],
        )
        cur.execute(
            "INSERT INTO dose_events (dispenser_id, event_id, seq, type, occurred_at, received_at,"
            " dose_due_at, slot_id, match, payload)"
            " SELECT s.dispenser_id, s.taken_event_id, row_number() OVER (PARTITION BY"
            " s.dispenser_id ORDER BY s.due_at), 'dose_taken', t.at - interval '8 seconds',"
            " t.at, s.due_at, s.id, 'matched', '{}'"
            " FROM dose_slots s JOIN unnest(%s::text[], %s::timestamptz[]) t(ev, at)"
            " ON t.ev = s.taken_event_id",
            (
                [f"{d}-{due:%Y%m%d%H%M}" for d, due, *_, taken in slots if taken],
                [taken for *_, taken in slots if taken],
            ),
        )
        _alarms(cur)


def _alarms(cur: object) -> None:
    """An alarm for every dose not taken: acknowledged after 1–25 min, resolved after 4–60 min
    more (a made-up but stable spread: the slot id picks it), its SMS, and a failed call now
    and then."""
    cur.execute(  # type: ignore[attr-defined]
        "INSERT INTO policy_versions (body) VALUES (%s) ON CONFLICT (digest) DO NOTHING",
        (Jsonb(POLICY),),
    )
    cur.execute(  # type: ignore[attr-defined]
        "INSERT INTO alarms (kind, dispenser_id, patient_id, slot_id, slot_due_at, priority,"
        " opened_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, outcome, team_id,"
        " policy_id, step_index)"
        " SELECT CASE s.state WHEN 'missed' THEN 'missed_dose' ELSE 'dose_status_unknown' END,"
        " s.dispenser_id, d.patient_id, s.id, s.due_at, 'medium', s.window_end,"
        " s.window_end + interval '1 minute' * (1 + (s.id * 7) %% 25), 'seed',"
        " s.window_end + interval '1 minute' * (5 + (s.id * 7) %% 25 + (s.id * 13) %% 56), 'seed',"
        " (ARRAY['reached_by_phone', 'reached_by_phone', 'home_visit', 'dose_taken_late',"
        "  'patient_away', 'false_alarm'])[1 + s.id %% 6], p.team_id,"
        " (SELECT id FROM policy_versions WHERE digest = md5(%s::jsonb::text)), 3"
        " FROM dose_slots s JOIN dispensers d ON d.id = s.dispenser_id"
        " JOIN patients p ON p.id = d.patient_id WHERE s.state IN ('missed', 'unknown')",
        (Jsonb(POLICY),),
    )
    cur.execute(  # type: ignore[attr-defined]
        "INSERT INTO notifications (alarm_id, idempotency_key, purpose, channel, to_number,"
        " step_index, step_round, status, created_at, sent_at, updated_at)"
        " SELECT id, 'seed-' || id || '-' || step, 'alarm',"
        " CASE step WHEN 1 THEN 'voice' ELSE 'sms' END, '+46701234567', step, 0,"
        " CASE WHEN step = 1 AND id % 9 = 0 THEN 'failed' WHEN step = 1 THEN 'acknowledged'"
        "      ELSE 'delivered' END, at, at, at"
        " FROM (SELECT a.id, a.acknowledged_at, step, a.opened_at + interval '10 minutes' * step"
        "       AS at FROM alarms a CROSS JOIN generate_series(0, 2) step) x"
        " WHERE step = 0 OR acknowledged_at > at"
    )
