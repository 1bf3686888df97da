"""A hand-computed month: three patients through October 2026 in Stockholm, driven through the
real paths (gateway writer, sweep, absences API, schedule versions), checked to the dose.

October 2026 has the fall-back night (Sunday 25th: 03:00 CEST → 02:00 CET, a 25-hour day).

- **Astrid** (team Öst, Haga): 08:00 and 20:00 (45 min). 62 slots. Everything on time except
  the 5th 20:00 (not taken → missed) and the 12th 08:00 (received 09:30 → taken late).
  expected 62, taken 60, late 1, missed 1; 31 monitored days, 30 correct (not the 5th).
- **Bertil** (team Öst, Berga): 08:00, 14:00, 20:00. 93 slots. In hospital from the 10th 00:00
  to the 13th 00:00, which a nurse records on the 11th at 10:00 — after the sweep had already
  marked 4 doses missed: all 9 slots count as suspended. On the 20th at 07:30 the dispenser goes
  offline (Last Will); it comes back on the 21st at 09:00 and replays the takes of the 20th
  08:00 and 20:00 (a day late → taken late). The 20th 14:00 and the 21st 08:00 stay unknown.
  expected 84, taken 80, late 2, unknown 2, suspended 9; 28 monitored days (10th–12th are not),
  26 correct (not the 20th, not the 21st).
- **Cecilia** (team Väst): 08:00 and 23:30 (60 min: the window crosses midnight) until the 15th;
  a schedule change effective the 16th 00:00 adds 13:00. 30 + 48 = 78 slots. The 3rd's 23:30
  dose is taken at 00:20 on the 4th (still the 3rd's, on time); the 18th 13:00 is missed.
  expected 78, taken 77, missed 1; 31 monitored days, 30 correct.

Municipality: expected 224, taken 217, late 3, missed 2, unknown 2, suspended 9; taking
adherence 220/224 = 98.21 %, timing 217/224 = 96.88 %, correct days 86/90 = 95.56 %.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from alarms.missed import sweep_missed_doses
from dashboards.app import create_app
from dispenser_sim.messages import event, rfc3339
from dosewatch.clock import FakeClock
from dosewatch.db import registry
from dosewatch.db import schedules as schedule_sql
from gateway.writer import Inbound, write_batch
from tests.auth_helpers import bearer

TZ = ZoneInfo("Europe/Stockholm")
START = datetime(2026, 10, 1, tzinfo=TZ)
END = datetime(2026, 11, 1, tzinfo=TZ)


def local(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 10, day, hh, mm, tzinfo=TZ).astimezone(UTC)


def _base(d: str) -> str:
    return f"dosewatch/v1/dispensers/{d}"


def _write(pool: ConnectionPool, topic: str, body: bytes, at: datetime) -> None:
    with pool.connection() as conn:
        write_batch(conn, [Inbound(topic, body, at)])


def _doses(*times: str, window: int = 45) -> list[dict[str, object]]:
    return [{"time": t, "window_min": window} for t in times]


def _patient(
    pool: ConnectionPool,
    name: str,
    team: int,
    district: str | None,
    d: str,
    doses: list[dict[str, object]],
) -> int:
    with pool.connection() as conn, conn.transaction():
        p = registry.create_patient(conn, name=name, phone="+4690000000", address=None, note=None)
        conn.execute(
            "UPDATE patients SET team_id = %s, district = %s WHERE id = %s",
            (team, district, p["id"]),
        )
        registry.create_dispenser(conn, dispenser_id=d, patient_id=p["id"])
        schedule_sql.save_schedule(
            conn,
            d,
            timezone="Europe/Stockholm",
            doses=doses,
            valid_from=date(2026, 9, 30),
            now=START - timedelta(days=1),
            effective_from=START - timedelta(days=1),
        )
        schedule_sql.plan_dispenser(conn, d, START, END)
        return int(p["id"])


def _top_up(pool: ConnectionPool, now: datetime) -> None:
    """The rolling horizon, compressed: keep every dispenser planned to the end of the month."""
    with pool.connection() as conn, conn.transaction():
        for d in ("FIX-A", "FIX-B", "FIX-C"):
            schedule_sql.plan_dispenser(conn, d, now, END)


def _slots(pool: ConnectionPool) -> list[dict[str, object]]:
    with pool.connection() as conn:
        return conn.execute(  # type: ignore[return-value]
            "SELECT dispenser_id, due_at, window_end FROM dose_slots"
            " WHERE due_at >= %s AND due_at < %s ORDER BY window_end",
            (START, END),
        ).fetchall()


@pytest.fixture
def month(pool: ConnectionPool) -> Iterator[tuple[TestClient, FakeClock, dict[str, int]]]:
    clock = FakeClock(START - timedelta(hours=1))
    with pool.connection() as conn, conn.transaction():
        east = conn.execute(
            "INSERT INTO teams (name, created_at) VALUES ('Öst', now()) RETURNING id"
        ).fetchone()["id"]
        west = conn.execute(
            "INSERT INTO teams (name, created_at) VALUES ('Väst', now()) RETURNING id"
        ).fetchone()["id"]
    ids = {
        "A": _patient(pool, "Astrid", east, "Haga", "FIX-A", _doses("08:00", "20:00")),
        "B": _patient(pool, "Bertil", east, "Berga", "FIX-B", _doses("08:00", "14:00", "20:00")),
        "C": _patient(pool, "Cecilia", west, None, "FIX-C", _doses("08:00", "23:30", window=60)),
        "east": east,
        "west": west,
    }
    client = TestClient(create_app(pool, clock))
    client.headers.update(bearer(pool, "admin"))
    _live_through_the_month(pool, clock, client)
    yield client, clock, ids


NOT_TAKEN = {("FIX-A", local(5, 20)), ("FIX-C", local(18, 13))}
LATE = {("FIX-A", local(12, 8)): local(12, 9, 30)}
OFFLINE = (local(20, 7, 30), local(21, 9))
HOSPITAL = (local(10, 0), local(13, 0))


def _live_through_the_month(pool: ConnectionPool, clock: FakeClock, client: TestClient) -> None:
    seq = {"FIX-A": 0, "FIX-B": 0, "FIX-C": 0}
    _live(pool, clock, seq, START, local(11, 10))
    # The nurse records the hospital stay afterwards, through the API.
    clock.set(local(11, 10))
    r = client.post(
        "/api/v1/dispensers/FIX-B/absences",
        json={
            "starts_at": rfc3339(HOSPITAL[0]),
            "ends_at": rfc3339(HOSPITAL[1]),
            "reason": "hospital",
        },
    )
    assert r.status_code == 201, r.text
    _top_up(pool, clock.now())
    _live(pool, clock, seq, local(11, 10), local(14, 12))
    # A new schedule version for Cecilia, effective from the 16th.
    clock.set(local(14, 12))
    with pool.connection() as conn, conn.transaction():
        schedule_sql.save_schedule(
            conn,
            "FIX-C",
            timezone="Europe/Stockholm",
            doses=_doses("08:00", "13:00", "23:30", window=60),
            valid_from=date(2026, 10, 16),
            now=clock.now(),
            effective_from=local(16, 0),
        )
        schedule_sql.replan(conn, "FIX-C", clock.now(), END, since=local(16, 0))
    _live(pool, clock, seq, local(14, 12), OFFLINE[1])
    # Bertil's dispenser is back and replays what it buffered, a day late.
    clock.set(OFFLINE[1])
    _write(pool, f"{_base('FIX-B')}/online", b"1", OFFLINE[1])
    for due, took in ((local(20, 8), local(20, 8, 10)), (local(20, 20), local(20, 20, 5))):
        seq["FIX-B"] += 1
        _write(
            pool,
            f"{_base('FIX-B')}/events",
            event("FIX-B", seq["FIX-B"], "dose_taken", took, dose_due_at=due),
            OFFLINE[1],
        )
    _live(pool, clock, seq, OFFLINE[1], END + timedelta(hours=2))


def _live(
    pool: ConnectionPool, clock: FakeClock, seq: dict[str, int], after: datetime, until: datetime
) -> None:
    for slot in _slots(pool):
        d, due, end = str(slot["dispenser_id"]), slot["due_at"], slot["window_end"]
        assert isinstance(due, datetime) and isinstance(end, datetime)
        if after < end <= until:
            _live_slot(pool, clock, d, due, end, seq)


def _live_slot(
    pool: ConnectionPool,
    clock: FakeClock,
    d: str,
    due: datetime,
    end: datetime,
    seq: dict[str, int],
) -> None:
    """One slot's life: its take (if any), a heartbeat, the sweep at its window's end."""
    not_taken, late, offline = NOT_TAKEN, LATE, OFFLINE
    is_offline = d == "FIX-B" and offline[0] <= end < offline[1]
    if d == "FIX-B" and offline[0] <= end and clock.now() < offline[0]:
        _write(pool, f"{_base(d)}/online", b"0", offline[0])  # the Last Will
    taken_at = None if (d, due) in not_taken else late.get((d, due), due + timedelta(minutes=5))
    if d == "FIX-C" and due == local(3, 23, 30):
        taken_at = local(4, 0, 20)
    in_hospital = d == "FIX-B" and HOSPITAL[0] <= due < HOSPITAL[1]
    if taken_at is not None and not is_offline and not in_hospital and taken_at <= end:
        seq[d] += 1
        clock.set(max(clock.now(), taken_at))
        _write(
            pool,
            f"{_base(d)}/events",
            event(d, seq[d], "dose_taken", taken_at, dose_due_at=due),
            taken_at,
        )
    if not is_offline:
        hb = json.dumps({"v": 1, "dispenser_id": d, "at": rfc3339(end - timedelta(minutes=1))})
        _write(pool, f"{_base(d)}/status", hb.encode(), end - timedelta(minutes=1))
    clock.set(max(clock.now(), end))
    sweep_missed_doses(pool, clock)
    if taken_at is not None and taken_at > end and not is_offline:  # taken after the window
        seq[d] += 1
        clock.set(taken_at)
        _write(
            pool,
            f"{_base(d)}/events",
            event(d, seq[d], "dose_taken", taken_at, dose_due_at=due),
            taken_at,
        )


def _counts(f: dict[str, object]) -> tuple[object, ...]:
    return tuple(
        f[k]
        for k in (
            "expected",
            "taken",
            "taken_late",
            "missed",
            "unknown",
            "suspended",
            "pending",
            "monitored_days",
            "correct_dosing_days",
            "patients",
        )
    )


def test_the_hand_computed_month_matches_to_the_dose(
    month: tuple[TestClient, FakeClock, dict[str, int]],
) -> None:
    client, clock, ids = month
    clock.set(local(31, 12) + timedelta(days=2))
    r = client.get("/api/v1/reports/municipality", params={"month": "2026-10", "threshold": 98.5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"] == {"from": "2026-10-01", "to": "2026-10-31", "days": 31}
    f = body["figures"]
    assert _counts(f) == (224, 217, 3, 2, 2, 9, 0, 90, 86, 3)
    assert (f["taking_adherence_pct"], f["timing_adherence_pct"], f["correct_dosing_days_pct"]) == (
        98.21,
        96.88,
        95.56,
    )
    teams = {t["name"]: _counts(t["figures"]) for t in body["teams"]}
    assert teams == {
        "Öst": (146, 140, 3, 1, 2, 9, 0, 59, 56, 2),
        "Väst": (78, 77, 0, 1, 0, 0, 0, 31, 30, 1),
    }
    districts = {
        (d["team_name"], d["district"]): d["figures"]["expected"] for d in body["districts"]
    }
    assert districts == {("Öst", "Berga"): 84, ("Öst", "Haga"): 62, ("Väst", None): 78}
    assert [p["name"] for p in body["under_threshold"]] == ["Bertil", "Astrid"]

    per = {}
    for key, pid in (("A", ids["A"]), ("B", ids["B"]), ("C", ids["C"])):
        p = client.get(f"/api/v1/reports/patients/{pid}", params={"month": "2026-10"}).json()
        per[key] = p
    assert _counts(per["A"]["figures"]) == (62, 60, 1, 1, 0, 0, 0, 31, 30, 1)
    assert _counts(per["B"]["figures"]) == (84, 80, 2, 0, 2, 9, 0, 28, 26, 1)
    assert _counts(per["C"]["figures"]) == (78, 77, 0, 1, 0, 0, 0, 31, 30, 1)
    assert per["B"]["figures"]["taking_adherence_pct"] == 97.62
    assert per["B"]["figures"]["timing_adherence_pct"] == 95.24

    days_a = {d["date"]: d for d in per["A"]["daily"]}
    days_b = {d["date"]: d for d in per["B"]["daily"]}
    days_c = {d["date"]: d for d in per["C"]["daily"]}
    assert len(days_a) == 31
    # The 25-hour day has its two (resp. three) doses, no more, no fewer.
    assert (days_a["2026-10-25"]["taken"], days_a["2026-10-25"]["correct"]) == (2, True)
    assert days_c["2026-10-25"]["taken"] == 3
    assert days_a["2026-10-05"]["correct"] is False and days_a["2026-10-12"]["taken_late"] == 1
    assert [days_b[f"2026-10-{d}"]["suspended"] for d in (10, 11, 12)] == [3, 3, 3]
    assert days_b["2026-10-11"]["correct"] is None  # not monitored
    assert (days_b["2026-10-20"]["taken_late"], days_b["2026-10-20"]["unknown"]) == (2, 1)
    assert (days_b["2026-10-21"]["unknown"], days_b["2026-10-21"]["correct"]) == (1, False)
    # The 3rd's 23:30 dose, taken after midnight, is the 3rd's.
    assert (days_c["2026-10-03"]["taken"], days_c["2026-10-04"]["taken"]) == (2, 2)
    assert (days_c["2026-10-15"]["expected"], days_c["2026-10-16"]["expected"]) == (2, 3)
    doses_c = {d["local_time"]: d["figures"]["expected"] for d in per["C"]["doses"]}
    assert doses_c == {"08:00": 31, "13:00": 16, "23:30": 31}

    weekly = body["weekly"]
    assert weekly[0]["week"] == "2026-W40" and weekly[-1]["week"] == "2026-W44"
    assert sum(w["figures"]["expected"] for w in weekly) == 224
