"""The ingest plan as a pure function: decoded messages + a snapshot → the changes to write."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dispenser_sim.messages import event, rfc3339
from dosewatch.domain.ingest import (
    ClearAlarm,
    Inbound,
    Match,
    OpenAlarm,
    Outcome,
    Plan,
    SlotSnapshot,
    SlotWrite,
    Snapshot,
    plan,
    slot_ranges,
)
from dosewatch.domain.slots import SlotState
from gateway.decode import decode

DUE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
END = DUE + timedelta(minutes=45)
SLOT = SlotSnapshot(1, "DSP-1", DUE, END, SlotState.PENDING)
EVENING = SlotSnapshot(
    2, "DSP-1", DUE + timedelta(hours=12), END + timedelta(hours=12), SlotState.PENDING
)


def msg(d: str, kind: str, payload: bytes, at: datetime) -> Inbound:
    return Inbound(f"dosewatch/v1/dispensers/{d}/{kind}", payload, at)


def run(
    messages: list[Inbound],
    fresh: set[tuple[str, str]],
    known: frozenset[str] = frozenset({"DSP-1"}),
) -> Plan:
    decoded = [(m, decode(m.topic, m.payload)) for m in messages]
    return plan(decoded, Snapshot(known, frozenset(fresh), (SLOT, EVENING)))


def test_a_withdrawn_dose_then_a_late_take_opens_then_clears_and_keeps_the_first_close() -> None:
    late = END + timedelta(minutes=20)
    p = run(
        [
            msg(
                "DSP-1",
                "events",
                event("DSP-1", 1, "dose_not_taken", DUE, dose_due_at=DUE, event_id="n"),
                DUE,
            ),
            msg(
                "DSP-1", "events", event("DSP-1", 2, "dose_taken", DUE, event_id="t"), late
            ),  # legacy
        ],
        {("DSP-1", "n"), ("DSP-1", "t")},
    )
    assert p.slots == [SlotWrite(1, SlotState.TAKEN_LATE, DUE, "t")]
    assert p.alarms == [
        OpenAlarm(1, DUE),
        ClearAlarm(1, late, "t", p.events[1].event.type),
    ]
    assert [(e.slot_id, e.match) for e in p.events] == [(1, Match.MATCHED), (1, Match.MATCHED)]


def test_repeats_unknown_dispensers_and_events_that_match_nothing() -> None:
    odd = DUE + timedelta(minutes=17)
    body = event("DSP-1", 1, "dose_taken", odd, dose_due_at=odd, event_id="a")
    p = run(
        [
            msg("DSP-1", "events", body, DUE),
            msg("DSP-1", "events", body, DUE),  # repeated in the batch
            msg("DSP-1", "events", event("DSP-1", 2, "lid_opened", DUE, event_id="old"), DUE),
            msg("DSP-9", "events", event("DSP-9", 1, "lid_opened", DUE, event_id="x"), DUE),
        ],
        {("DSP-1", "a")},  # "old" was stored before: the ledger did not hand it to us
    )
    assert [s.outcome for s in p.outcomes] == [
        Outcome.STORED,
        Outcome.DUPLICATE,
        Outcome.DUPLICATE,
        Outcome.QUARANTINED,
    ]
    assert [(e.event.event_id, e.slot_id, e.match) for e in p.events] == [
        ("a", None, Match.UNMATCHED)
    ]
    assert p.slots == [] and p.alarms == []
    [q] = p.quarantine
    assert q.rejection.reason == "unknown dispenser 'DSP-9'"


def test_the_latest_status_is_the_first_with_the_newest_device_time() -> None:
    def status(at: datetime, battery: int) -> bytes:
        return json.dumps(
            {"v": 1, "dispenser_id": "DSP-1", "at": rfc3339(at), "battery_pct": battery}
        ).encode()

    p = run(
        [
            msg("DSP-1", "status", status(DUE, 10), DUE),
            msg("DSP-1", "status", status(DUE + timedelta(minutes=1), 20), DUE),
            msg("DSP-1", "status", status(DUE + timedelta(minutes=1), 30), DUE),
        ],
        set(),
    )
    assert len(p.statuses) == 3
    assert [r.status.battery_pct for r in p.latest] == [20]


def test_only_new_dose_events_need_their_slots_read() -> None:
    taken = event("DSP-1", 1, "dose_taken", DUE, dose_due_at=DUE, event_id="a")
    legacy = event("DSP-1", 2, "dose_taken", DUE + timedelta(hours=12), event_id="b")
    decoded = [
        (m, decode(m.topic, m.payload))
        for m in [msg("DSP-1", "events", taken, DUE), msg("DSP-1", "events", legacy, DUE)]
    ]
    known = frozenset({"DSP-1"})
    assert slot_ranges(decoded, known, frozenset({("DSP-1", "a")})) == {"DSP-1": (DUE, DUE)}
    assert slot_ranges(decoded, known, frozenset({("DSP-1", "a"), ("DSP-1", "b")})) == {
        "DSP-1": (DUE, DUE + timedelta(hours=15))
    }
