"""``dosewatch sim check``: the truth against what the service concluded, via its public API.

For every dose whose window closed (with a margin) before the truth's end:

* **wrong_state**: the slot's state is not one :func:`~dispenser_sim.truth.expected_states`
  allows (``unknown_not_cleared`` when it is ``unknown`` for a dose that was given and whose
  report arrived);
* **missed_alarm**: a dose really missed has no missed-dose / status-unknown alarm;
* **false_alarm**: a dose given (or suspended) has an alarm the service never cleared (unless a
  nurse had resolved it before the report arrived: then there was nothing left to clear).

Device alarms by (dispenser, kind): a kind the truth *requires* (a jam reported, help pressed,
an hour offline with a dose due, power off for over 30 minutes...) must be there
(**missed_device_alarm**); a kind the truth does not even *allow* must not
(**false_device_alarm**). Between the two (a condition that held about as long as the rule's
threshold) either answer is right, so the check is exact without being flaky.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dispenser_sim.staff import Api
from dispenser_sim.truth import DoseTruth, Truth, expected_states
from dosewatch.domain.device_alarms import BATTERY_LOW_PCT, OCCURRENCES, TEMP_RANGE_C
from dosewatch.domain.device_alarms import Settings as DeviceSettings

SLOT_KINDS = frozenset({"missed_dose", "dose_status_unknown"})


@dataclass(frozen=True)
class Difference:
    category: str
    dispenser_id: str
    what: str
    expected: str
    found: str


def check(api: Api, truth: Truth, margin: timedelta = timedelta(minutes=5)) -> list[Difference]:
    assert truth.end is not None, "the truth of an unfinished run"
    end = truth.end - margin
    alarms = [a for a in api.alarms() if a["dispenser_id"] in set(truth.dispensers)]
    by_slot: dict[int, list[dict[str, Any]]] = {}
    for a in alarms:
        if a["slot_id"] is not None:
            by_slot.setdefault(a["slot_id"], []).append(a)
    diffs: list[Difference] = []
    for d in truth.dispensers:
        for slot in api.slots(d, truth.start, truth.end):
            due = datetime.fromisoformat(slot["due_at"])
            if datetime.fromisoformat(slot["window_end"]) > end or due < truth.start:
                continue
            dose = truth.dose(d, due)
            diffs += _slot(d, slot, dose, by_slot.get(slot["id"], []), truth)
    diffs += device_differences(truth, alarms)
    return diffs


def _slot(
    d: str, slot: dict[str, Any], dose: DoseTruth | None, alarms: list[dict[str, Any]], truth: Truth
) -> list[Difference]:
    what = slot["due_at"]
    if dose is None:
        return [Difference("wrong_state", d, what, "no dose planned by the device", slot["state"])]
    offline = truth.offline_near(d, dose.window_end, timedelta(minutes=truth.offline_after_min))
    allowed = expected_states(dose, offline)
    out = []
    state = slot["state"]
    if state not in allowed:
        category = "wrong_state"
        if state == "unknown" and dose.outcome == "taken" and dose.deliveries:
            category = "unknown_not_cleared"
        out.append(Difference(category, d, what, "/".join(sorted(allowed)), state))
    slot_alarms = [a for a in alarms if a["kind"] in SLOT_KINDS]
    if allowed & {"missed", "unknown"} and allowed <= {"missed", "unknown"}:
        if not slot_alarms:
            out.append(Difference("missed_alarm", d, what, "missed-dose alarm", "none"))
    else:
        # False: never cleared, and not closed by a nurse before the report could clear it
        # (the service leaves a resolved alarm as the nurse closed it).
        takes = [at for kind, at in dose.deliveries if kind == "dose_taken"]
        first = min(takes) if takes else None
        standing = [
            a
            for a in slot_alarms
            if a["cleared_at"] is None
            and (
                a["resolved_at"] is None
                or first is None
                or datetime.fromisoformat(a["resolved_at"]) >= first
            )
        ]
        if standing:
            kinds = ",".join(a["kind"] for a in standing)
            out.append(Difference("false_alarm", d, what, "no alarm left uncleared", kinds))
    return out


def _runs(samples: list[tuple[datetime, bool]]) -> list[tuple[datetime, datetime]]:
    """Spans of consecutive samples where the flag holds: (first, first sample after)."""
    spans, begun = [], None
    for at, flag in samples:
        if flag and begun is None:
            begun = at
        elif not flag and begun is not None:
            spans.append((begun, at))
            begun = None
    if begun is not None:
        spans.append((begun, samples[-1][0]))
    return spans


def _longest(spans: Iterable[tuple[datetime, datetime]]) -> timedelta:
    return max((b - a for a, b in spans), default=timedelta(-1))


def device_expectations(truth: Truth) -> dict[str, tuple[set[str], set[str]]]:
    """dispenser → (kinds required, kinds allowed) by what it really did and reported."""
    offline_after = timedelta(minutes=truth.offline_after_min)
    cfg = DeviceSettings(offline_after=offline_after)
    sweep = timedelta(minutes=truth.device_sweep_min)
    assert truth.end is not None
    out: dict[str, tuple[set[str], set[str]]] = {d: (set(), set()) for d in truth.dispensers}
    for d, type_, occurred, delivered in truth.occurrences:
        kind = OCCURRENCES[type_][0]
        required, allowed = out[d]
        allowed.add(kind)
        if delivered + sweep + timedelta(
            minutes=5
        ) <= truth.end and delivered - occurred < timedelta(hours=23):
            required.add(kind)
    for d, samples in truth.samples.items():
        required, allowed = out[d]
        checks = (
            (
                "temperature",
                [(s[0], not TEMP_RANGE_C[0] <= s[3] <= TEMP_RANGE_C[1]) for s in samples],
                timedelta(0),
            ),
            ("power_lost", [(s[0], not s[2]) for s in samples], cfg.power_lost_after),
            ("battery_low", [(s[0], s[1] < BATTERY_LOW_PCT) for s in samples], timedelta(0)),
        )
        for condition, flags, threshold in checks:
            runs = _runs(flags)
            if runs:
                allowed.add(condition)
            if _longest(runs) >= threshold + sweep + timedelta(minutes=15):
                required.add(condition)
    for d, spans in truth.offline.items():
        required, allowed = out[d]
        allowed.update({"dispenser_offline", "schedule_not_applied"})
        due = sorted(x.due for x in truth.doses.values() if x.dispenser_id == d)
        for down, up in spans:
            assert down is not None
            up = up or truth.end
            first = down + offline_after + sweep
            if any(max(first, t - cfg.offline_horizon) + sweep <= up and t >= first for t in due):
                required.add("dispenser_offline")
    return out


def device_differences(truth: Truth, alarms: list[dict[str, Any]]) -> list[Difference]:
    found: dict[str, set[str]] = {}
    for a in alarms:
        if a["slot_id"] is None:
            found.setdefault(a["dispenser_id"], set()).add(a["kind"])
    diffs = []
    for d, (required, allowed) in sorted(device_expectations(truth).items()):
        have = found.get(d, set())
        for kind in sorted(required - have):
            diffs.append(Difference("missed_device_alarm", d, kind, "an alarm", "none"))
        for kind in sorted(have - allowed - required):
            diffs.append(Difference("false_device_alarm", d, kind, "none", "an alarm"))
    return diffs


def table(diffs: list[Difference]) -> str:
    if not diffs:
        return "0 differences"
    rows = [("category", "dispenser", "dose / alarm", "expected", "found")]
    rows += [(x.category, x.dispenser_id, x.what, x.expected, x.found) for x in diffs]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    counts: dict[str, int] = {}
    for x in diffs:
        counts[x.category] = counts.get(x.category, 0) + 1
    summary = ", ".join(f"{n} {c}" for c, n in sorted(counts.items()))
    return "\n".join(lines) + f"\n{len(diffs)} differences ({summary})"
