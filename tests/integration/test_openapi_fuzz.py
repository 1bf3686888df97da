"""A property-based fuzzer over the app's own OpenAPI (Schemathesis), against the real app and
the real database, with seeded records.

Every operation of the app *as it is when the test runs* is walked (the list is read from
``create_app(...).openapi()`` at collection, so a route added later is fuzzed without touching
this file). Each gets a bounded number of examples (``DOSEWATCH_FUZZ_EXAMPLES``, default 30):
data that fits the schema, data that does not (Schemathesis' negative mode), and data whose
path ids are seeded records, so the 2xx paths and their response schemas are exercised too.
Every answer must:

- never be a 5xx (``not_a_server_error``);
- carry a status code the operation documents (``status_code_conformance``);
- have the documented content type and body (``content_type_conformance``,
  ``response_schema_conformance``).

Not checked: ``negative_data_rejection`` (pydantic's lax mode rightly accepts ``"1"`` for an
integer or trims a name, which that check calls a failure) and ``positive_data_acceptance`` (a
well-formed id that names no record is a 404 by design).

Excluded, with reasons: the alarm stream (Server-Sent Events: the response never ends, it is
tested in ``test_alarm_stream``) and the Twilio webhooks (``/twilio/``: refused without
Twilio's signature, tested in ``test_twilio_hooks``; they are not in the OpenAPI anyway).

Examples are derandomised (the same every run, so CI is stable); set
``DOSEWATCH_FUZZ_RANDOM=1`` to explore new ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st
from psycopg_pool import ConnectionPool
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from alarms.missed import sweep_missed_doses
from dashboards.app import create_app
from dosewatch.clock import FakeClock
from dosewatch.db import health as health_sql
from dosewatch.db import quarantine as quarantine_sql
from tests.auth_helpers import bearer, user
from tests.conftest import T0

EXAMPLES = int(os.environ.get("DOSEWATCH_FUZZ_EXAMPLES", "30"))
RANDOM = os.environ.get("DOSEWATCH_FUZZ_RANDOM") == "1"
EXCLUDED = {
    ("GET", "/api/v1/alarms/stream"): "Server-Sent Events: the response never ends",
}
EXCLUDED_PREFIXES = ("/twilio/",)  # signed by Twilio; refused unsigned
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
DISPENSER = "DSP-FUZZ-1"


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation in the app's OpenAPI. Building the app and its schema
    needs no database: the pool is only used by requests."""
    spec = create_app(None, FakeClock(T0)).openapi()  # type: ignore[arg-type]
    found = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    ]
    return sorted(
        (m, p) for m, p in found if (m, p) not in EXCLUDED and not p.startswith(EXCLUDED_PREFIXES)
    )


def _seed(client: TestClient, pool: ConnectionPool, clock: FakeClock) -> dict[str, Any]:
    """One of each record, made through the API itself; returns the ids, by path parameter."""

    def ok(r: Any) -> Any:
        assert r.status_code in (200, 201), r.text
        return r.json()

    team = ok(client.post("/api/v1/teams", json={"name": "Fuzz team"}))["id"]
    nurse = ok(
        client.post(
            "/api/v1/nurses", json={"team_id": team, "name": "Eva", "phone": "+46701234567"}
        )
    )["id"]
    patient = ok(client.post("/api/v1/patients", json={"name": "Astrid", "phone": "+46 70 1"}))
    ok(client.put(f"/api/v1/patients/{patient['id']}/team", json={"team_id": team}))
    ok(client.post("/api/v1/dispensers", json={"id": DISPENSER, "patient_id": patient["id"]}))
    schedule = {
        "timezone": "Europe/Stockholm",
        "valid_from": "2026-11-20",
        "doses": [{"time": "08:00", "window_min": 45}, {"time": "20:00", "window_min": 45}],
    }
    ok(client.put(f"/api/v1/dispensers/{DISPENSER}/schedule", json=schedule))
    shift = ok(
        client.post(
            f"/api/v1/teams/{team}/shifts",
            json={
                "nurse_id": nurse,
                "starts_at": "2026-11-23T06:00:00Z",
                "ends_at": "2026-11-23T18:00:00Z",
                "role": "primary",
            },
        )
    )["id"]
    absence = ok(
        client.post(
            f"/api/v1/dispensers/{DISPENSER}/absences",
            json={
                "starts_at": "2026-11-26T00:00:00Z",
                "ends_at": "2026-11-27T00:00:00Z",
                "reason": "hospital",
            },
        )
    )["id"]
    staff = user(pool, "nurse.fuzz", "nurse", team)
    clock.set(T0 + timedelta(hours=1))  # past the 08:00 dose's window: a missed-dose alarm
    [alarm] = sweep_missed_doses(pool, clock)
    with pool.connection() as conn, conn.transaction():
        quarantine_sql.quarantine(
            conn,
            topic=f"dosewatch/v1/dispensers/{DISPENSER}/events",
            payload=b"{not json",
            reason="invalid_json",
            received_at=clock.now(),
            dispenser_id=DISPENSER,
        )
        for job in ("sweep", "escalate", "dispatch"):  # a healthy self-watch: health is 200
            health_sql.record_run(conn, job, clock.now())
    return {
        "team_id": team,
        "nurse_id": nurse,
        "patient_id": patient["id"],
        "dispenser_id": DISPENSER,
        "shift_id": shift,
        "absence_id": absence,
        "alarm_id": getattr(alarm, "id", alarm),
        "user_id": staff["id"],
        "section": "patients",
    }


@pytest.fixture(scope="module")
def fuzz_db(_pool: ConnectionPool) -> ConnectionPool:
    with _pool.connection() as conn:
        tables = conn.execute(
            "SELECT string_agg(format('%I', tablename), ', ') AS t FROM pg_tables"
            " WHERE schemaname = 'public' AND tablename <> 'schema_migrations'"
        ).fetchone()
        conn.execute(f"TRUNCATE {tables['t']} RESTART IDENTITY CASCADE")
    return _pool


@pytest.fixture(scope="module")
def fuzzed(
    fuzz_db: ConnectionPool, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, schemathesis.schemas.BaseSchema, dict[str, Any]]]:
    """One app for the whole walk (seeded once, its state changed by the fuzzing as by users)."""
    clock = FakeClock(T0)
    password_file = Path(tmp_path_factory.mktemp("mosquitto")) / "passwords"
    app: FastAPI = create_app(fuzz_db, clock, mqtt_password_file=str(password_file))
    with TestClient(app) as client:
        client.headers.update(bearer(fuzz_db, "admin"))
        seeds = _seed(client, fuzz_db, clock)
        schema = schemathesis.openapi.from_dict(app.openapi())
        yield client, schema, seeds


def _strategy(operation: Any, seeds: dict[str, Any]) -> st.SearchStrategy[Any]:
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    names = {p.name for p in operation.path_parameters}
    if names:
        known = {n: seeds[n] for n in names if n in seeds}
        if known:
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known))
    strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(strategies)


def _send(client: TestClient, case: Any) -> Any:
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    kwargs.pop("allow_redirects", None)
    kwargs.pop("verify", None)
    kwargs.pop("timeout", None)
    if not kwargs.get("cookies"):
        kwargs.pop("cookies", None)
    data = kwargs.pop("data", None)
    if data is not None:
        kwargs["content" if isinstance(data, bytes | str) else "data"] = data
    try:
        return client.request(**kwargs, follow_redirects=False)
    except httpx.InvalidURL:
        # httpx refuses to send a URL over 64 KiB (a long query, percent-encoded): no client
        # could make that request, so the example says nothing about the app.
        reject()


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda v: str(v))
def test_every_operation_survives_the_fuzzer(
    fuzzed: tuple[TestClient, Any, dict[str, Any]], method: str, path: str
) -> None:
    client, schema, seeds = fuzzed
    operation = schema.find_operation_by_path(method, path)
    assert operation is not None, f"{method} {path} is not in the OpenAPI"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation, seeds))
    def fuzz(case: Any) -> None:
        response = _send(client, case)
        case.validate_response(response, checks=CHECKS)

    fuzz()


def test_the_walk_covers_the_app() -> None:
    """The walk is read from the app, not listed here: it holds every operation but the
    excluded ones, and those exclusions still exist (a stale one would hide nothing)."""
    operations = _operations()
    assert len(operations) > 40
    spec = create_app(None, FakeClock(T0)).openapi()  # type: ignore[arg-type]
    for method, path in EXCLUDED:
        assert method.lower() in spec["paths"].get(path, {}), (method, path)
