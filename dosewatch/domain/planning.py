"""Which slots a dispenser should have in a period: schedule versions plus absences (pure).

A schedule change is a new *version* effective from a moment: version ``v`` plans the slots due
in ``[effective_from(v), effective_from(v + 1))``. Slots due before a change were planned by
the version in force then, so they keep their state; only later ones are re-planned. An
*absence* (hospital stay, travel, dispenser in service) suspends every slot due inside
``[starts_at, ends_at)``: no alarm, left out of adherence, but still visible as ``suspended``.
The same function answers the planning job, re-planning after a change, and the admin's
preview of any period (nothing stored).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from dosewatch.domain.schedule import PlannedSlot, Schedule, expand


@dataclass(frozen=True)
class Version:
    number: int
    effective_from: datetime
    schedule: Schedule


@dataclass(frozen=True)
class Absence:
    id: int
    starts_at: datetime
    ends_at: datetime  # the effective end: the planned one, or when it was ended early

    def covers(self, instant: datetime) -> bool:
        return self.starts_at <= instant < self.ends_at


@dataclass(frozen=True)
class Planned:
    slot: PlannedSlot
    version: int
    absence_id: int | None  # set: the slot is suspended by this absence

    @property
    def state(self) -> str:
        return "suspended" if self.absence_id is not None else "pending"


def plan(
    versions: Sequence[Version], absences: Sequence[Absence], start: datetime, end: datetime
) -> list[Planned]:
    """Every slot due in ``[start, end)``, from the versions in force then, with suspensions."""
    ordered = sorted(versions, key=lambda v: (v.effective_from, v.number))
    out: list[Planned] = []
    for i, version in enumerate(ordered):
        covers_until = ordered[i + 1].effective_from if i + 1 < len(ordered) else end
        lo, hi = max(start, version.effective_from), min(end, covers_until)
        if lo >= hi:
            continue
        for slot in expand(version.schedule, lo, hi):
            absence = next((a for a in absences if a.covers(slot.due_at)), None)
            out.append(Planned(slot, version.number, absence.id if absence else None))
    out.sort(key=lambda p: p.slot.due_at)
    return _one_per_instant(out)


def _one_per_instant(planned: list[Planned]) -> list[Planned]:
    """Two doses can land on one instant (02:30 and 03:30 in a spring-forward gap both become
    03:30). A dispenser serves one dose at a time, so they are one slot: the longer window and
    the stricter flags win, and the labels are joined."""
    merged: list[Planned] = []
    for p in planned:
        if merged and merged[-1].slot.due_at == p.slot.due_at:
            a, b = merged[-1].slot, p.slot
            labels = [x for x in (a.label, b.label) if x]
            slot = replace(
                a,
                window_end=max(a.window_end, b.window_end),
                time_critical=a.time_critical or b.time_critical,
                label=" + ".join(dict.fromkeys(labels)) or None,
            )
            merged[-1] = replace(merged[-1], slot=slot)
        else:
            merged.append(p)
    return merged
