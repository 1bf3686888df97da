"""The people around the fleet, through the service's public API only.

An admin sets the fleet up (teams, patients, dispensers, schedules), staff enter hospital
stays as absences, a pharmacist records each refill, a night nurse acknowledges and resolves
alarms. The same HTTP calls work against a running service (an ``httpx.Client`` with a base
URL and an admin token) and in process (FastAPI's ``TestClient`` over ``create_app`` with the
run's clock), which is how ``sim history`` keeps the API's clock simulated.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from dispenser_sim.messages import rfc3339
from dispenser_sim.profiles import Fleet

log = logging.getLogger(__name__)
SIM_NOTE = "simulated by dispenser_sim"  # every patient a run makes carries this note
_PAGE = 50  # the newest alarms a nurse round looks at first


class Response(Protocol):
    status_code: int
    text: str

    def json(self) -> Any: ...


class Http(Protocol):
    def get(self, url: str, *, params: Any = ...) -> Any: ...
    def post(self, url: str, *, json: Any = ...) -> Any: ...
    def put(self, url: str, *, json: Any = ...) -> Any: ...


class ApiError(RuntimeError):
    pass


class Api:
    """Thin: a call, its status checked, its JSON returned."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def _ok(self, r: Response, what: str, allowed: tuple[int, ...] = ()) -> Any:
        if r.status_code >= 400 and r.status_code not in allowed:
            raise ApiError(f"{what}: HTTP {r.status_code}: {r.text[:300]}")
        return r.json() if r.status_code != 204 else None

    def get(self, url: str, **params: Any) -> Any:
        return self._ok(self.http.get(url, params=params), f"GET {url}")

    def post(self, url: str, body: Any, allowed: tuple[int, ...] = ()) -> Any:
        return self._ok(self.http.post(url, json=body), f"POST {url}", allowed)

    def put(self, url: str, body: Any) -> Any:
        return self._ok(self.http.put(url, json=body), f"PUT {url}")

    def slots(self, dispenser_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while start < end:  # the API answers at most 62 days at a time
            stop = min(end, start + timedelta(days=60))
            out += self.get(
                f"/api/v1/dispensers/{dispenser_id}/slots",
                **{"from": rfc3339(start), "to": rfc3339(stop)},
            )
            start = stop
        return out

    def alarms(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.get("/api/v1/alarms", limit=1000)
        if len(rows) >= 1000:
            raise ApiError("more than 1,000 alarms: /api/v1/alarms cannot list them all")
        return rows


def foreign_patients(api: Api) -> list[dict[str, Any]]:
    """Patients the simulator did not make (the note marks its own)."""
    rows: list[dict[str, Any]] = api.get("/api/v1/console/patients")
    return [p for p in rows if not (p.get("note") or "").startswith(SIM_NOTE)]


def set_up_fleet(api: Api, fleet: Fleet, start: datetime, run_id: str) -> None:
    """Teams, patients, dispensers and schedules, as an admin would enter them."""
    teams = {t["name"]: t["id"] for t in api.get("/api/v1/teams")}
    for name in fleet.teams:
        if name not in teams:
            teams[name] = api.post("/api/v1/teams", {"name": name})["id"]
    valid_from = start.astimezone(_tz(fleet)).date().isoformat()
    for n, spec in enumerate(fleet.dispensers):
        patient = api.post(
            "/api/v1/patients",
            {
                "name": spec.patient_name,
                "phone": f"+46 90 555 {n:04d}",
                "address": f"Simulerad gata {n + 1}, Umeå",
                "note": f"{SIM_NOTE}: fleet {fleet.name}, run {run_id}, {spec.profile_name}",
            },
        )
        if spec.team is not None:
            api.put(f"/api/v1/patients/{patient['id']}/team", {"team_id": teams[spec.team]})
        api.post("/api/v1/dispensers", {"id": spec.id, "patient_id": patient["id"]})
        api.put(
            f"/api/v1/dispensers/{spec.id}/schedule",
            {
                "timezone": fleet.timezone,
                "doses": list(spec.doses),
                "valid_from": valid_from,
                "changed_by": "simulated admin",
            },
        )


def _tz(fleet: Fleet) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(fleet.timezone)


class ApiStaff:
    """Staff acting through the API: absences, refills, and (optionally) alarm rounds."""

    def __init__(
        self,
        api: Api,
        *,
        nurse_after: timedelta | None = timedelta(minutes=20),
        dispensers: frozenset[str] | None = None,
    ) -> None:
        """``dispensers``: the nurse handles only these dispensers' alarms (a fleet's own), and
        leaves the rest of the database's to the people watching it."""
        self.api, self.nurse_after, self.dispensers = api, nurse_after, dispensers
        self._last_round: datetime | None = None
        self.refills = 0
        self.absences = 0

    def absence(self, dispenser_id: str, starts: datetime, ends: datetime) -> None:
        body = {"starts_at": rfc3339(starts), "ends_at": rfc3339(ends), "reason": "hospital stay"}
        self.api.post(
            f"/api/v1/dispensers/{dispenser_id}/absences", {**body, "by": "simulated nurse"}
        )
        self.absences += 1

    def refill(self, dispenser_id: str, doses_loaded: int) -> None:
        self.api.post(f"/api/v1/dispensers/{dispenser_id}/refills", {"doses_loaded": doses_loaded})
        self.refills += 1

    def nurse_round(self, now: datetime, *, thorough: bool = False) -> int:
        """Acknowledge and resolve every alarm unresolved for ``nurse_after`` (open,
        acknowledged, or cleared by a late report: a nurse still closes it); return how many."""
        if self.nurse_after is None:
            return 0
        done = 0
        for alarm in self._unresolved(now, thorough):
            if datetime.fromisoformat(alarm["opened_at"]) > now - self.nurse_after:
                continue
            if self.dispensers is not None and alarm.get("dispenser_id") not in self.dispensers:
                continue
            self._resolve(alarm)
            done += 1
        return done

    def _unresolved(self, now: datetime, thorough: bool) -> list[dict[str, Any]]:
        """Every unresolved alarm the round may close. Usually one look at the newest alarms
        is enough: the last round closed everything opened before its time less
        ``nurse_after``, so when the page reaches back that far it holds every alarm this
        round can find unresolved. Otherwise (a burst of alarms, the first round, or a
        ``thorough`` round) every unresolved state is asked for."""
        last, self._last_round = self._last_round, now
        if last is not None and self.nurse_after is not None and not thorough:
            page: list[dict[str, Any]] = self.api.get("/api/v1/alarms", limit=_PAGE)
            reach = datetime.fromisoformat(page[-1]["opened_at"]) if page else None
            if len(page) < _PAGE or (reach is not None and reach <= last - self.nurse_after):
                return [a for a in page if a["state"] != "resolved"]
        return [
            a for state in ("open", "acknowledged", "cleared")
            for a in self.api.get("/api/v1/alarms", state=state, limit=1000)
        ]  # fmt: skip

    def _resolve(self, alarm: dict[str, Any]) -> None:
        url = f"/api/v1/alarms/{alarm['id']}"
        self.api.post(f"{url}/acknowledge", {"by": "simulated nurse"}, allowed=(409,))
        if alarm.get("cleared_at"):
            outcome = "dose_taken_late"
        elif alarm["kind"] in ("missed_dose", "dose_status_unknown"):
            outcome = "reached_by_phone"
        else:
            outcome = "home_visit"
        self.api.post(
            f"{url}/resolve", {"outcome": outcome, "by": "simulated nurse"}, allowed=(409,)
        )


def adherence_from_slot_states(
    api: Api, dispenser_ids: list[str], start: datetime, end: datetime
) -> tuple[float, dict[str, int]]:
    """Adherence as the service's slot states give it: (taken + taken_late) / slots not
    suspended, over slots due in ``[start, end)``.

    Stand-in until the adherence API (``/api/v1/reports/…``, another branch) is merged: the
    coordinator switches this one function to the service's own figure.
    """
    counts: dict[str, int] = {}
    for d in dispenser_ids:
        for slot in api.slots(d, start, end):
            counts[slot["state"]] = counts.get(slot["state"], 0) + 1
    planned = sum(n for s, n in counts.items() if s != "suspended")
    taken = counts.get("taken", 0) + counts.get("taken_late", 0)
    return (taken / planned if planned else 1.0), counts
