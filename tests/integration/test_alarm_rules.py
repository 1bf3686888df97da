"""Every path that applies an alarm rule gives the same answer.

The domain owns each rule (dosewatch.domain.opening, .offline, .supply, .alarms); these tests
run the production paths — the sweep, a device's dose_not_taken through the gateway's writer,
the device sweep, the console's SQL — on the same cases and compare them with each other and
with the domain functions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from alarms.device import sweep_device_alarms
from alarms.missed import sweep_missed_doses
from dispenser_sim.messages import event
from dosewatch.clock import FakeClock
from dosewatch.db import console as console_sql
from dosewatch.db import device_alarms as device_sql
from dosewatch.domain.alarms import AlarmKind, Priority, console_order, needs_follow_up
from dosewatch.domain.escalation import DEFAULT_POLICY
from dosewatch.domain.opening import Subject
from dosewatch.domain.supply import predicted_empty_at
from dosewatch.usecases.opening import open_alarms
from gateway.writer import Inbound, write_batch
from tests.helpers import add_dispenser, alarms_of
from tests.scenario import add_team, put_patient_in_team

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm, a 45-minute window
SHIFT = (DUE - timedelta(hours=8), DUE + timedelta(hours=8))
NURSES = [("Anna", "+46701111111", "sv", "primary"), ("Lars", "+46702222222", "en", "lead")]


def _first_step(pool: ConnectionPool, alarm_id: int) -> list[tuple[Any, ...]]:
    """The alarm's first notifications, and whether each was written in the alarm's own
    transaction (same xmin)."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT n.purpose, n.channel, n.nurse_id, n.to_number, n.language, n.step_index,"
            " n.step_round, n.status, n.xmin::text = a.xmin::text AS same_txn"
            " FROM notifications n JOIN alarms a ON a.id = n.alarm_id"
            " WHERE a.id = %s ORDER BY n.id",
            (alarm_id,),
        ).fetchall()
    return [tuple(r.values()) for r in rows]


def _history(pool: ConnectionPool, alarm_id: int) -> list[tuple[str, str, str]]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT action, actor, detail::text AS d FROM alarm_history WHERE alarm_id = %s"
            " ORDER BY at, id",
            (alarm_id,),
        ).fetchall()
    return [(r["action"], r["actor"], r["d"]) for r in rows]


@pytest.mark.parametrize("critical", [False, True])
def test_sweep_and_dose_not_taken_open_the_same_alarm_with_the_first_sms_in_its_transaction(
    pool: ConnectionPool, clock: FakeClock, critical: bool
) -> None:
    doses = [{"time": "08:00", "window_min": 45, "time_critical": critical}]
    team, nurses = add_team(pool, clock.now(), "North", NURSES, SHIFT)
    for dispenser in ("DSP-SWEEP", "DSP-DEVICE"):
        put_patient_in_team(pool, add_dispenser(pool, dispenser, clock.now(), doses=doses), team)

    clock.set(DUE + timedelta(minutes=10))  # the device withdraws the dose inside its window
    payload = event("DSP-DEVICE", 1, "dose_not_taken", clock.now(), dose_due_at=DUE)
    with pool.connection() as conn:
        write_batch(
            conn, [Inbound("dosewatch/v1/dispensers/DSP-DEVICE/events", payload, clock.now())]
        )
    clock.set(DUE + timedelta(minutes=45))  # the other window closes untaken
    sweep_missed_doses(pool, clock)

    [by_device] = alarms_of(pool, "DSP-DEVICE")
    [by_sweep] = alarms_of(pool, "DSP-SWEEP")
    same = ("kind", "priority", "team_id", "policy_id", "step_index", "step_round", "state")
    assert {k: by_sweep[k] for k in same} == {k: by_device[k] for k in same}
    assert by_sweep["kind"] == AlarmKind.MISSED_DOSE
    assert by_sweep["priority"] == (Priority.HIGH if critical else Priority.MEDIUM)
    assert by_sweep["team_id"] == team and by_sweep["policy_id"] is not None
    # Both sit at the policy's second step, due one wait after they opened.
    wait = timedelta(minutes=DEFAULT_POLICY.steps[0].wait_min)
    for a in (by_sweep, by_device):
        assert (a["step_index"], a["next_step_at"]) == (1, a["opened_at"] + wait)
        assert len(a["ack_code"]) == 4 and a["ack_code"].isdigit()
    # The first SMS to the nurse on duty is queued by the transaction that opened the alarm.
    sms = ("alarm", "sms", nurses["Anna"], "+46701111111", "sv", 0, 0, "pending", True)
    assert _first_step(pool, by_sweep["id"]) == _first_step(pool, by_device["id"]) == [sms]
    assert [h[0] for h in _history(pool, by_device["id"])] == ["opened", "escalated"]
    steps = [json.loads(_history(pool, a["id"])[1][2]) for a in (by_sweep, by_device)]
    for step in steps:  # they opened at different moments; who was paged how is the same
        step.pop("next_step_at")
    assert steps[0] == steps[1]


def test_a_device_alarm_opens_by_the_same_rule_with_its_first_sms(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    team, nurses = add_team(pool, clock.now(), "North", NURSES, SHIFT)
    put_patient_in_team(pool, add_dispenser(pool, "DSP-D", clock.now()), team)
    payload = event("DSP-D", 1, "help_pressed", clock.now())
    with pool.connection() as conn:
        write_batch(conn, [Inbound("dosewatch/v1/dispensers/DSP-D/events", payload, clock.now())])
    sweep_device_alarms(pool, clock)
    [alarm] = alarms_of(pool, "DSP-D")
    assert (alarm["kind"], alarm["priority"], alarm["team_id"]) == ("help_button", "high", team)
    assert _first_step(pool, alarm["id"]) == [
        ("alarm", "sms", nurses["Anna"], "+46701111111", "sv", 0, 0, "pending", True)
    ]


def test_an_open_alarm_keeps_its_policy_version_when_the_team_edits_its_policy(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    sms_only = {"steps": [{"target": "on_duty", "channels": ["sms"], "wait_min": 5}]}
    team, _ = add_team(pool, clock.now(), "North", NURSES, SHIFT, policy=sms_only)
    patient = add_dispenser(pool, "DSP-P", clock.now())
    put_patient_in_team(pool, patient, team)
    subject = Subject(AlarmKind.HELP_BUTTON, Priority.HIGH, "DSP-P", patient, team)
    with pool.connection() as conn:
        [first] = open_alarms(conn, [subject], clock.now())
        conn.execute(
            "INSERT INTO escalation_policies (team_id, version, policy, created_at, created_by)"
            " VALUES (%s, 2, %s, %s, 'test')",
            (team, json.dumps({**sms_only, "repeats": 3}), clock.now()),
        )
        conn.execute("UPDATE alarms SET resolved_at = now(), outcome = 'other' WHERE id = %s",
                     (first,))  # fmt: skip
        [second] = open_alarms(conn, [subject], clock.now())
        rows = conn.execute(
            "SELECT a.id, pv.body FROM alarms a JOIN policy_versions pv ON pv.id = a.policy_id"
            " WHERE a.id = ANY(%s) ORDER BY a.id",
            ([first, second],),
        ).fetchall()
        assert [r["body"].get("repeats") for r in rows] == [0, 3]
        # The versions are immutable: nothing can rewrite what a running escalation follows.
        with pytest.raises(Exception, match="append-only"), conn.transaction():
            conn.execute("UPDATE policy_versions SET body = '{}'")


def test_offline_to_the_missed_dose_sweep_and_long_enough_offline_to_the_device_sweep(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    """Last Will said offline 5 min ago; silent 16 min; heard 14 min ago; never heard from.
    The missed-dose sweep counts a Will at once (domain.offline.is_offline); the device sweep
    only once it has stood 15 min (offline_for_alarm): a broker restart Wills every dispenser
    offline for seconds."""
    cases = {
        "DSP-WILL": (False, DUE + timedelta(minutes=40)),
        "DSP-SILENT": (True, DUE + timedelta(minutes=45 - 16)),
        "DSP-HEARD": (True, DUE + timedelta(minutes=45 - 14)),
        "DSP-NEVER": None,
    }
    for dispenser, presence in cases.items():
        add_dispenser(pool, dispenser, clock.now(), doses=[
            {"time": "08:00", "window_min": 45}, {"time": "08:30", "window_min": 45}])  # fmt: skip
        if presence is not None:
            with pool.connection() as conn:
                conn.execute(
                    "INSERT INTO dispenser_presence (dispenser_id, online, online_changed_at,"
                    " last_seen_at, updated_at) VALUES (%s, %s, %s, %s, %s)",
                    (dispenser, presence[0], presence[1], presence[1], presence[1]),
                )
    clock.set(DUE + timedelta(minutes=45))
    sweep_missed_doses(pool, clock)

    def judged() -> dict[str, bool]:
        with pool.connection() as conn:
            return {j.snapshot.dispenser_id: j.snapshot.offline for j in
                    device_sql.snapshots(conn, clock.now(), timedelta(minutes=15))}  # fmt: skip

    kinds = {d: alarms_of(pool, d)[0]["kind"] for d in cases}
    for_slots = {"DSP-WILL": True, "DSP-SILENT": True, "DSP-HEARD": False, "DSP-NEVER": False}
    assert kinds == {
        d: "dose_status_unknown" if offline else "missed_dose" for d, offline in for_slots.items()
    }
    assert judged() == {**for_slots, "DSP-WILL": False}
    clock.advance(timedelta(minutes=10))  # the Will has stood 15 min, DSP-HEARD silent 24
    assert judged() == {"DSP-WILL": True, "DSP-SILENT": True, "DSP-HEARD": True, "DSP-NEVER": False}


@pytest.mark.parametrize("doses_left", [None, -1, 0, 1, 2, 3, 9])
def test_predicted_empty_is_the_same_in_the_worklist_the_device_sweep_and_the_domain(
    pool: ConnectionPool, clock: FakeClock, doses_left: int | None
) -> None:
    now = clock.now()
    add_dispenser(pool, "DSP-E", now, horizon=timedelta(hours=30))
    if doses_left is not None:
        with pool.connection() as conn:
            conn.execute(
                "INSERT INTO dispenser_supply (dispenser_id, doses_left, doses_left_at, source,"
                " updated_at) VALUES ('DSP-E', %s, %s, 'status', %s)",
                (doses_left, now, now),
            )
    with pool.connection() as conn:
        upcoming = [
            r["due_at"]
            for r in conn.execute(
                "SELECT due_at FROM dose_slots WHERE dispenser_id = 'DSP-E' AND state = 'pending'"
                " AND due_at > %s ORDER BY due_at",
                (now,),
            )
        ]
        [row] = console_sql.worklist(conn, None, now)
        [judged] = device_sql.snapshots(conn, now, timedelta(minutes=15))
    assert len(upcoming) >= 3
    expected = predicted_empty_at(doses_left, upcoming, now)
    assert row["empty_at"] == judged.snapshot.empty_at == expected


def test_the_consoles_order_is_the_domains(pool: ConnectionPool, clock: FakeClock) -> None:
    patient = add_dispenser(pool, "DSP-O", clock.now())
    t = clock.now()
    facts = []
    with pool.connection() as conn:
        for i, (priority, ack, cleared) in enumerate(
            (p, a, c)
            for p in ("low", "high", "medium")
            for a in (False, True)
            for c in (False, True)
        ):
            conn.execute(
                "INSERT INTO alarms (kind, dispenser_id, patient_id, priority, opened_at,"
                " acknowledged_at, cleared_at) VALUES (%s, 'DSP-O', %s, %s, %s, %s, %s)",
                (f"k{i}", patient, priority, t - timedelta(minutes=i % 5), t if ack else None,
                 t if cleared else None),
            )  # fmt: skip
            facts.append(i)
        rows = console_sql.active_alarms(conn, None)
    assert len(rows) == len(facts)
    by_domain = sorted(
        rows,
        key=lambda r: console_order(
            r["acknowledged_at"] is not None,
            r["state"] == "cleared",
            Priority(r["priority"]),
            r["opened_at"],
            r["id"],
        ),
    )
    assert [r["id"] for r in rows] == [r["id"] for r in by_domain]


def test_the_handover_follows_up_what_the_domain_says(
    pool: ConnectionPool, clock: FakeClock
) -> None:
    patient = add_dispenser(pool, "DSP-H", clock.now())
    t = clock.now()
    cases = [("patient_away", None), ("other", None), ("home_visit", "call back at 9"),
             ("home_visit", "  "), ("reached_by_phone", None)]  # fmt: skip
    with pool.connection() as conn:
        for i, (outcome, note) in enumerate(cases):
            conn.execute(
                "INSERT INTO alarms (kind, dispenser_id, patient_id, opened_at, resolved_at,"
                " outcome, note) VALUES (%s, 'DSP-H', %s, %s, %s, %s, %s)",
                (f"k{i}", patient, t, t + timedelta(minutes=i), outcome, note),
            )
        shift = console_sql.handover(conn, None, t - timedelta(hours=1), t + timedelta(hours=1))
    assert [(r["outcome"], r["note"]) for r in shift["follow_up"]] == [
        c for c in cases if needs_follow_up(*c)
    ]
    assert len(shift["follow_up"]) == 3
