"""Every request answered: the cases of issue 11, one regression test each.

A NUL character or an integer beyond ``bigint`` used to reach PostgreSQL and come back as a 500;
a nurse who does not exist broke a foreign key; 422 bodies contradicted the OpenAPI. Each now
gets the documented answer, and the OpenAPI describes exactly what is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from psycopg_pool import ConnectionPool

from alarms.missed import sweep_missed_doses
from dashboards.app import create_app
from dashboards.deps import Db
from dosewatch.clock import FakeClock
from tests.auth_helpers import as_admin, user
from tests.errors import problems
from tests.integration.test_api import DUE, SCHEDULE, make_dispenser

V1 = "/api/v1"
NUL = "a\x00b"
TOO_BIG = 2**63  # one beyond bigint


@pytest.fixture
def api(pool: ConnectionPool, clock: FakeClock) -> Iterator[TestClient]:
    with TestClient(create_app(pool, clock)) as client:
        yield as_admin(client, pool)


@pytest.fixture
def spec(api: TestClient) -> dict[str, Any]:
    return api.get("/openapi.json").json()  # type: ignore[no-any-return]


def named(response: Any, *loc: str) -> str:
    """The 422's message for the field at ``loc`` (which it must name; a union's errors add the
    branch to the location)."""
    found = [e["msg"] for e in response.json()["detail"] if tuple(e["loc"])[: len(loc)] == loc]
    assert found, (loc, problems(response))
    return str(found[0])


def team_id(api: TestClient) -> int:
    return int(api.post(f"{V1}/teams", json={"name": "Natt"}).json()["id"])


# --- NUL characters --------------------------------------------------------------------------


def test_a_nul_in_the_sign_in_form_is_a_422_without_credentials(pool: ConnectionPool) -> None:
    with TestClient(create_app(pool, FakeClock(DUE))) as anonymous:
        r = anonymous.post("/auth/login", json={"username": NUL, "password": "x"})
    assert "NUL" in named(r, "body", "username")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/patients", {"name": NUL, "phone": "+46 70 123 45 67"}, "name"),
        ("/patients", {"name": "A", "phone": "+46 70 123 45 67", "note": NUL}, "note"),
        ("/teams", {"name": NUL}, "name"),
        ("/users", {"username": "eva", "name": NUL, "role": "admin", "password": "x" * 8}, "name"),
    ],
)
def test_a_nul_in_a_body_is_a_422_naming_the_field(
    api: TestClient, path: str, body: dict[str, Any], field: str
) -> None:
    r = api.post(V1 + path, json=body)
    assert "NUL" in named(r, "body", field)


def test_a_nul_in_a_nurse_is_a_422(api: TestClient) -> None:
    body = {"team_id": team_id(api), "name": NUL, "phone": "+46701234567"}
    assert "NUL" in named(api.post(f"{V1}/nurses", json=body), "body", "name")


def test_a_nul_in_a_user_change_is_a_422(api: TestClient, pool: ConnectionPool) -> None:
    uid = user(pool, "per.admin", "admin")["id"]
    r = api.patch(f"{V1}/users/{uid}", json={"name": NUL})
    assert "NUL" in named(r, "body", "name")


def test_a_nul_in_an_absence_is_a_422(api: TestClient) -> None:
    make_dispenser(api)
    api.put(f"{V1}/dispensers/DSP-000123/schedule", json=SCHEDULE)
    url = f"{V1}/dispensers/DSP-000123/absences"
    body = {"starts_at": "2026-11-24T00:00:00Z", "ends_at": "2026-11-25T00:00:00Z"}
    assert "NUL" in named(api.post(url, json={**body, "reason": NUL}), "body", "reason")
    absence = api.post(url, json={**body, "reason": "hospital"}).json()
    r = api.post(f"{V1}/absences/{absence['id']}/end", json={"by": NUL})
    assert "NUL" in named(r, "body", "by")


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/audit", "actor"),
        ("/audit", "action"),
        ("/quarantine", "dispenser_id"),
        ("/console/worklist", "district"),
    ],
)
def test_a_nul_in_a_query_is_a_422(api: TestClient, path: str, param: str) -> None:
    assert "NUL" in named(api.get(V1 + path, params={param: NUL}), "query", param)


def test_a_nul_in_a_path_id_is_a_422(api: TestClient) -> None:
    r = api.get(f"{V1}/dispensers/a%00b")
    assert named(r, "path", "dispenser_id")


def test_the_audit_export_refuses_a_nul_before_its_first_byte(api: TestClient) -> None:
    r = api.get(f"{V1}/audit.csv", params={"actor": NUL})
    assert r.headers["content-type"] == "application/json"  # not a started CSV
    assert "NUL" in named(r, "query", "actor")
    fine = api.get(f"{V1}/audit.csv", params={"actor": "nobody"})
    assert fine.status_code == 200 and fine.text.startswith("id,")


# --- ids beyond bigint -----------------------------------------------------------------------


def test_an_id_beyond_bigint_is_a_422_in_query_path_and_body(api: TestClient) -> None:
    assert named(api.get(f"{V1}/nurses", params={"team_id": TOO_BIG}), "query", "team_id")
    assert named(api.get(f"{V1}/alarms/{TOO_BIG}"), "path", "alarm_id")
    body = {"team_id": TOO_BIG, "name": "Eva", "phone": "+46701234567"}
    assert named(api.post(f"{V1}/nurses", json=body), "body", "team_id")
    assert named(api.get(f"{V1}/console/alarms", params={"ids": f"1,{TOO_BIG}"}), "query", "ids")


# --- references to other records -------------------------------------------------------------


def open_alarm(api: TestClient, pool: ConnectionPool, clock: FakeClock) -> int:
    make_dispenser(api)
    api.put(f"{V1}/dispensers/DSP-000123/schedule", json=SCHEDULE)
    clock.set(DUE + timedelta(minutes=45))
    [alarm_id] = sweep_missed_doses(pool, clock)
    return alarm_id


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_an_alarm_action_naming_a_nurse_who_does_not_exist_is_a_422(
    api: TestClient, pool: ConnectionPool, clock: FakeClock, action: str
) -> None:
    alarm_id = open_alarm(api, pool, clock)
    body: dict[str, Any] = {"nurse_id": 424242}
    if action == "resolve":
        body["outcome"] = "reached_by_phone"
    r = api.post(f"{V1}/alarms/{alarm_id}/{action}", json=body)
    assert named(r, "body", "nurse_id") == "nurse 424242 does not exist"
    assert api.get(f"{V1}/alarms/{alarm_id}").json()["state"] == "open"  # nothing changed


def test_references_to_a_team_or_patient_that_does_not_exist_are_named(api: TestClient) -> None:
    patient = make_dispenser(api)
    r = api.put(f"{V1}/patients/{patient}/team", json={"team_id": 999})
    assert named(r, "body", "team_id") == "team 999 does not exist"
    r = api.post(f"{V1}/dispensers", json={"id": "DSP-2", "patient_id": 999})
    assert named(r, "body", "patient_id") == "patient 999 does not exist"
    user = {"username": "eva", "name": "Eva", "role": "nurse", "team_id": 999, "password": "x" * 8}
    assert named(api.post(f"{V1}/users", json=user), "body", "team_id") == "team 999 does not exist"


# --- one error shape, as documented ----------------------------------------------------------


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema["$ref"].rsplit("/", 1)[-1]
    return {**spec["components"]["schemas"][ref], "components": spec["components"]}


def _body_schema(spec: dict[str, Any], method: str, path: str, code: int) -> dict[str, Any]:
    response = spec["paths"][path][method]["responses"][str(code)]
    return _resolve(spec, response["content"]["application/json"]["schema"])


def test_every_documented_error_has_the_one_shape(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for code, response in operation["responses"].items():
                if not code.startswith("4"):
                    continue
                ref = response["content"]["application/json"]["schema"]["$ref"]
                want = "HTTPValidationError" if code == "422" else "ErrorBody"
                assert ref.endswith("/" + want), (method, path, code, ref)


def test_422_404_and_409_bodies_are_what_the_openapi_says(
    api: TestClient, spec: dict[str, Any]
) -> None:
    bad = api.post(f"{V1}/patients", json={"phone": "+46 70 123"})
    assert bad.status_code == 422
    jsonschema.validate(bad.json(), _body_schema(spec, "post", "/api/v1/patients", 422))
    missing = api.get(f"{V1}/patients/999")
    assert missing.status_code == 404
    by_id = "/api/v1/patients/{patient_id}"
    jsonschema.validate(missing.json(), _body_schema(spec, "get", by_id, 404))
    make_dispenser(api)
    dup = api.post(f"{V1}/dispensers", json={"id": "DSP-000123", "patient_id": 1})
    assert dup.status_code == 409
    jsonschema.validate(dup.json(), _body_schema(spec, "post", "/api/v1/dispensers", 409))


def test_server_side_refusals_are_in_the_standard_422_shape(api: TestClient) -> None:
    make_dispenser(api)
    url = f"{V1}/dispensers/DSP-000123/slots"
    backwards = api.get(url, params={"from": "2026-11-23T00:00:00Z", "to": "2026-11-22"})
    assert "after from" in named(backwards, "query", "to")
    r = api.put(
        f"{V1}/dispensers/DSP-000123/schedule",
        json={**SCHEDULE, "effective_from": "2026-01-01T00:00:00Z"},
    )
    assert "past" in named(r, "body", "effective_from")


# --- local_time and dates --------------------------------------------------------------------

SPRING = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)  # the day before Stockholm springs forward


def test_local_time_is_when_the_dose_is_presented_and_documented_as_served(
    pool: ConnectionPool, spec: dict[str, Any]
) -> None:
    with TestClient(create_app(pool, FakeClock(SPRING))) as api:
        as_admin(api, pool)
        make_dispenser(api)
        body = {**SCHEDULE, "doses": [{"time": "02:30", "window_min": 30}]}
        assert api.put(f"{V1}/dispensers/DSP-000123/schedule", json=body).status_code == 200
        # A date: local midnight of 2027-03-28 to that of the 29th, in Stockholm.
        slots = api.get(
            f"{V1}/dispensers/DSP-000123/slots", params={"from": "2027-03-28", "to": "2027-03-29"}
        ).json()
    assert [(s["due_at"], s["local_time"], s["scheduled_time"]) for s in slots] == [
        ("2027-03-28T01:30:00Z", "03:30", "02:30")  # 02:30 does not exist that night
    ]
    for model in ("Slot", "PlannedSlot"):
        declared = spec["components"]["schemas"][model]["properties"]["local_time"]
        variants = declared.get("anyOf", [declared])
        string = next(v for v in variants if v.get("type") == "string")
        assert "format" not in string and string["pattern"].startswith("^")
        jsonschema.validate("03:30", string)


def test_previews_take_a_date_as_local_midnight_in_the_schedules_zone(api: TestClient) -> None:
    make_dispenser(api)
    body = {**SCHEDULE, "doses": [{"time": "00:30", "window_min": 30}]}
    api.put(f"{V1}/dispensers/DSP-000123/schedule", json=body)
    url = f"{V1}/dispensers/DSP-000123/schedule/preview"
    day = api.get(url, params={"from": "2027-03-27", "to": "2027-03-28"})
    assert day.status_code == 200, day.text
    # 00:30 in Stockholm on the 27th is 23:30 UTC on the 26th: inside the local day.
    assert [(p["local_date"], p["due_at"]) for p in day.json()] == [
        ("2027-03-27", "2027-03-26T23:30:00Z")
    ]
    assert named(api.get(url, params={"from": "2027-03-27T08:00"}), "query", "from")  # no offset


def test_instants_and_days_outside_the_calendar_are_a_422_not_an_overflow(api: TestClient) -> None:
    make_dispenser(api)
    url = f"{V1}/dispensers/DSP-000123"
    late = {**SCHEDULE, "effective_from": "9999-12-31T23:00:00Z"}
    assert "years" in named(api.put(f"{url}/schedule", json=late), "body", "effective_from")
    early = {**SCHEDULE, "valid_from": "0001-01-01"}
    assert "years" in named(api.put(f"{url}/schedule", json=early), "body", "valid_from")
    far = {"from": "9999-12-30", "to": "9999-12-31T23:59:59Z"}
    assert named(api.get(f"{url}/schedule/preview", params=far), "query", "from")
    assert named(api.get(f"{V1}/audit", params={"from": "0001-01-01T00:00:00Z"}), "query", "from")


def test_a_value_the_database_still_refuses_is_a_422_not_a_500(
    pool: ConnectionPool, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The last line of defence, for a route that forgot its boundary types."""
    app = create_app(pool, clock)

    def careless(conn: Db, n: int) -> dict[str, Any]:  # an int with no bound, on purpose
        return dict(conn.execute("SELECT %s::bigint AS n", (n,)).fetchone() or {})

    app.add_api_route(f"{V1}/careless", careless)
    with TestClient(app) as api:
        as_admin(api, pool)
        assert api.get(f"{V1}/careless", params={"n": 5}).json() == {"n": 5}
        r = api.get(f"{V1}/careless", params={"n": TOO_BIG})
    assert "database refused" in named(r, "request")
    assert "the database refused a value the API let through" in caplog.text
