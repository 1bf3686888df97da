"""Adherence: what a dispenser's dose slots say about how a patient takes their medication.

The vocabulary is the *implementation* phase of the ABC taxonomy (Vrijens et al. 2012) and the
electronic-monitoring measures built on it. Each figure is a pure function of slot states:

- **expected** doses are the decided slots of the period that were not ``suspended``:
  ``taken + taken_late + missed + unknown``. A suspended slot (an absence: hospital, a trip) is
  not monitored and counts nowhere; a ``pending`` slot is not decided yet and waits.
- **taking adherence** = (taken + taken_late) / expected;
- **timing adherence** = taken (inside the window, by the server's receive time) / expected;
- **correct-dosing days** = monitored days on which every expected dose was taken / monitored
  days. A monitored day is a patient's local day with at least one expected dose and none still
  pending (today counts once its last window has closed).
- ``unknown`` (the dispenser was offline when the window closed) that a replayed event later
  resolves has already become ``taken_late`` by the slot rule (:mod:`dosewatch.domain.slots`),
  so it counts as what it turned out to be. One never resolved counts as **not taken** in every
  headline figure and is reported on its own, so a device problem is visible and never hidden
  as taken.
- an absence entered **afterwards** (the patient turned out to be in hospital last Tuesday) takes
  that period out too: a slot due inside a recorded absence counts as ``suspended`` unless the
  dose was taken, whatever the sweep had decided (:func:`counted_state`);
- a slot belongs to the patient's **local day** of its due time (:func:`local_day`), even when
  its window runs past midnight, daylight-saving days included.

The rollup (:mod:`dosewatch.db.rollups`) keeps :class:`DayCounts` per dispenser and local day in
SQL; a test holds that SQL to :func:`rollup` here on the same slots.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime
from zoneinfo import ZoneInfo

from dosewatch.domain.slots import SlotState

# The counted columns of a day, named like the states they count (the rollup's columns too).
COUNTED_STATES: tuple[SlotState, ...] = (
    SlotState.TAKEN,
    SlotState.TAKEN_LATE,
    SlotState.MISSED,
    SlotState.UNKNOWN,
    SlotState.SUSPENDED,
    SlotState.PENDING,
)
DEFAULT_THRESHOLD_PCT = 95.0


def local_day(due_at: datetime, timezone: str) -> date:
    """The patient's calendar day a slot belongs to: its due time's local date."""
    if due_at.tzinfo is None:
        raise ValueError("due_at must be timezone-aware")
    return due_at.astimezone(ZoneInfo(timezone)).date()


@dataclass(frozen=True)
class DayCounts:
    """Slot counts by state for one dispenser (or patient) on one local day, or any sum."""

    taken: int = 0
    taken_late: int = 0
    missed: int = 0
    unknown: int = 0
    suspended: int = 0
    pending: int = 0

    def __add__(self, other: DayCounts) -> DayCounts:
        return DayCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @classmethod
    def of(cls, state: SlotState | str) -> DayCounts:
        """One slot's contribution."""
        return cls(**{SlotState(state).value: 1})

    @property
    def expected(self) -> int:
        return self.taken + self.taken_late + self.missed + self.unknown

    @property
    def taken_any(self) -> int:
        return self.taken + self.taken_late

    @property
    def monitored(self) -> bool:
        """As one day: some dose was expected and every one is decided."""
        return self.expected > 0 and self.pending == 0

    @property
    def correct(self) -> bool:
        """As one day: monitored, and every expected dose taken (on time or late)."""
        return self.monitored and self.taken_any == self.expected


def pct(numerator: int, denominator: int) -> float | None:
    """A percentage rounded to 2 decimals, or None when nothing was expected."""
    if denominator <= 0:
        return None
    return round(100.0 * numerator / denominator, 2)


@dataclass(frozen=True)
class Figures:
    """The adherence figures of any set of patient-days (a patient, team, municipality...)."""

    counts: DayCounts
    correct_dosing_days: int
    monitored_days: int
    patients: int

    @property
    def expected(self) -> int:
        return self.counts.expected

    @property
    def taking_adherence_pct(self) -> float | None:
        return pct(self.counts.taken_any, self.counts.expected)

    @property
    def timing_adherence_pct(self) -> float | None:
        return pct(self.counts.taken, self.counts.expected)

    @property
    def correct_dosing_days_pct(self) -> float | None:
        return pct(self.correct_dosing_days, self.monitored_days)

    def as_dict(self) -> dict[str, int | float | None]:
        c = self.counts
        return {
            "expected": c.expected,
            "taken": c.taken,
            "taken_late": c.taken_late,
            "missed": c.missed,
            "unknown": c.unknown,
            "suspended": c.suspended,
            "pending": c.pending,
            "taking_adherence_pct": self.taking_adherence_pct,
            "timing_adherence_pct": self.timing_adherence_pct,
            "correct_dosing_days": self.correct_dosing_days,
            "monitored_days": self.monitored_days,
            "correct_dosing_days_pct": self.correct_dosing_days_pct,
            "patients": self.patients,
        }


EMPTY = Figures(DayCounts(), 0, 0, 0)


def figures(patient_days: Iterable[tuple[int, date, DayCounts]]) -> Figures:
    """Figures over ``(patient_id, local_day, counts)``; rows of the same patient and day (two
    dispensers) are one patient-day, so a correct day needs every dose of both."""
    merged: dict[tuple[int, date], DayCounts] = {}
    for patient_id, day, counts in patient_days:
        key = (patient_id, day)
        merged[key] = merged.get(key, DayCounts()) + counts
    total = DayCounts()
    correct = monitored = 0
    for counts in merged.values():
        total += counts
        monitored += counts.monitored
        correct += counts.correct
    return Figures(total, correct, monitored, len({p for p, _ in merged}))


def counted_state(state: SlotState | str, in_absence: bool) -> SlotState:
    """The state a slot counts as: inside an absence, anything but a take is ``suspended``."""
    state = SlotState(state)
    if in_absence and state not in (SlotState.TAKEN, SlotState.TAKEN_LATE):
        return SlotState.SUSPENDED
    return state


@dataclass(frozen=True)
class Slot:
    """What adherence needs of a dose slot."""

    dispenser_id: str
    due_at: datetime
    state: SlotState
    timezone: str
    in_absence: bool = False


def rollup(slots: Iterable[Slot]) -> dict[tuple[str, date], DayCounts]:
    """Daily counts per dispenser and local day: the definition the SQL rollup must match."""
    days: dict[tuple[str, date], DayCounts] = {}
    for slot in slots:
        key = (slot.dispenser_id, local_day(slot.due_at, slot.timezone))
        days[key] = days.get(key, DayCounts()) + DayCounts.of(
            counted_state(slot.state, slot.in_absence)
        )
    return days


def under_threshold(figs: Figures, threshold_pct: float = DEFAULT_THRESHOLD_PCT) -> bool:
    """Whether a patient's taking adherence is below the threshold (never for no data)."""
    # On the exact fraction, not the rounded percentage: 94.996 % is under 95 %.
    expected = figs.counts.expected
    return expected > 0 and 100 * figs.counts.taken_any < threshold_pct * expected
