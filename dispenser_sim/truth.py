"""Ground truth: what each simulated dispenser and patient really did, and when it arrived.

The engine writes it as the run goes: each dose's real outcome (taken when, missed, away),
when each of its dose events reached the service (``deliveries``: the receive times, replays
and duplicates included), when the device was cut off and back, and what it reported about
itself (jams, help, the status samples behind power, battery and temperature alarms).
Saved as one JSON document so ``dosewatch sim check`` can run later, from another process.

:func:`expected_states` turns a dose's truth into the slot states the service may rightly
conclude. It does not restate the service's rules: it replays the true deliveries through
the domain's own slot functions (``apply_event``, ``close_window``), so "on time" means what
the service means by it (received inside the window), and only what the truth does not pin
down (was the device already counted offline when the window closed?) widens the answer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from dosewatch.domain.protocol import EventType
from dosewatch.domain.slots import SlotState, apply_event, close_window


@dataclass
class DoseTruth:
    dispenser_id: str
    due: datetime
    window_end: datetime
    outcome: str  # taken, missed (incl. jammed, late beyond the window), away
    taken_at: datetime | None = None
    absence_entered: bool = False  # away, and staff entered the absence in the service
    deliveries: list[tuple[str, datetime]] = field(default_factory=list)  # (type, received)


@dataclass
class Truth:
    run_id: str
    fleet: str
    seed: int
    start: datetime
    end: datetime | None = None
    doses: dict[str, DoseTruth] = field(default_factory=dict)  # key: "<id>|<due iso>"
    offline: dict[str, list[list[datetime | None]]] = field(default_factory=dict)
    # (dispenser, kind, occurred, delivered) for what opens an occurrence alarm
    occurrences: list[tuple[str, str, datetime, datetime]] = field(default_factory=list)
    # dispenser → [(received, battery %, on mains, temperature °C)] of live statuses delivered
    samples: dict[str, list[tuple[datetime, int, bool, float]]] = field(default_factory=dict)
    replays: list[tuple[str, datetime, int, str, bool]] = field(default_factory=list)
    dispensers: list[str] = field(default_factory=list)
    # The service settings the run used, which the expectations depend on.
    offline_after_min: float = 15.0
    device_sweep_min: float = 30.0

    @staticmethod
    def key(dispenser_id: str, due: datetime) -> str:
        return f"{dispenser_id}|{due.isoformat()}"

    def dose(self, dispenser_id: str, due: datetime) -> DoseTruth | None:
        return self.doses.get(self.key(dispenser_id, due))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), default=_iso, indent=0), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Truth:
        raw = json.loads(path.read_text(encoding="utf-8"))
        t = _dt
        return cls(
            run_id=raw["run_id"],
            fleet=raw["fleet"],
            seed=raw["seed"],
            start=t(raw["start"]),
            end=t(raw["end"]) if raw["end"] else None,
            doses={
                k: DoseTruth(
                    d["dispenser_id"],
                    t(d["due"]),
                    t(d["window_end"]),
                    d["outcome"],
                    t(d["taken_at"]) if d["taken_at"] else None,
                    d["absence_entered"],
                    [(typ, t(at)) for typ, at in d["deliveries"]],
                )
                for k, d in raw["doses"].items()
            },
            offline={
                k: [[t(a), t(b) if b else None] for a, b in spans]
                for k, spans in raw["offline"].items()
            },
            occurrences=[(d, k, t(a), t(b)) for d, k, a, b in raw["occurrences"]],
            samples={k: [(t(a), b, m, c) for a, b, m, c in v] for k, v in raw["samples"].items()},
            replays=[(d, t(a), n, o, tw) for d, a, n, o, tw in raw["replays"]],
            dispensers=raw["dispensers"],
            offline_after_min=raw["offline_after_min"],
            device_sweep_min=raw["device_sweep_min"],
        )

    def offline_near(self, dispenser_id: str, at: datetime, before: timedelta) -> bool:
        """Was the device cut off at any moment of ``[at - before, at]``?"""
        for down, up in self.offline.get(dispenser_id, []):
            assert down is not None
            if down <= at and (up is None or up >= at - before):
                return True
        return False


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


_TYPES = {"dose_taken": EventType.DOSE_TAKEN, "dose_not_taken": EventType.DOSE_NOT_TAKEN}


def expected_states(dose: DoseTruth, maybe_offline_at_close: bool) -> set[str]:
    """The slot states the service may rightly end in, given what really happened.

    The window is closed (by the sweep) after the deliveries received up to its end and
    before any received later, as the service's sweep does; offline-at-close is tried both
    ways when the truth cannot say how the service saw the device then.
    """
    if dose.outcome == "away" and dose.absence_entered:
        return {SlotState.SUSPENDED.value}
    results = set()
    for offline in {False, maybe_offline_at_close}:
        state, closed = SlotState.PENDING, False
        for type_, received in sorted(dose.deliveries, key=lambda d: d[1]):
            if not closed and received > dose.window_end:
                closed, state = True, _close(state, dose.window_end, offline)
            change = apply_event(state, _TYPES[type_], received, dose.window_end)
            if change is not None:
                state = change.new_state
        if not closed:
            state = _close(state, dose.window_end, offline)
        results.add(state.value)
    return results


def _close(state: SlotState, window_end: datetime, offline: bool) -> SlotState:
    change = close_window(state, window_end, window_end, device_offline=offline)
    return state if change is None else change.new_state


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_iso))
