"""The FHIR R4 export over a fixture month, validated with ``fhirclient``'s R4 (4.0.1) models.

The month is built through the service's own ingest path (``write_batch``) and sweep on a fake
clock: an on-time dose, a late dose, a missed dose, an ``unknown`` later resolved by a replayed
event, one left ``unknown``, and an absence. The export must match the slot states one to one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from fhirclient.models import bundle as fhir_bundle
from fhirclient.models import capabilitystatement, device, medicationadministration, patient
from psycopg_pool import ConnectionPool

from alarms.missed import sweep_missed_doses
from dashboards.app import create_app
from dispenser_sim.messages import event, rfc3339
from dosewatch.clock import FakeClock
from dosewatch.db import absences
from dosewatch.db import schedules as schedule_sql
from dosewatch.db.fhir import EXPORTED_STATES
from gateway.writer import Inbound, write_batch
from tests.auth_helpers import bearer, team
from tests.helpers import add_dispenser

STHLM = ZoneInfo("Europe/Stockholm")
D = "FHIR-1"
START = datetime(2026, 10, 1, tzinfo=STHLM)  # the month has the fall-back night (25 Oct)
END = datetime(2026, 11, 1, tzinfo=STHLM)
ADMIN_STATUS = {"taken": "completed", "taken_late": "completed", "missed": "not-done",
                "unknown": "unknown"}  # fmt: skip


def _local(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 10, day, hh, mm, tzinfo=STHLM)


class Home:
    """One dispenser's messages through the gateway's write path, stamped by the fake clock."""

    def __init__(self, pool: ConnectionPool, clock: FakeClock) -> None:
        self.pool, self.clock, self.seq = pool, clock, 0

    def send(self, suffix: str, payload: bytes) -> None:
        with self.pool.connection() as conn:
            write_batch(conn, [Inbound(f"dosewatch/v1/dispensers/{D}/{suffix}", payload,
                                       self.clock.now())])  # fmt: skip

    def heartbeat(self) -> None:
        body = {"v": 1, "dispenser_id": D, "at": rfc3339(self.clock.now()), "doses_left": 20}
        self.send("status", json.dumps(body).encode())

    def take(self, due: datetime, *, occurred: datetime | None = None) -> None:
        self.seq += 1
        self.send("events", event(D, self.seq, "dose_taken", occurred or self.clock.now(),
                                  dose_due_at=due))  # fmt: skip

    def at(self, when: datetime) -> Home:
        self.clock.set(when.astimezone(UTC))
        return self

    def sweep(self) -> None:
        sweep_missed_doses(self.pool, self.clock)


@pytest.fixture
def month(pool: ConnectionPool) -> dict[str, Any]:
    clock = FakeClock(START.astimezone(UTC) - timedelta(hours=1))
    patient_id = add_dispenser(
        pool, D, clock.now(), horizon=END - clock.now(),
        doses=[{"time": "08:00", "window_min": 45, "label": "Morgon"},
               {"time": "20:00", "window_min": 45, "label": "Kväll"}],
    )  # fmt: skip
    home = Home(pool, clock)
    with pool.connection() as conn:
        absences.create(conn, D, starts_at=_local(20, 0), ends_at=_local(23, 0),
                        reason="hospital", by="test", now=clock.now())  # fmt: skip
        schedule_sql.replan(conn, D, clock.now(), END)
    home.at(_local(1, 8, 5)).take(_local(1, 8))  # on time
    home.at(_local(1, 20, 50)).heartbeat()
    home.sweep()  # 20:00 closes: missed, then the late dose comes in
    home.at(_local(1, 21, 30)).take(_local(1, 20))  # late
    home.at(_local(2, 8, 50)).heartbeat()
    home.sweep()  # 2 Oct 08:00 missed
    home.at(_local(2, 19, 0)).send("online", b"0")  # Last Will: offline from here
    home.at(_local(3, 9, 0)).sweep()  # 2 Oct 20:00 and 3 Oct 08:00: unknown
    home.at(_local(3, 10, 0)).send("online", b"1")
    home.take(_local(2, 20), occurred=_local(2, 20, 10))  # the replay: it was taken after all
    for day in range(3, 32):  # every other dose of the month taken on time
        for hh in (8, 20):
            due = _local(day, hh)
            if due < END and (day, hh) != (3, 8) and not 20 <= day <= 22:
                home.at(due + timedelta(minutes=3)).take(due)
    home.at(END + timedelta(hours=1)).heartbeat()
    home.sweep()
    return {"patient_id": patient_id, "clock": clock}


def _states(pool: ConnectionPool) -> dict[str, str]:
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT id, state FROM dose_slots WHERE dispenser_id = %s AND due_at >= %s"
            " AND due_at < %s", (D, START, END),
        ).fetchall()  # fmt: skip
    return {f"slot-{r['id']}": r["state"] for r in rows}


def _client(pool: ConnectionPool, clock: FakeClock, role: str = "admin",
            team_id: int | None = None) -> TestClient:  # fmt: skip
    client = TestClient(create_app(pool, clock))
    client.headers.update(bearer(pool, role, team_id))
    return client


def _export(client: TestClient, patient_id: int) -> list[dict[str, Any]]:
    url = (f"/fhir/R4/MedicationAdministration?patient=Patient/{patient_id}"
           "&date=ge2026-10-01&date=lt2026-11-01&_count=25")  # fmt: skip
    found: list[dict[str, Any]] = []
    while url:
        r = client.get(url)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/fhir+json")
        page = r.json()
        fhir_bundle.Bundle(page, strict=True)  # raises FHIRValidationError if not valid R4
        found += [e["resource"] for e in page.get("entry", [])]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = nxt[0].split("testserver", 1)[1] if nxt else ""
    return found


def test_a_month_exports_one_valid_resource_per_decided_slot(
    pool: ConnectionPool, month: dict[str, Any]
) -> None:
    states = _states(pool)
    assert {"taken", "taken_late", "missed", "unknown", "suspended"} <= set(states.values())
    with _client(pool, month["clock"]) as client:
        resources = _export(client, month["patient_id"])
    for resource in resources:
        medicationadministration.MedicationAdministration(resource, strict=True)
    by_id = {r["id"]: r for r in resources}
    assert len(by_id) == len(resources)
    exported = {k: v for k, v in states.items() if v in EXPORTED_STATES}
    assert set(by_id) == set(exported), "one resource per decided slot, none for the rest"
    assert {by_id[k]["status"] for k in by_id} <= set(ADMIN_STATUS.values())
    for slot, state in exported.items():
        assert by_id[slot]["status"] == ADMIN_STATUS[state]
    suspended = [k for k, v in states.items() if v == "suspended"]
    assert len(suspended) == 6 and not set(suspended) & set(by_id)  # 20–22 Oct: not not-done


def test_each_kind_of_day_reads_as_it_happened(pool: ConnectionPool, month: dict[str, Any]) -> None:
    with _client(pool, month["clock"]) as client:
        resources = _export(client, month["patient_id"])
    due = {r["effectivePeriod"]["start"] if "effectivePeriod" in r else None: r for r in resources}
    by_label = {(r["dosage"]["text"], r.get("effectiveDateTime")): r for r in resources}
    on_time = by_label[("Morgon 08:00", _local(1, 8, 5).astimezone(UTC).isoformat())]
    assert on_time["status"] == "completed" and "extension" not in on_time
    assert on_time["performer"][0]["actor"]["reference"] == f"Device/{D}"
    assert on_time["subject"]["reference"] == f"Patient/{month['patient_id']}"
    late = by_label[("Kväll 20:00", _local(1, 21, 30).astimezone(UTC).isoformat())]
    assert late["status"] == "completed" and late["extension"][0]["valueBoolean"] is True
    replayed = by_label[("Kväll 20:00", _local(3, 10).astimezone(UTC).isoformat())]
    assert replayed["status"] == "completed", "an unknown resolved by a replay is what it was"
    missed = due[_local(2, 8).astimezone(UTC).isoformat()]
    assert missed["status"] == "not-done" and missed["statusReason"][0]["text"]
    unknown = due[_local(3, 8).astimezone(UTC).isoformat()]
    assert unknown["status"] == "unknown", "unknown is never exported as completed"


def test_patient_device_and_capability_statement_are_valid_r4(
    pool: ConnectionPool, month: dict[str, Any]
) -> None:
    pid = month["patient_id"]
    with _client(pool, month["clock"]) as client:
        r = client.put(f"/api/v1/patients/{pid}/identity-number",
                       json={"personal_id": "19121212-1212"})  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["system"] == "urn:oid:1.2.752.129.2.1.3.1"
        body = client.get(f"/fhir/R4/Patient/{pid}").json()
        patient.Patient(body, strict=True)
        assert body["identifier"][0] == {"use": "official", "value": "191212121212",
                                         "system": "urn:oid:1.2.752.129.2.1.3.1"}  # fmt: skip
        dev = client.get(f"/fhir/R4/Device/{D}").json()
        device.Device(dev, strict=True)
        assert dev["patient"]["reference"] == f"Patient/{pid}"
        meta = client.get("/fhir/R4/metadata")
        assert meta.status_code == 200
        capabilitystatement.CapabilityStatement(meta.json(), strict=True)
        served = {r["type"] for r in meta.json()["rest"][0]["resource"]}
        routes = {p.split("/")[3] for p in client.app.openapi()["paths"] if p.startswith("/fhir/")}
        assert served == routes - {"metadata"}, "the capability statement lists what is served"


def test_identity_number_is_validated_and_shown_only_to_roles_that_need_it(
    pool: ConnectionPool, month: dict[str, Any]
) -> None:
    pid = month["patient_id"]
    with _client(pool, month["clock"]) as admin:
        bad = admin.put(f"/api/v1/patients/{pid}/identity-number",
                        json={"personal_id": "19121212-1213"})  # fmt: skip
        assert bad.status_code == 422 and "check digit" in bad.text
        ok = admin.put(f"/api/v1/patients/{pid}/identity-number",
                       json={"personal_id": "701063-2391"})  # fmt: skip
        assert ok.status_code == 200 and ok.json()["kind"] == "samordningsnummer"
        assert ok.json()["system"] == "urn:oid:1.2.752.129.2.1.3.3"
    with _client(pool, month["clock"], role="manager") as manager:
        ids = manager.get(f"/fhir/R4/Patient/{pid}").json()["identifier"]
        assert [i["system"] for i in ids] == ["urn:dosewatch:patient"]


def test_a_nurse_exports_her_team_only_and_another_team_is_a_404_audited(
    pool: ConnectionPool, month: dict[str, Any]
) -> None:
    pid = month["patient_id"]
    mine, other = team(pool, "Norr"), team(pool, "Söder")
    with pool.connection() as conn:
        conn.execute("UPDATE patients SET team_id = %s WHERE id = %s", (mine, pid))
    with _client(pool, month["clock"], "nurse", mine) as nurse:
        assert len(_export(nurse, pid)) > 0
    with _client(pool, month["clock"], "nurse", other) as stranger:
        for path in (f"/fhir/R4/MedicationAdministration?patient={pid}",
                     f"/fhir/R4/Patient/{pid}", f"/fhir/R4/Device/{D}"):  # fmt: skip
            r = stranger.get(path)
            assert r.status_code == 404, (path, r.text)
    with pool.connection() as conn:
        denied = conn.execute(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'denied'"
        ).fetchone()
        opened = conn.execute(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'open' AND object_type = 'patient'"
            " AND object_id = %s", (str(pid),),
        ).fetchone()  # fmt: skip
    assert denied is not None and denied["n"] == 3
    assert opened is not None and opened["n"] >= 1


def test_without_a_caller_the_record_is_closed_but_the_capabilities_are_open(
    pool: ConnectionPool, month: dict[str, Any]
) -> None:
    with TestClient(create_app(pool, month["clock"])) as anonymous:
        assert anonymous.get(f"/fhir/R4/Patient/{month['patient_id']}").status_code == 401
        assert anonymous.get("/fhir/R4/metadata").status_code == 200


@pytest.mark.parametrize("query", ["patient=abc", "patient=1&date=ge2026-13-01",
                                   "patient=1&date=lt2026-10-01T00:00:00", "patient=1&_count=0"])
def test_a_bad_search_is_a_clear_422(
    pool: ConnectionPool, month: dict[str, Any], query: str
) -> None:  # fmt: skip
    with _client(pool, month["clock"]) as client:
        r = client.get(f"/fhir/R4/MedicationAdministration?{query}")
        assert r.status_code == 422, r.text
