"""The adherence rollup against the real database: the SQL equals the domain's rule, and every
way a slot changes afterwards (sweep, late replay, absence entered afterwards, schedule change)
reaches the daily figures on the next refresh."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import ConnectionPool

from alarms.jobs import sweep_missed_doses
from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from dosewatch.db import absences as absence_sql
from dosewatch.db import rollups
from dosewatch.db import schedules as schedule_sql
from dosewatch.domain.adherence import DayCounts, Slot, rollup
from dosewatch.domain.slots import SlotState
from gateway.writer import Inbound, write_batch
from tests.helpers import add_dispenser

TOPIC = "dosewatch/v1/dispensers/{}/events"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def daily(pool: ConnectionPool, dispenser_id: str, now: datetime) -> dict[date, DayCounts]:
    with pool.connection() as conn, conn.transaction():
        rollups.refresh(conn, now, wait=True)
        rows = conn.execute(
            f"SELECT local_date, {', '.join(rollups.COLUMNS)} FROM adherence_daily"
            " WHERE dispenser_id = %s",
            (dispenser_id,),
        ).fetchall()
    return {r["local_date"]: DayCounts(**{c: r[c] for c in rollups.COLUMNS}) for r in rows}


def replay_taken(
    pool: ConnectionPool,
    dispenser_id: str,
    due: datetime,
    at: datetime,
    received: datetime,
    seq: int,
) -> None:
    body = event(dispenser_id, seq, "dose_taken", at, dose_due_at=due)
    with pool.connection() as conn:
        write_batch(conn, [Inbound(TOPIC.format(dispenser_id), body, received)])


# --- the SQL equals the domain rule, daylight-saving days and time zones included -----------

# 2026-03-29 is the spring-forward day in Stockholm, 2026-10-25 the fall-back day; New York and
# Kolkata (UTC+5:30) put local midnight at other UTC instants.
_DAYS = [datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 10, 24, tzinfo=UTC)]
_slot = st.tuples(
    st.sampled_from(_DAYS),
    st.integers(min_value=0, max_value=3 * 24 * 60 - 1),  # minutes: three days around it
    st.sampled_from(list(SlotState)),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    timezone=st.sampled_from(["Europe/Stockholm", "America/New_York", "Asia/Kolkata"]),
    slots=st.lists(_slot, min_size=1, max_size=40, unique_by=lambda s: (s[0], s[1])),
    absence=st.none() | st.tuples(st.integers(0, 3 * 24 * 60), st.integers(1, 24 * 60)),
)
def test_sql_rollup_equals_the_domain_rollup(
    pool: ConnectionPool,
    timezone: str,
    slots: list[tuple[datetime, int, SlotState]],
    absence: tuple[int, int] | None,
) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with pool.connection() as conn:
        conn.execute(
            "TRUNCATE dose_slots, absences, adherence_daily, adherence_dirty,"
            " schedules, dispensers, patients RESTART IDENTITY CASCADE"
        )
    add_dispenser(pool, "DSP-R", now, timezone=timezone, doses=[])
    expected = [
        Slot("DSP-R", day + timedelta(minutes=m), state, timezone) for day, m, state in slots
    ]
    with pool.connection() as conn, conn.transaction():
        if absence:
            start = _DAYS[0] + timedelta(minutes=absence[0])
            end = start + timedelta(minutes=absence[1])
            absence_sql.create(
                conn, "DSP-R", starts_at=start, ends_at=end, reason="hospital", by="test", now=now
            )
            expected = [
                Slot(s.dispenser_id, s.due_at, s.state, s.timezone, start <= s.due_at < end)
                for s in expected
            ]
        for s in expected:
            conn.execute(
                "INSERT INTO dose_slots (dispenser_id, due_at, window_end, state,"
                " schedule_version) VALUES (%s, %s, %s, %s, 1)",
                (s.dispenser_id, s.due_at, s.due_at + timedelta(minutes=45), s.state.value),
            )
    want = {day: counts for (_, day), counts in rollup(expected).items()}
    assert daily(pool, "DSP-R", now) == want
    # The full rebuild agrees with the incremental refresh.
    with pool.connection() as conn, conn.transaction():
        rollups.rebuild(conn, now)
    assert daily(pool, "DSP-R", now) == want


# --- every way a slot changes afterwards reaches the rollup ---------------------------------

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm, a Monday


def test_sweep_and_a_late_replay_days_later_update_the_rollup(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-L", clock.now())
    clock.set(DUE + timedelta(hours=13))  # both windows of the day closed
    sweep_missed_doses(pool, clock)
    day = date(2026, 11, 23)
    assert daily(pool, "DSP-L", clock.now())[day] == DayCounts(missed=2)
    # Three days later the dispenser delivers what it had buffered: the 08:00 dose was taken.
    clock.advance(timedelta(days=3))
    replay_taken(pool, "DSP-L", DUE, DUE + timedelta(minutes=5), clock.now(), seq=1)
    assert daily(pool, "DSP-L", clock.now())[day] == DayCounts(taken_late=1, missed=1)


def test_an_absence_entered_afterwards_takes_past_missed_doses_out(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-H", clock.now())
    clock.set(DUE + timedelta(hours=13))
    sweep_missed_doses(pool, clock)
    day = date(2026, 11, 23)
    assert daily(pool, "DSP-H", clock.now())[day] == DayCounts(missed=2)
    # The next morning a nurse records that the patient was in hospital since Sunday.
    clock.advance(timedelta(hours=12))
    with pool.connection() as conn, conn.transaction():
        absence_sql.create(
            conn,
            "DSP-H",
            starts_at=DUE - timedelta(days=1),
            ends_at=clock.now() + timedelta(days=2),
            reason="hospital",
            by="nurse",
            now=clock.now(),
        )
    assert daily(pool, "DSP-H", clock.now())[day] == DayCounts(suspended=2)


def test_a_schedule_change_replans_and_the_rollup_follows(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-S", clock.now())
    tomorrow = date(2026, 11, 24)
    assert daily(pool, "DSP-S", clock.now())[tomorrow] == DayCounts(pending=2)
    with pool.connection() as conn, conn.transaction():
        schedule_sql.save_schedule(
            conn,
            "DSP-S",
            timezone="Europe/Stockholm",
            doses=[{"time": t, "window_min": 45} for t in ("08:00", "12:00", "20:00")],
            valid_from=date(2026, 11, 22),
            now=clock.now(),
        )
        schedule_sql.replan(conn, "DSP-S", clock.now(), clock.now() + timedelta(hours=48))
    assert daily(pool, "DSP-S", clock.now())[tomorrow] == DayCounts(pending=3)


def test_the_job_empties_the_queue(pool: ConnectionPool, clock: FakeClock) -> None:
    add_dispenser(pool, "DSP-J", clock.now())
    with pool.connection() as conn:
        assert rollups.backlog(conn) > 0
    assert rollups.run_job(pool, clock.now()) > 0
    with pool.connection() as conn:
        assert rollups.backlog(conn) == 0
        n = conn.execute("SELECT count(*) AS n FROM adherence_daily").fetchone()
        assert n is not None and n["n"] == 2  # today and tomorrow (48 h from 07:50 local)


def test_a_slot_update_marks_the_days_its_counted_facts_touch_and_only_those(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    """Migration 0025's one-pass marks, as 0012's: a state change marks the slot's day; a slot
    moved to another day marks both days; a change nothing counts (closed_at) marks none. Days
    are the schedule's local days (Stockholm: 23:30 UTC is the next day)."""
    add_dispenser(pool, "DSP-M", clock.now())
    rollups.run_job(pool, clock.now())  # the planned slots' marks, done

    with pool.connection() as conn:
        first = conn.execute(
            "SELECT id, due_at FROM dose_slots WHERE dispenser_id = 'DSP-M' ORDER BY due_at LIMIT 1"
        ).fetchone()
    assert first is not None

    def marked_after(sql: str) -> set[date]:
        with pool.connection() as conn:
            conn.execute("DELETE FROM adherence_dirty")
            conn.execute(sql, (first["id"],))
            rows = conn.execute("SELECT dispenser_id, local_date FROM adherence_dirty").fetchall()
        assert {r["dispenser_id"] for r in rows} <= {"DSP-M"}
        return {r["local_date"] for r in rows}

    day = first["due_at"].astimezone(STOCKHOLM).date()
    assert marked_after("UPDATE dose_slots SET closed_at = now() WHERE id = %s") == set()
    assert marked_after("UPDATE dose_slots SET state = 'missed' WHERE id = %s") == {day}
    moved = marked_after(
        "UPDATE dose_slots SET due_at = due_at + interval '2 days',"
        " window_end = window_end + interval '2 days' WHERE id = %s"
    )
    assert moved == {day, day + timedelta(days=2)}
    late_evening = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=23, minutes=30)
    assert marked_after(
        f"UPDATE dose_slots SET due_at = '{late_evening.isoformat()}',"
        f" window_end = '{(late_evening + timedelta(minutes=45)).isoformat()}' WHERE id = %s"
    ) == {day + timedelta(days=2), day + timedelta(days=1)}
