# mypy: disable-error-code="call-overload,index"
"""The gateway's own logic, without a broker: messages are fired in-process (``fire_message``)
into the real gateway and database and written on the test's thread. No polling, no sleeping;
receive times come from the test's FakeClock. Through the real broker: ``tests/e2e``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from alarms.jobs import sweep_missed_doses
from dashboards.app import create_app
from dispenser_sim.messages import event, rfc3339
from dosewatch.clock import FakeClock
from dosewatch.db import ingest as ingest_sql
from dosewatch.db import presence as presence_sql
from gateway import metrics
from gateway.mqtt import Gateway
from tests.auth_helpers import as_admin
from tests.gateway_helpers import InMemorySource, fire_message, fire_messages, memory_gateway
from tests.helpers import add_dispenser, alarms_of, slot_states

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Stockholm, window 45 min
FAST = timedelta(minutes=5)


@pytest.fixture
def gw(pool: ConnectionPool, clock: FakeClock) -> Iterator[Gateway]:
    with memory_gateway(pool, clock) as g:
        yield g


def topic(dispenser_id: str, kind: str = "events") -> str:
    return f"dosewatch/v1/dispensers/{dispenser_id}/{kind}"


def status(dispenser_id: str, at: datetime) -> bytes:
    return json.dumps(
        {"v": 1, "dispenser_id": dispenser_id, "at": rfc3339(at), "battery_pct": 80}
    ).encode()


def one(pool: ConnectionPool, sql: str, *params: object) -> Any:
    with pool.connection() as conn:
        return conn.execute(sql, params).fetchone()


def presence(pool: ConnectionPool, dispenser_id: str) -> dict[str, Any]:
    with pool.connection() as conn:
        row = presence_sql.get_presence(conn, dispenser_id)
    assert row is not None
    return row


# --- events --------------------------------------------------------------------------------------


def test_spoofed_topic_and_unknown_dispenser_are_quarantined_and_acknowledged(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-000123", clock.now())
    spoofed = event("DSP-OTHER", 1, "dose_taken", DUE)
    assert fire_message(gw, topic("DSP-000123"), spoofed) == {"quarantined": 1}
    assert fire_message(gw, topic("DSP-GHOST"), event("DSP-GHOST", 1, "lid_opened", DUE)) == {
        "quarantined": 1
    }
    assert fire_message(gw, topic("DSP-000123"), event("DSP-000123", 2, "lid_opened", DUE)) == {
        "stored": 1
    }
    with pool.connection() as conn:
        reasons = [r["reason"] for r in conn.execute("SELECT reason FROM quarantine ORDER BY id")]
    assert "differs from payload dispenser_id" in reasons[0]
    assert reasons[1] == "unknown dispenser 'DSP-GHOST'"
    assert isinstance(gw.source, InMemorySource) and gw.source.acked == [1, 2, 3]


def test_a_redelivered_malformed_message_is_one_quarantine_record_counted_twice(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    """QoS 1 redelivers after a reconnect or restart (acks go out only after commit)."""
    add_dispenser(pool, "DSP-000123", clock.now())
    quarantined = metrics.value(metrics.QUARANTINED, reason="not_json")
    first = clock.now()
    assert fire_message(gw, topic("DSP-000123"), b"{not json") == {"quarantined": 1}
    clock.advance(timedelta(seconds=30))
    assert fire_message(gw, topic("DSP-000123"), b"{not json") == {"quarantined": 1}
    assert isinstance(gw.source, InMemorySource) and gw.source.acked == [1, 2]
    with pool.connection() as conn:
        [row] = conn.execute(
            "SELECT payload, repeats, received_at, last_received_at FROM quarantine"
        ).fetchall()
    assert bytes(row["payload"]) == b"{not json" and row["repeats"] == 2
    assert (row["received_at"], row["last_received_at"]) == (first, clock.now())
    # The metric counts receipts: both.
    assert metrics.value(metrics.QUARANTINED, reason="not_json") == quarantined + 2


def test_the_same_event_twice_is_stored_once(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-000123", clock.now())
    body = event("DSP-000123", 5, "lid_opened", DUE, event_id="twice")
    assert fire_messages(gw, [(topic("DSP-000123"), body)] * 2) == {"stored": 1, "duplicate": 1}
    assert fire_message(gw, topic("DSP-000123"), body) == {"duplicate": 1}  # a redelivery
    assert one(pool, "SELECT count(*) AS n FROM dose_events")["n"] == 1


def test_dose_taken_inside_the_window_means_taken_and_no_alarm(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-A", clock.now())
    clock.set(DUE + timedelta(minutes=4))
    taken = event("DSP-A", 1, "dose_taken", clock.now(), dose_due_at=DUE, doses_left=20)
    fire_message(gw, topic("DSP-A"), taken)
    assert slot_states(pool, "DSP-A")[DUE] == "taken"
    clock.set(DUE + timedelta(hours=2))
    assert sweep_missed_doses(pool, clock) == []
    assert alarms_of(pool, "DSP-A") == []


def test_no_event_gives_one_alarm_and_a_late_dose_clears_it(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-A", clock.now())
    clock.set(DUE + timedelta(minutes=45))
    assert len(sweep_missed_doses(pool, clock)) == 1
    clock.advance(timedelta(minutes=10))
    fire_message(gw, topic("DSP-A"), event("DSP-A", 7, "dose_taken", clock.now(), dose_due_at=DUE))
    assert slot_states(pool, "DSP-A")[DUE] == "taken_late"
    [alarm] = alarms_of(pool, "DSP-A")
    assert (alarm["state"], alarm["cleared_at"]) == ("cleared", clock.now())
    assert alarm["acknowledged_at"] is None  # clearing is not acknowledging


def test_device_dose_not_taken_opens_the_alarm_at_once(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-A", clock.now())
    clock.set(DUE + timedelta(minutes=30))  # window still open on the server
    not_taken = event("DSP-A", 3, "dose_not_taken", clock.now(), dose_due_at=DUE)
    fire_message(gw, topic("DSP-A"), not_taken)
    assert len(alarms_of(pool, "DSP-A")) == 1
    assert slot_states(pool, "DSP-A")[DUE] == "missed"
    clock.set(DUE + timedelta(hours=1))
    assert sweep_missed_doses(pool, clock) == []  # the sweep does not add a second one


def test_unmatched_and_legacy_dose_events(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-A", clock.now())
    odd = datetime(2026, 11, 23, 3, 17, tzinfo=UTC)
    fire_message(
        gw, topic("DSP-A"), event("DSP-A", 4, "dose_taken", odd, dose_due_at=odd, event_id="u")
    )
    # Older firmware sends no dose_due_at: the nearest due time within 3 h wins.
    clock.set(DUE + timedelta(minutes=10))
    legacy = event("DSP-A", 5, "dose_taken", DUE + timedelta(minutes=9), event_id="l")
    fire_message(gw, topic("DSP-A"), legacy)
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT event_id, match, slot_id FROM dose_events ORDER BY seq"
        ).fetchall()
    assert [(r["event_id"], r["match"], r["slot_id"] is None) for r in rows] == [
        ("u", "unmatched", True),
        ("l", "matched", False),
    ]
    assert slot_states(pool, "DSP-A")[DUE] == "taken"


# --- presence ------------------------------------------------------------------------------------


def test_a_clock_five_minutes_fast_is_estimated_and_flagged_but_never_trusted(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-FAST", clock.now())
    fire_message(gw, topic("DSP-FAST", "status"), status("DSP-FAST", clock.now() + FAST))
    clock.set(DUE + timedelta(minutes=44))  # inside the window by the server clock
    fire_messages(
        gw,
        [
            # Stamped 2 s before it arrived: a slower trip gives a smaller sample.
            (
                topic("DSP-FAST"),
                event("DSP-FAST", 1, "dose_presented", clock.now() + FAST - timedelta(seconds=2)),
            ),
            # The device says 07:49, after window_end 07:45: the server clock decides.
            (
                topic("DSP-FAST"),
                event("DSP-FAST", 2, "dose_taken", clock.now() + FAST, dose_due_at=DUE),
            ),
            # Buffered offline for two days: a very negative sample, ignored by the maximum.
            (
                topic("DSP-FAST"),
                event("DSP-FAST", 3, "lid_opened", clock.now() + FAST - timedelta(days=2)),
            ),
        ],
    )
    row = presence(pool, "DSP-FAST")
    assert len(row["clock_samples"]) == 4
    assert row["clock_offset_s"] == pytest.approx(300.0, abs=1.0)
    assert row["clock_flagged"] is True
    assert row["last_seen_at"] == clock.now()
    assert slot_states(pool, "DSP-FAST")[DUE] == "taken"  # on time: received before window_end
    # And the API shows it to staff with the dispenser.
    with as_admin(TestClient(create_app(pool, clock)), pool) as api:
        shown = api.get("/api/v1/dispensers/DSP-FAST").json()["presence"]
    assert shown["clock_flagged"] is True
    assert shown["last_seen_at"] == rfc3339(clock.now())


def test_a_correct_clock_is_not_flagged(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-RIGHT", clock.now())
    fire_message(gw, topic("DSP-RIGHT", "status"), status("DSP-RIGHT", clock.now()))
    clock.advance(timedelta(minutes=1))
    lid = event("DSP-RIGHT", 1, "lid_opened", clock.now() - timedelta(seconds=1))
    fire_message(gw, topic("DSP-RIGHT"), lid)
    row = presence(pool, "DSP-RIGHT")
    assert row["clock_offset_s"] == pytest.approx(0.0, abs=1.0)
    assert row["clock_flagged"] is False


def test_online_changes_are_recorded_with_their_history(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-ON", clock.now())
    t_off = clock.now()
    fire_message(gw, topic("DSP-ON", "online"), b"0")  # the Last Will
    t_on = clock.advance(timedelta(minutes=7))
    fire_message(gw, topic("DSP-ON", "online"), b"1")  # back: the device's own '1'
    with pool.connection() as conn:
        rows = presence_sql.online_history(conn, "DSP-ON")
    assert [(r["at"], r["online"], r["source"]) for r in reversed(rows)] == [
        (t_off, False, "lwt_or_topic"),
        (t_on, True, "lwt_or_topic"),
    ]
    row = presence(pool, "DSP-ON")
    assert (row["online"], row["online_changed_at"]) == (True, t_on)
    assert row["last_seen_at"] == t_on  # the Last Will is not a sign of life


def test_an_unknown_dispensers_online_message_is_quarantined(
    pool: ConnectionPool, gw: Gateway
) -> None:
    assert fire_message(gw, topic("DSP-GHOST-ON", "online"), b"1") == {"quarantined": 1}
    row = one(pool, "SELECT reason FROM quarantine WHERE dispenser_id = 'DSP-GHOST-ON'")
    assert "unknown dispenser" in row["reason"]
    with pool.connection() as conn:
        assert presence_sql.get_presence(conn, "DSP-GHOST-ON") is None


def test_last_seen_is_the_server_time_of_the_last_message_and_replays_add_no_samples(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-SEEN", clock.now())
    fire_message(gw, topic("DSP-SEEN", "status"), status("DSP-SEEN", clock.now()))
    clock.advance(timedelta(minutes=3))
    replayed = event("DSP-SEEN", 1, "lid_opened", clock.now(), event_id="ev-seen")
    fire_message(gw, topic("DSP-SEEN"), replayed)
    assert presence(pool, "DSP-SEEN")["last_seen_at"] == clock.now()
    # The same event again (no PUBACK reached the device): alive now, but no new sample.
    last = clock.advance(timedelta(minutes=2))
    assert fire_message(gw, topic("DSP-SEEN"), replayed) == {"duplicate": 1}
    row = presence(pool, "DSP-SEEN")
    assert (row["last_seen_at"], row["clock_samples"], row["updated_at"]) == (
        last,
        [0.0, 0.0],
        last,
    )


# --- errors: a database refusal vs a bug ---------------------------------------------------------


@pytest.fixture
def restore_health() -> Iterator[None]:
    yield
    metrics.HEALTHY.set(1)  # the gauge is process-wide; the next test starts healthy


def test_a_database_refusal_selects_the_fallback_and_quarantines_only_the_poison(
    pool: ConnectionPool, gw: Gateway, clock: FakeClock
) -> None:
    add_dispenser(pool, "DSP-P", clock.now())
    poison = json.loads(event("DSP-P", 2, "error", DUE, event_id="bad"))
    poison["detail"] = {"message": "nul \u0000 byte"}  # valid JSON; jsonb refuses it
    fallbacks = metrics.value(metrics.FALLBACKS)
    outcomes = fire_messages(
        gw,
        [
            (topic("DSP-P"), event("DSP-P", 1, "lid_opened", DUE, event_id="g1")),
            (topic("DSP-P"), json.dumps(poison).encode()),
        ],
    )
    assert outcomes == {"stored": 1, "quarantined": 1}
    assert metrics.value(metrics.FALLBACKS) == fallbacks + 1
    assert one(pool, "SELECT reason FROM quarantine")["reason"].startswith("storage error")
    assert gw.healthy


def test_a_bug_is_not_a_slow_path_nor_a_hold_it_is_counted_quarantined_and_unhealthy(
    pool: ConnectionPool,
    gw: Gateway,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    restore_health: None,
) -> None:
    add_dispenser(pool, "DSP-B", clock.now())

    def defect(*_: object) -> None:
        raise ZeroDivisionError("a defect in the plan")

    monkeypatch.setattr(ingest_sql.ingest, "plan", defect)  # a code bug, not a database error
    fallbacks, bugs = metrics.value(metrics.FALLBACKS), metrics.value(metrics.BUGS, where="write")
    body = event("DSP-B", 1, "dose_taken", DUE, dose_due_at=DUE)
    with caplog.at_level(logging.ERROR, logger="gateway.mqtt"):
        assert fire_message(gw, topic("DSP-B"), body) == {"quarantined": 1}  # and acknowledged
    assert metrics.value(metrics.FALLBACKS) == fallbacks  # never the one-by-one path
    assert metrics.value(metrics.BUGS, where="write") == bugs + 1
    assert metrics.value(metrics.HEALTHY) == 0 and not gw.healthy
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
    row = one(pool, "SELECT reason, payload FROM quarantine")
    assert row["reason"] == "gateway bug: ZeroDivisionError: a defect in the plan"
    assert bytes(row["payload"]) == body  # the raw bytes are kept
    assert metrics.reason_label(row["reason"]) == "gateway_bug"
    assert one(pool, "SELECT count(*) AS n FROM dose_events")["n"] == 0
